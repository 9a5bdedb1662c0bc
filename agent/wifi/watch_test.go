package wifi

import (
	"bytes"
	"context"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/hostapd/hostapdtest"
	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// The stations of the tests: distinctive addresses, so that finding one in
// a file is no coincidence.
const (
	macA = "a4:5e:60:c1:d2:e3"
	macB = "52:bd:7c:3a:91:e4"
	macC = "3c:22:fb:07:8e:5d"
)

var paris = time.FixedZone("CET", 3600)

// clock is the injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// faults forwards to the real outbox and counts the watch's calls.
type faults struct {
	*outbox.Outbox
	raises, clears atomic.Int32
}

func (f *faults) Raise(d api.Device, code string, s api.Severity) error {
	f.raises.Add(1)
	return f.Outbox.Raise(d, code, s)
}

func (f *faults) Clear(d api.Device, code string) error {
	f.clears.Add(1)
	return f.Outbox.Clear(d, code)
}

// site is one agent's storage: the real outbox, its clock, the watch's
// configuration.
type site struct {
	dir    string
	clock  *clock
	outbox *outbox.Outbox
	faults *faults
}

func newSite(t *testing.T, start time.Time) *site {
	t.Helper()
	s := &site{dir: t.TempDir(), clock: &clock{t: start}}
	ob, err := outbox.Open(filepath.Join(s.dir, "outbox.db"), outbox.Options{Now: s.clock.Now, Location: paris})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	s.outbox, s.faults = ob, &faults{Outbox: ob}
	return s
}

func (s *site) config(t *testing.T, ctrl string) Config {
	return Config{HostapdCtrl: ctrl, RuntimeDir: t.TempDir(), StorageDir: s.dir,
		Faults: s.faults, Recorder: s.outbox, Now: s.clock.Now, Location: paris,
		Poll: 20 * time.Millisecond, PingInterval: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
}

// events returns the outbox's events of one type.
func (s *site) events(t *testing.T, typ api.EventType) []api.Event {
	t.Helper()
	all, err := s.outbox.Recent(outbox.MaxList)
	if err != nil {
		t.Fatal(err)
	}
	var evs []api.Event
	for _, e := range all {
		if e.Type == typ {
			evs = append(evs, e)
		}
	}
	return evs
}

// start runs w until the test ends or the returned stop is called.
func start(t *testing.T, w *Watch) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor waits until cond holds, woken by the watch's changes, at most
// 10 s.
func waitFor(t *testing.T, w *Watch, what string, cond func() bool) {
	t.Helper()
	limit := time.After(10 * time.Second)
	for {
		changed := w.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-limit:
			t.Fatalf("not %s within 10 s: snapshot %+v, err %v", what, w.Snapshot(), w.Err())
		}
	}
}

func clients(w *Watch, n int) func() bool {
	return func() bool { s := w.Snapshot(); return s.Up && s.Clients == n }
}

func visitorsAre(w *Watch, day string, n int) func() bool {
	return func() bool { d, v := w.Visitors(); return d == day && v == n }
}

func TestHostapdCountsVisitors(t *testing.T) {
	t.Parallel()
	h := hostapdtest.Start(t)
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	w, err := New(s.config(t, h.Ctrl))
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	waitFor(t, w, "up", clients(w, 0))
	if got, want := w.Snapshot(), (api.WiFi{Up: true, SSID: hostapdtest.SSID, Channel: hostapdtest.Channel}); got != want {
		t.Errorf("snapshot = %+v, want %+v", got, want)
	}
	if err := w.Snapshot().Validate(); err != nil {
		t.Error(err)
	}

	h.Command("NEW_STA " + macA)
	h.Command("NEW_STA " + macB)
	waitFor(t, w, "2 clients, 2 visitors", func() bool { return clients(w, 2)() && visitorsAre(w, "2026-03-10", 2)() })
	h.Command("DEAUTHENTICATE " + macA)
	waitFor(t, w, "1 client", clients(w, 1))
	h.WaitGone(macA)
	h.Command("NEW_STA " + macA) // the same visitor again
	waitFor(t, w, "2 clients", clients(w, 2))
	if d, n := w.Visitors(); n != 2 {
		t.Errorf("visitors of %s = %d, want 2: the same station twice counts once", d, n)
	}
	if f, err := s.outbox.OpenFaults(); err != nil || len(f) != 0 {
		t.Errorf("open faults %v, %v", f, err)
	}
}

func TestHostapdKilledRestartedDisabled(t *testing.T) {
	t.Parallel()
	h := hostapdtest.Start(t)
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	w, err := New(s.config(t, h.Ctrl))
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	h.Command("NEW_STA " + macA)
	waitFor(t, w, "1 client", clients(w, 1))

	openAPDown := func() bool {
		fs, err := s.outbox.OpenFaults()
		if err != nil {
			t.Fatal(err)
		}
		return len(fs) == 1 && fs[0].Code == FaultAPDown && fs[0].Device == api.DeviceWiFi && fs[0].Severity == api.SeverityFault
	}
	h.Kill()
	waitFor(t, w, "down with the fault open", func() bool { return !w.Snapshot().Up && openAPDown() })
	if w.Err() == nil || w.Snapshot() != (api.WiFi{}) {
		t.Errorf("down: snapshot %+v, err %v", w.Snapshot(), w.Err())
	}

	h.Restart() // stations are gone with the old process
	waitFor(t, w, "up again", func() bool { return clients(w, 0)() && !openAPDown() })
	h.Command("NEW_STA " + macA)
	h.Command("NEW_STA " + macC)
	waitFor(t, w, "2 clients", clients(w, 2))
	if d, n := w.Visitors(); n != 2 {
		t.Errorf("visitors of %s = %d, want 2 (A before and after the restart, and C)", d, n)
	}

	h.Command("DISABLE")
	waitFor(t, w, "disabled", func() bool { return !w.Snapshot().Up && openAPDown() })
	h.Command("ENABLE")
	waitFor(t, w, "enabled", func() bool { return w.Snapshot().Up && !openAPDown() })

	if r, c := len(s.events(t, api.EventFaultRaised)), len(s.events(t, api.EventFaultCleared)); r != 2 || c != 2 {
		t.Errorf("fault.raised ×%d, fault.cleared ×%d; want 2 and 2 (kill, disable)", r, c)
	}
	// One Clear at start settles a fault a previous run may have left.
	if r, c := s.faults.raises.Load(), s.faults.clears.Load(); r != 2 || c != 3 {
		t.Errorf("Raise ×%d, Clear ×%d; want 2 and 3", r, c)
	}
}

func TestHostapdAbsentAtStart(t *testing.T) {
	t.Parallel()
	h := hostapdtest.Start(t)
	h.Stop()
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	w, err := New(s.config(t, h.Ctrl))
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	waitFor(t, w, "reported down", func() bool { return w.Err() != nil && s.faults.raises.Load() == 1 })
	h.Restart()
	waitFor(t, w, "up with no fault open", func() bool {
		f, err := s.outbox.OpenFaults()
		return err == nil && len(f) == 0 && clients(w, 0)()
	})
}

func TestDayRolloverAndRestarts(t *testing.T) {
	t.Parallel()
	h := hostapdtest.Start(t)
	s := newSite(t, time.Date(2026, 3, 10, 23, 58, 0, 0, paris))
	cfg := s.config(t, h.Ctrl)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, w)
	h.Command("NEW_STA " + macA)
	h.Command("NEW_STA " + macB)
	waitFor(t, w, "2 visitors", func() bool { return clients(w, 2)() && visitorsAre(w, "2026-03-10", 2)() })
	h.Command("DEAUTHENTICATE " + macB) // A stays connected over midnight

	s.clock.Set(time.Date(2026, 3, 11, 0, 0, 5, 0, paris))
	waitFor(t, w, "the next day", func() bool { return visitorsAre(w, "2026-03-11", 1)() && len(s.events(t, api.EventWiFiDaily)) == 1 })
	daily := s.events(t, api.EventWiFiDaily)[0]
	if daily.Day != "2026-03-10" || daily.Visitors == nil || *daily.Visitors != 2 {
		t.Errorf("wifi.daily = day %q visitors %v, want 2026-03-10 and 2", daily.Day, daily.Visitors)
	}
	h.WaitGone(macB)
	h.Command("NEW_STA " + macB)
	waitFor(t, w, "B counted again on the new day", visitorsAre(w, "2026-03-11", 2))

	// A restart the same day keeps the count and counts nobody twice.
	stop()
	w, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d, n := w.Visitors(); d != "2026-03-11" || n != 2 {
		t.Errorf("after restart: %s, %d; want 2026-03-11, 2", d, n)
	}
	stop = start(t, w)
	h.Command("NEW_STA " + macC)
	waitFor(t, w, "3 clients", clients(w, 3))
	if d, n := w.Visitors(); n != 3 {
		t.Errorf("visitors of %s = %d, want 3", d, n)
	}

	// Stopped over two midnights: the last day counted is reported once,
	// at the next start, and not again at the one after.
	stop()
	s.clock.Set(time.Date(2026, 3, 13, 9, 0, 0, 0, paris))
	for range 2 {
		w, err = New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop = start(t, w)
		waitFor(t, w, "up", func() bool { return w.Snapshot().Up })
		stop()
	}
	var got []string
	for _, e := range s.events(t, api.EventWiFiDaily) {
		got = append(got, e.Day+"="+strconv.Itoa(*e.Visitors))
	}
	if strings.Join(got, " ") != "2026-03-10=2 2026-03-11=3" {
		t.Errorf("wifi.daily events: %v", got)
	}

	assertNoMAC(t, s.dir, macA, macB, macC)
}

// assertNoMAC fails if any file under dir holds one of the addresses, as
// text (any case, with or without separators) or as its 6 bytes.
func assertNoMAC(t *testing.T, dir string, macs ...string) {
	t.Helper()
	var forms [][]byte
	for _, m := range macs {
		hw, err := net.ParseMAC(m)
		if err != nil {
			t.Fatal(err)
		}
		plain := hex.EncodeToString(hw)
		forms = append(forms, []byte(m), []byte(strings.ToUpper(m)), []byte(strings.ReplaceAll(m, ":", "-")),
			[]byte(plain), []byte(strings.ToUpper(plain)), []byte(hw))
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(bytes.ToLower(b), bytes.ToLower(f)) || bytes.Contains(b, f) {
				t.Errorf("%s holds a station address (%q)", path, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Errorf("only %d files under %s: the check looked at nothing", files, dir)
	}
	fi, err := os.Stat(StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", StatePath(dir), fi.Mode().Perm())
	}
}
