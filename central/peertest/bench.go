package peertest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchRow records one figure of `make bench` beside the peer or limit it is
// compared with, measured in the same run. The rows are appended, tab
// separated, to the file that RELAIS_BENCH_OUT names (the Makefile prints
// them as one table at the end), and logged.
func BenchRow(t testing.TB, figure, value, peer, peerValue, ratio string) {
	t.Helper()
	t.Logf("bench: %s = %s; %s = %s; %s", figure, value, peer, peerValue, ratio)
	path := os.Getenv("RELAIS_BENCH_OUT")
	if path == "" {
		return
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("RELAIS_BENCH_OUT: %v", err)
		return
	}
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	fmt.Fprintf(f, "%s\t%s\t%s\t%s\t%s\n", clean(figure), clean(value), clean(peer), clean(peerValue), clean(ratio))
	if err := f.Close(); err != nil {
		t.Errorf("RELAIS_BENCH_OUT: %v", err)
	}
}

var benchMu sync.Mutex

// ProcUsage is what a process used, read from /proc.
type ProcUsage struct {
	RSS int64         // resident set size, bytes
	CPU time.Duration // user + system time since it started
}

// Usage reads the resident set size and CPU time of process pid.
func Usage(pid int) (ProcUsage, error) {
	var u ProcUsage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return u, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, v)
				}
				u.RSS = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: unexpected times", pid)
	}
	// USER_HZ is 100 on every Linux architecture Relais runs on.
	u.CPU = time.Duration(utime+stime) * (time.Second / 100)
	return u, nil
}

// SyncBuffer collects a child process's output while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
