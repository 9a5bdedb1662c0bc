package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockAgents locks agents first to first+n-1 of the state directory dir
// against another fleet, in this process or another: an open file
// description lock on that byte range of dir/fleet.lock, so that fleets
// sharing out one larger fleet (First = 0, N, 2N...) run side by side.
func lockAgents(dir string, first, n int) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet: state directory: %w", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(first), Len: int64(n)}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("fleet: agents %d to %d of %s are in use by another fleet", first+1, first+n, dir)
		}
		return nil, fmt.Errorf("fleet: locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
