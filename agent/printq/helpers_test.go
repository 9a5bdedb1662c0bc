package printq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	d  time.Duration
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 10, 9, 0, 0, 0, time.Local), timers: map[*fakeTimer]bool{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), d: d, ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
	} else {
		c.timers[t] = true
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	ok := t.c.timers[t]
	delete(t.c.timers, t)
	return ok
}

// Advance moves the clock on and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			delete(c.timers, t)
		}
	}
}

// pending returns the durations of the timers not yet fired, sorted.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for t := range c.timers {
		ds = append(ds, t.d)
	}
	slices.Sort(ds)
	return ds
}

// waitTimer waits until a timer whose duration satisfies ok is pending, and
// returns its duration.
func (c *fakeClock) waitTimer(t *testing.T, what string, ok func(time.Duration) bool) time.Duration {
	t.Helper()
	var found time.Duration
	eventually(t, what, func() bool {
		for _, d := range c.pending() {
			if ok(d) {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// eventually polls cond until it holds, failing the test after a bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// recorder is an in-memory Recorder that assigns what an outbox would and
// checks every event against the wire contract.
type recorder struct {
	mu     sync.Mutex
	seq    uint64
	events []api.Event
	fail   int // the next fail calls return an error
	keys   map[string]bool
}

func (r *recorder) RecordOnce(key string, e api.Event) error {
	r.mu.Lock()
	done := r.keys[key]
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := r.Record(e); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]bool{}
	}
	r.keys[key] = true
	return nil
}

func (r *recorder) Record(e api.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("outbox unavailable")
	}
	r.seq++
	e.Seq, e.ID, e.Time = r.seq, uuid.Must(uuid.NewV7()).String(), time.Now().UTC()
	if err := e.Validate(); err != nil {
		return fmt.Errorf("event breaks the contract: %w", err)
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) all() []api.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitEvents waits for n events and returns them.
func (r *recorder) waitEvents(t *testing.T, n int) []api.Event {
	t.Helper()
	eventually(t, fmt.Sprintf("%d events", n), func() bool { return len(r.all()) >= n })
	return r.all()
}

// faultLog is an in-memory Faults that keeps the open faults and every
// raise and clear, and holds the queue to "raised once, cleared once".
type faultLog struct {
	mu      sync.Mutex
	open    map[string]api.Severity
	history []string
}

func (f *faultLog) Raise(d api.Device, code string, sev api.Severity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		f.open = map[string]api.Severity{}
	}
	if err := (api.Fault{Code: code, Device: d, Severity: sev, Since: time.Now().UTC()}).Validate(); err != nil {
		return err
	}
	if _, ok := f.open[code]; ok {
		return nil
	}
	f.open[code] = sev
	f.history = append(f.history, fmt.Sprintf("raise %s %s %s", d, code, sev))
	return nil
}

func (f *faultLog) Clear(d api.Device, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.open[code]; !ok {
		return nil
	}
	delete(f.open, code)
	f.history = append(f.history, fmt.Sprintf("clear %s %s", d, code))
	return nil
}

func (f *faultLog) severity(code string) (api.Severity, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.open[code]
	return s, ok
}

func (f *faultLog) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history)
}

// harness is a queue under test with its recorders.
type harness struct {
	t      *testing.T
	cfg    Config
	q      *Queue
	clock  *fakeClock
	rec    *recorder
	faults *faultLog
	cancel context.CancelFunc
	done   chan error
}

// newHarness opens a queue on a new spool directory; adjust changes the
// configuration first.
func newHarness(t *testing.T, printerURI string, adjust func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), rec: &recorder{}, faults: &faultLog{}}
	h.cfg = Config{
		Dir:          filepath.Join(t.TempDir(), "spool"),
		PrinterURI:   printerURI,
		PollInterval: 10 * time.Minute,
		Clock:        h.clock,
		Recorder:     h.rec,
		Faults:       h.faults,
		Logger:       testLogger(t),
	}
	if adjust != nil {
		adjust(&h.cfg)
	}
	h.open()
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *harness) open() {
	h.t.Helper()
	q, err := Open(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.q = q
	h.t.Cleanup(func() { q.Close() })
}

// run starts Run in the background.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	q := h.q
	go func() { h.done <- q.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// stop ends Run and waits for it.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

// restart stops Run, closes the queue and opens the spool again, as after a
// restart of the agent.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	if err := h.q.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// waitState waits until job id is in state st and returns it.
func (h *harness) waitState(id int, st State) Job {
	h.t.Helper()
	var j Job
	eventually(h.t, fmt.Sprintf("job %d in state %d", id, st), func() bool {
		var ok bool
		j, ok = h.q.Job(id)
		return ok && j.State == st
	})
	return j
}

// waitReason waits until job id has the given job-state-reason.
func (h *harness) waitReason(id int, reason string) Job {
	h.t.Helper()
	var j Job
	eventually(h.t, fmt.Sprintf("job %d with reason %s", id, reason), func() bool {
		var ok bool
		j, ok = h.q.Job(id)
		return ok && slices.Contains(j.Reasons, reason)
	})
	return j
}

// spoolFiles lists the files of the spool directory but the lock and the
// state file.
func (h *harness) spoolFiles() []string {
	h.t.Helper()
	ents, err := os.ReadDir(h.cfg.Dir)
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); n != lockName && n != stateName && n != printerName {
			names = append(names, n)
		}
	}
	return names
}
