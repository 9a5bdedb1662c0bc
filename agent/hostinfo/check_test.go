package hostinfo

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// calls forwards to the real outbox and logs the Checker's calls.
type calls struct {
	*outbox.Outbox
	log  []string
	fail bool
}

func (c *calls) Raise(d api.Device, code string, s api.Severity) error {
	if c.fail {
		return errors.New("outbox: full of undelivered events")
	}
	c.log = append(c.log, "+"+code+"/"+string(s))
	return c.Outbox.Raise(d, code, s)
}

func (c *calls) Clear(d api.Device, code string) error {
	if c.fail {
		return errors.New("outbox: full of undelivered events")
	}
	c.log = append(c.log, "-"+code)
	return c.Outbox.Clear(d, code)
}

func (c *calls) take() []string { l := c.log; c.log = nil; return l }

func openFaults(t *testing.T, ob *outbox.Outbox) []string {
	t.Helper()
	fs, err := ob.OpenFaults()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, f := range fs {
		if f.Device != api.DeviceHost {
			t.Errorf("fault %+v not of device host", f)
		}
		codes = append(codes, f.Code+"/"+string(f.Severity))
	}
	return codes
}

func newOutbox(t *testing.T) *outbox.Outbox {
	t.Helper()
	now := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

func healthy() api.Host {
	return api.Host{CPUTempC: new(50.0), DiskFreeBytes: 20 << 30, DiskTotalBytes: 30 << 30,
		MemAvailableBytes: 1 << 30, MemTotalBytes: 4 << 30, UptimeS: 3600, Load1: 0.3, ClockSynced: true}
}

func TestCheckRaisesAndClearsOnce(t *testing.T) {
	ob := newOutbox(t)
	f := &calls{Outbox: ob}
	c := NewChecker(f)
	check := func(h api.Host) []string {
		t.Helper()
		if err := c.Check(h); err != nil {
			t.Fatal(err)
		}
		return f.take()
	}
	// The first check settles every code.
	if got := check(healthy()); len(got) != 6 {
		t.Errorf("first check: %v", got)
	}
	if got := check(healthy()); got != nil {
		t.Errorf("nothing changed, yet %v", got)
	}

	steps := []struct {
		name  string
		edit  func(*api.Host)
		calls []string
		open  []string
	}{
		{"disk low", func(h *api.Host) { h.DiskFreeBytes = 1 << 30 }, // 1 GiB of 30: 3.3 %
			[]string{"+disk-low/warn"}, []string{"disk-low/warn"}},
		{"disk full", func(h *api.Host) { h.DiskFreeBytes = 100 << 20 },
			[]string{"+disk-full/fault", "-disk-low"}, []string{"disk-full/fault"}},
		{"small disk, 150 MB free: full", func(h *api.Host) { h.DiskFreeBytes, h.DiskTotalBytes = 150<<20, 1<<30 },
			nil, []string{"disk-full/fault"}},
		{"disk not read: unchanged", func(h *api.Host) { h.DiskFreeBytes, h.DiskTotalBytes = 0, 0 },
			nil, []string{"disk-full/fault"}},
		{"disk freed", func(h *api.Host) {}, []string{"-disk-full"}, nil},
		{"under-voltage now", func(h *api.Host) { h.Throttled = []string{"under-voltage", "under-voltage-occurred"} },
			[]string{"+under-voltage/fault"}, []string{"under-voltage/fault"}},
		{"under-voltage past", func(h *api.Host) { h.Throttled = []string{"under-voltage-occurred"} },
			[]string{"-under-voltage", "+under-voltage-occurred/warn"}, []string{"under-voltage-occurred/warn"}},
		{"rebooted", func(h *api.Host) {}, []string{"-under-voltage-occurred"}, nil},
		{"hot", func(h *api.Host) { h.CPUTempC = new(80.0) }, []string{"+cpu-hot/warn"}, []string{"cpu-hot/warn"}},
		{"cooling, still hot (hysteresis)", func(h *api.Host) { h.CPUTempC = new(77.5) }, nil, []string{"cpu-hot/warn"}},
		{"no temperature: unchanged", func(h *api.Host) { h.CPUTempC = nil }, nil, []string{"cpu-hot/warn"}},
		{"cool", func(h *api.Host) { h.CPUTempC = new(74.9) }, []string{"-cpu-hot"}, nil},
		{"warm, below the threshold", func(h *api.Host) { h.CPUTempC = new(79.9) }, nil, nil},
		{"clock unsynced just after boot: grace", func(h *api.Host) { h.ClockSynced, h.UptimeS = false, 30 }, nil, nil},
		{"clock unsynced after the grace", func(h *api.Host) { h.ClockSynced, h.UptimeS = false, ClockGraceS }, []string{"+clock-unsynced/warn"}, []string{"clock-unsynced/warn"}},
		{"clock synced", func(h *api.Host) {}, []string{"-clock-unsynced"}, nil},
	}
	for _, s := range steps {
		h := healthy()
		s.edit(&h)
		if got := check(h); !slices.Equal(got, s.calls) {
			t.Errorf("%s: calls %v, want %v", s.name, got, s.calls)
		}
		if got := openFaults(t, ob); !slices.Equal(got, s.open) {
			t.Errorf("%s: open %v, want %v", s.name, got, s.open)
		}
	}
}

func TestCheckClearsWhatAPreviousRunLeft(t *testing.T) {
	ob := newOutbox(t)
	if err := ob.Raise(api.DeviceHost, FaultCPUHot, api.SeverityWarn); err != nil {
		t.Fatal(err)
	}
	if err := NewChecker(ob).Check(healthy()); err != nil {
		t.Fatal(err)
	}
	if got := openFaults(t, ob); got != nil {
		t.Errorf("open after restart: %v", got)
	}
}

func TestCheckRetriesFailedCalls(t *testing.T) {
	ob := newOutbox(t)
	f := &calls{Outbox: ob, fail: true}
	c := NewChecker(f)
	h := healthy()
	h.DiskFreeBytes = 10 << 20
	if err := c.Check(h); err == nil {
		t.Fatal("failures not reported")
	}
	f.fail = false
	if err := c.Check(h); err != nil {
		t.Fatal(err)
	}
	if got := openFaults(t, ob); !slices.Equal(got, []string{"disk-full/fault"}) {
		t.Errorf("open %v", got)
	}
}
