package peertest

import (
	"sync"
	"testing"
	"time"
)

// RSSWatch samples a process's resident memory every 50 ms until stopped,
// for tests that bound what an attack or a load costs.
type RSSWatch struct {
	pid    int
	before int64
	done   chan struct{}
	over   chan struct{}

	mu   sync.Mutex
	peak int64
	last int64
	err  error
}

// WatchRSS starts sampling process pid.
func WatchRSS(t testing.TB, pid int) *RSSWatch {
	t.Helper()
	u, err := Usage(pid)
	if err != nil {
		t.Fatal(err)
	}
	w := &RSSWatch{pid: pid, before: u.RSS, peak: u.RSS, last: u.RSS, done: make(chan struct{}), over: make(chan struct{})}
	go func() {
		defer close(w.over)
		tick := time.NewTicker(50 * time.Millisecond) // sampling, not synchronising
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			u, err := Usage(pid)
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = err
			}
			w.peak, w.last = max(w.peak, u.RSS), u.RSS
			w.mu.Unlock()
		}
	}()
	return w
}

// Now returns the last sample and the peak so far, in bytes.
func (w *RSSWatch) Now() (last, peak int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.peak
}

// Stop ends the sampling and returns the memory at the start, the peak and
// the memory now, in bytes.
func (w *RSSWatch) Stop(t testing.TB) (before, peak, after int64) {
	t.Helper()
	close(w.done)
	<-w.over
	u, err := Usage(w.pid)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("sampling the memory of process %d: %v", w.pid, w.err)
	}
	return w.before, max(w.peak, u.RSS), u.RSS
}
