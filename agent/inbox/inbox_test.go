package inbox

import (
	"bytes"
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
	"testing/iotest"
	"time"
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
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), timers: map[*fakeTimer]bool{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
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

// due returns when the pending timers fire.
func (c *fakeClock) due() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []time.Time
	for t := range c.timers {
		ts = append(ts, t.at)
	}
	return ts
}

// eventually polls cond until it holds, failing the test after a bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t *testing.T, dir string, opts Options) *Inbox {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	in, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// files lists the names in dir, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func add(t *testing.T, in *Inbox, doc string, pages int) Scan {
	t.Helper()
	s, err := in.Add(bytes.NewReader([]byte(doc)), Meta{Pages: pages, Format: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAddListOpen(t *testing.T) {
	clock := newFakeClock()
	dir := filepath.Join(t.TempDir(), "inbox")
	in := open(t, dir, Options{Clock: clock})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("inbox dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	a := add(t, in, "%PDF-1.7 first", 1)
	clock.Advance(time.Minute)
	b := add(t, in, "%PDF-1.7 second scan", 3)
	if !ValidID(a.ID) || !ValidID(b.ID) || a.ID == b.ID {
		t.Fatalf("ids %q %q", a.ID, b.ID)
	}
	if b.Pages != 3 || b.Size != int64(len("%PDF-1.7 second scan")) || b.Format != "application/pdf" ||
		!b.Created.Equal(clock.Now()) || !b.Expires.Equal(clock.Now().Add(DefaultRetention)) {
		t.Errorf("scan %+v", b)
	}
	got := in.List()
	if len(got) != 2 || got[0].ID != b.ID || got[1].ID != a.ID {
		t.Fatalf("List = %+v, want newest first", got)
	}
	rc, s, err := in.Open(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "%PDF-1.7 first" || s.ID != a.ID {
		t.Errorf("Open: %q %+v", body, s)
	}
	want := []string{a.ID + ".json", a.ID + ".scan", b.ID + ".json", b.ID + ".scan"}
	slices.Sort(want)
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want %v", got, want)
	}
	// Not downloaded-and-deleted without the option.
	if len(in.List()) != 2 {
		t.Error("a download deleted the scan without DeleteAfterDownload")
	}
	if err := in.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := in.Delete(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if _, _, err := in.Open(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Delete: %v", err)
	}
	if got := files(t, dir); len(got) != 2 {
		t.Errorf("after Delete the dir holds %v", got)
	}
	for _, bad := range []string{"", "../" + b.ID[:29], b.ID + "x", "ABCDEF0123456789ABCDEF0123456789", "../../etc/passwd"} {
		if _, _, err := in.Open(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q): %v", bad, err)
		}
	}
}

func TestRetentionWithRun(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock, Retention: 15 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	first := add(t, in, "first", 1)
	clock.Advance(5 * time.Minute)
	second := add(t, in, "second", 2)
	// Run waits for the first expiry, 15 minutes after the first scan.
	eventually(t, "a timer for the first expiry", func() bool {
		return slices.ContainsFunc(clock.due(), first.Expires.Equal)
	})
	clock.Advance(10*time.Minute - time.Second)
	if n := len(in.List()); n != 2 {
		t.Fatalf("1 s before the first expiry: %d scans", n)
	}
	clock.Advance(time.Second)
	eventually(t, "the first scan deleted", func() bool { return len(files(t, dir)) == 2 })
	if l := in.List(); len(l) != 1 || l[0].ID != second.ID {
		t.Fatalf("List = %+v", l)
	}
	eventually(t, "a timer for the second expiry", func() bool {
		return slices.ContainsFunc(clock.due(), second.Expires.Equal)
	})
	clock.Advance(5 * time.Minute)
	eventually(t, "the inbox empty", func() bool { return len(files(t, dir)) == 0 })
	if l := in.List(); len(l) != 0 {
		t.Fatalf("List = %+v", l)
	}
}

func TestExpiredHiddenWithoutRun(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock, Retention: time.Minute})
	s := add(t, in, "doc", 1)
	clock.Advance(time.Minute)
	if l := in.List(); len(l) != 0 {
		t.Errorf("an expired scan is listed: %+v", l)
	}
	if _, _, err := in.Open(s.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of an expired scan: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("after opening an expired scan the dir holds %v", got)
	}
	add(t, in, "doc", 1)
	add(t, in, "doc", 1)
	clock.Advance(time.Minute)
	if n := in.Purge(); n != 2 {
		t.Errorf("Purge = %d, want 2", n)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("after Purge the dir holds %v", got)
	}
}

func TestRetentionAcrossReopen(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock})
	old := add(t, in, "old", 1)
	clock.Advance(10 * time.Minute)
	young := add(t, in, "young", 2)

	// The agent restarts 4 minutes later: both are kept, with their dates.
	clock.Advance(4 * time.Minute)
	in = open(t, dir, Options{Clock: clock})
	l := in.List()
	if len(l) != 2 || l[0].ID != young.ID || !l[1].Created.Equal(old.Created) || !l[1].Expires.Equal(old.Expires) || l[0].Pages != 2 {
		t.Fatalf("after restart: %+v", l)
	}
	// Down for 2 minutes more: the old one expired meanwhile and is gone at
	// Open, files included.
	clock.Advance(2 * time.Minute)
	in = open(t, dir, Options{Clock: clock})
	if l := in.List(); len(l) != 1 || l[0].ID != young.ID {
		t.Fatalf("after the old one expired: %+v", l)
	}
	if got := files(t, dir); !slices.Equal(got, []string{young.ID + ".json", young.ID + ".scan"}) {
		t.Errorf("dir holds %v", got)
	}
	// A shorter retention applies to the scans already there.
	in = open(t, dir, Options{Clock: clock, Retention: 5 * time.Minute})
	if l := in.List(); len(l) != 0 {
		t.Errorf("retention cut to 5 min, a 6-minute-old scan is listed: %+v", l)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v", got)
	}
}

func TestClockWentBack(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock})
	add(t, in, "doc", 1)
	back := &fakeClock{now: clock.Now().Add(-time.Hour), timers: map[*fakeTimer]bool{}}
	in = open(t, dir, Options{Clock: back})
	if l := in.List(); len(l) != 0 {
		t.Errorf("a scan dated after now is kept: %+v", l)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v", got)
	}
}

func TestOpenRemovesCrashLeftovers(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock})
	kept := add(t, in, "kept", 1)
	broken := add(t, in, "broken", 1)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id := func(c byte) string { return string(bytes.Repeat([]byte{c}, 32)) }
	write(".tmp-123", "half a scan")                    // crash while receiving
	write(id('a')+".scan", "document without metadata") // crash before the metadata
	write(id('b')+".json", `{"v":1}`)                   // metadata without document
	write(id('c')+".scan", "x")
	write(id('c')+".json", "{not json")
	write(broken.ID+".scan", "broken but longer") // size differs from the metadata
	write("README", "not ours")

	in = open(t, dir, Options{Clock: clock})
	if l := in.List(); len(l) != 1 || l[0].ID != kept.ID {
		t.Fatalf("List = %+v", l)
	}
	want := []string{"README", kept.ID + ".json", kept.ID + ".scan"}
	slices.Sort(want)
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Errorf("dir holds %v", got)
	}
}

func TestDeleteAfterDownload(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock, DeleteAfterDownload: true})
	s := add(t, in, "a scan of some length", 1)

	// A download cut short keeps the scan.
	rc, _, err := in.Open(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if len(in.List()) != 1 {
		t.Fatal("a partial download deleted the scan")
	}
	// A complete one deletes it, files included.
	rc, _, err = in.Open(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	if err != nil || string(body) != "a scan of some length" {
		t.Fatalf("%q %v", body, err)
	}
	if len(in.List()) != 1 {
		t.Fatal("deleted before the reader was closed")
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if l := in.List(); len(l) != 0 {
		t.Errorf("after download: %+v", l)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("after download the dir holds %v", got)
	}
	if _, _, err := in.Open(s.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after download: %v", err)
	}
}

func TestConcurrentAddList(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock})
	const adders, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, adders*each)
	for a := range adders {
		wg.Go(func() {
			for i := range each {
				if _, err := in.Add(bytes.NewReader(fmt.Appendf(nil, "scan %d-%d", a, i)), Meta{Pages: 1}); err != nil {
					errs <- err
				}
			}
		})
	}
	stop := make(chan struct{})
	var listers sync.WaitGroup
	for range 2 {
		listers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				l := in.List()
				if !slices.IsSortedFunc(l, func(a, b Scan) int { return b.Created.Compare(a.Created) }) {
					errs <- errors.New("List not newest first")
					return
				}
				for _, s := range l {
					if !ValidID(s.ID) {
						errs <- fmt.Errorf("bad id %q", s.ID)
						return
					}
				}
				clock.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	listers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l := in.List()
	if len(l) != adders*each {
		t.Fatalf("%d scans, want %d", len(l), adders*each)
	}
	seen := map[string]bool{}
	for _, s := range l {
		rc, _, err := in.Open(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if seen[string(b)] {
			t.Errorf("content %q twice", b)
		}
		seen[string(b)] = true
	}
	if got := len(files(t, dir)); got != 2*adders*each {
		t.Errorf("%d files, want %d", got, 2*adders*each)
	}
	if n := in.DeleteAll(); n != adders*each {
		t.Errorf("DeleteAll = %d", n)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("after DeleteAll the dir holds %v", got)
	}
}

func TestLimits(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	in := open(t, dir, Options{Clock: clock, MaxBytes: 10, MaxScans: 2, MaxTotalBytes: 15})
	if _, err := in.Add(bytes.NewReader(make([]byte, 11)), Meta{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("11 bytes over a limit of 10: %v", err)
	}
	if _, err := in.Add(bytes.NewReader(nil), Meta{Format: "text/html"}); !errors.Is(err, ErrFormat) {
		t.Errorf("text/html: %v", err)
	}
	if _, err := in.Add(bytes.NewReader(nil), Meta{Pages: -1}); err == nil {
		t.Error("-1 pages accepted")
	}
	if _, err := in.Add(iotest.ErrReader(errors.New("scanner gone")), Meta{}); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("failing reader: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("failed Adds left %v", got)
	}
	s, err := in.Add(bytes.NewReader(make([]byte, 10)), Meta{Format: "image/jpeg"})
	if err != nil || s.Format != "image/jpeg" {
		t.Fatal(s, err)
	}
	if _, err := in.Add(bytes.NewReader(make([]byte, 6)), Meta{}); !errors.Is(err, ErrFull) {
		t.Errorf("16 bytes over a total of 15: %v", err)
	}
	add(t, in, "12345", 1)
	if _, err := in.Add(bytes.NewReader(nil), Meta{}); !errors.Is(err, ErrFull) {
		t.Errorf("third scan over MaxScans 2: %v", err)
	}
	if got := len(files(t, dir)); got != 4 {
		t.Errorf("%d files, want 4", got)
	}
	if _, err := Open(t.TempDir(), Options{Retention: -time.Second}); err == nil {
		t.Error("negative retention accepted")
	}
}
