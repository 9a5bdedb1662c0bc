//go:build !linux

package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockAgents locks the state directory dir against another fleet. Without
// Linux's open file description locks it locks the whole directory, so
// that fleets sharing out one larger fleet need a directory each.
func lockAgents(dir string, first, n int) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet: state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("fleet: state directory %s is in use by another fleet", dir)
		}
		return nil, fmt.Errorf("fleet: locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
