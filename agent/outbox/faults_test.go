package outbox_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

func openFaults(t *testing.T, o *outbox.Outbox) []api.Fault {
	t.Helper()
	fs, err := o.OpenFaults()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestRaiseAndClear(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{})
	since := t0.Truncate(time.Millisecond)
	jam := api.Fault{Code: "media-jam", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: since}

	if err := o.Raise(jam.Device, jam.Code, jam.Severity); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	// Raising an open fault again does nothing, whatever the severity.
	if err := o.Raise(jam.Device, jam.Code, api.SeverityWarn); err != nil {
		t.Fatal(err)
	}
	if err := o.Raise(api.DeviceAgent, "outbox-near-full", api.SeverityWarn); err != nil {
		t.Fatal(err)
	}
	full := api.Fault{Code: "outbox-near-full", Device: api.DeviceAgent, Severity: api.SeverityWarn, Since: c.Now().Truncate(time.Millisecond)}
	if got, want := openFaults(t, o), []api.Fault{full, jam}; !slices.Equal(got, want) {
		t.Errorf("open faults %+v, want %+v (sorted by device, code)", got, want)
	}

	c.Add(time.Minute)
	if err := o.Clear(jam.Device, jam.Code); err != nil {
		t.Fatal(err)
	}
	// Clearing a fault that is not open does nothing.
	if err := o.Clear(jam.Device, jam.Code); err != nil {
		t.Fatal(err)
	}
	if err := o.Clear(api.DeviceScanner, "scanner-unreachable"); err != nil {
		t.Fatal(err)
	}
	if got, want := openFaults(t, o), []api.Fault{full}; !slices.Equal(got, want) {
		t.Errorf("open faults %+v, want %+v", got, want)
	}

	es := all(t, o)
	if len(es) != 3 {
		t.Fatalf("%d events, want 3 (raised, raised, cleared): %+v", len(es), es)
	}
	want := []struct {
		typ   api.EventType
		fault api.Fault
		at    time.Time
	}{
		{api.EventFaultRaised, jam, since},
		{api.EventFaultRaised, full, full.Since},
		{api.EventFaultCleared, jam, since.Add(2 * time.Minute)}, // keeps the original Since
	}
	for i, w := range want {
		e := es[i]
		if e.Type != w.typ || e.Fault == nil || *e.Fault != w.fault || !e.Time.Equal(w.at) {
			t.Errorf("event %d: %s %+v at %v, want %s %+v at %v", i, e.Type, e.Fault, e.Time, w.typ, w.fault, w.at)
		}
	}
	checkAccounting(t, o)
}

func TestFaultsSurviveReopen(t *testing.T) {
	c := newClock(t0)
	o, path := open(t, c, outbox.Options{})
	if err := o.Raise(api.DeviceScanner, "scanner-unreachable", api.SeverityFault); err != nil {
		t.Fatal(err)
	}
	before := openFaults(t, o)
	o.Close()

	c.Add(time.Hour)
	o = reopen(t, path, c, outbox.Options{})
	if got := openFaults(t, o); !slices.Equal(got, before) {
		t.Fatalf("open faults after reopen %+v, want %+v", got, before)
	}
	// Raised again after the restart: still the one fault, no second event.
	if err := o.Raise(api.DeviceScanner, "scanner-unreachable", api.SeverityFault); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, o); s.LastSeq != 1 {
		t.Errorf("raising an open fault after reopen recorded an event: last seq %d", s.LastSeq)
	}
	if err := o.Clear(api.DeviceScanner, "scanner-unreachable"); err != nil {
		t.Fatal(err)
	}
	es := all(t, o)
	if len(es) != 2 || es[1].Type != api.EventFaultCleared || !es[1].Fault.Since.Equal(before[0].Since) {
		t.Errorf("events %+v, want raised then cleared with Since %v", es, before[0].Since)
	}
	if got := openFaults(t, o); len(got) != 0 {
		t.Errorf("open faults after clear: %+v", got)
	}
}

func TestFaultsRefuseInvalid(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{})
	for name, err := range map[string]error{
		"raise, bad device":   o.Raise("toaster", "burnt", api.SeverityFault),
		"raise, bad code":     o.Raise(api.DevicePrinter, "Jam in «secret.pdf»", api.SeverityFault),
		"raise, bad severity": o.Raise(api.DevicePrinter, "media-jam", "apocalyptic"),
		"clear, bad device":   o.Clear("toaster", "burnt"),
		"clear, bad code":     o.Clear(api.DevicePrinter, ""),
	} {
		if !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%s: %v, want api.ErrInvalid", name, err)
		}
	}
	if s := stats(t, o); s.LastSeq != 0 {
		t.Errorf("invalid faults recorded events: last seq %d", s.LastSeq)
	}
}

func TestRaiseWhenFull(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{MaxBytes: outbox.MinMaxBytes})
	for {
		if err := o.Record(printed(1)); errors.Is(err, outbox.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Raise(api.DevicePrinter, "media-jam", api.SeverityFault); !errors.Is(err, outbox.ErrFull) {
		t.Fatalf("Raise on a full outbox: %v, want ErrFull", err)
	}
	// The fault was not opened without its event.
	if got := openFaults(t, o); len(got) != 0 {
		t.Errorf("open faults %+v, want none", got)
	}
}
