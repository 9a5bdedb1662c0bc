package fleet

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// TestDrawnEventsAreValid draws many actions: every usage event satisfies
// the contract once the outbox has given it a seq, an id and a time, and
// sheets never exceed pages.
func TestDrawnEventsAreValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	faults := map[string]int{}
	sources := map[api.Source]int{}
	for i := range 20000 {
		act := drawAction(rng, 0.05)
		if act.fault != nil {
			faults[act.fault.code]++
			continue
		}
		e := act.event
		e.Seq, e.ID, e.Time = uint64(i+1), "0195d7a0-0000-7000-8000-000000000001", now
		if err := e.Validate(); err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if e.Sheets != nil && *e.Sheets > *e.Pages {
			t.Fatalf("%+v: more sheets than pages", e)
		}
		if e.Type == api.EventPrintCompleted {
			sources[e.Source]++
			if e.Source == api.SourcePhone && *e.Duplex {
				t.Errorf("a phone print in duplex: %+v", e)
			}
		}
	}
	if faults["media-empty"] < 500 || faults["scanner-jam"] < 300 || sources[api.SourcePC] < 4000 || sources[api.SourcePhone] < 2000 {
		t.Errorf("faults %v, print sources %v; want media-empty and scanner-jam, PCs and phones", faults, sources)
	}
}

// TestDeviceMetrics: snapshots satisfy the contract; the toner goes down
// with the pages printed and a new cartridge comes when it is empty;
// faults show in the printer and scanner states.
func TestDeviceMetrics(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.Local)
	d := newDevice(rand.New(rand.NewPCG(3, 4)), now)
	d.used = 0
	encode := func(faults []api.Fault) api.Metrics {
		t.Helper()
		m := d.metrics(now, "2026-03-10", faults)
		m.Time = now.UTC()
		if _, err := api.Encode(m); err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		return m
	}
	level := encode(nil).Printer.Markers[0].Level
	if level != 100 {
		t.Errorf("new cartridge at %d%%", level)
	}
	pages := 10
	job := api.Event{Type: api.EventPrintCompleted, Pages: &pages}
	prev, replaced := level, false
	for range 2 * d.tonerCap / pages {
		d.use(job, "2026-03-10")
		m := encode(nil)
		l := m.Printer.Markers[0].Level
		switch {
		case l > prev && prev <= 1:
			replaced = true
		case l > prev:
			t.Fatalf("toner went up from %d to %d before it was empty", prev, l)
		}
		prev = l
		if m.WiFi.Clients < 0 || m.WiFi.Clients > 25 {
			t.Errorf("%d Wi-Fi clients", m.WiFi.Clients)
		}
	}
	if !replaced {
		t.Error("the cartridge was never replaced")
	}
	if got := encode(nil).Queue.CompletedToday; got != 2*d.tonerCap/pages {
		t.Errorf("completed today %d; want %d", got, 2*d.tonerCap/pages)
	}
	if got := d.metrics(now, "2026-03-11", nil).Queue.CompletedToday; got != 0 {
		t.Errorf("completed the next day %d; want 0", got)
	}
	m := encode([]api.Fault{
		{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: now.UTC()},
		{Code: "scanner-jam", Device: api.DeviceScanner, Severity: api.SeverityFault, Since: now.UTC()},
	})
	if m.Printer.State != api.PrinterStopped || strings.Join(m.Printer.Reasons, ",") != "media-empty" || m.Scanner.State != api.ScannerStopped {
		t.Errorf("with faults: printer %+v, scanner %+v; want both stopped", m.Printer, m.Scanner)
	}
	for range 100 {
		if v := d.visitors(); v < 1 || v > 200 {
			t.Fatalf("%d visitors in a day", v)
		}
	}
}

func TestReadCredentials(t *testing.T) {
	creds, err := ReadCredentials(strings.NewReader("# site agent password\n\nsim-0001 pi-1 s3cret!\n\tsim-0002  pi-1\tx\n"))
	if err != nil || len(creds) != 2 || creds[AgentID{"sim-0001", "pi-1"}] != "s3cret!" || creds[AgentID{"sim-0002", "pi-1"}] != "x" {
		t.Errorf("%v, %v", creds, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "no credentials"},
		{"# nothing\n", "no credentials"},
		{"sim-0001 pi-1\n", "line 1: 2 fields"},
		{"sim-0001 pi-1 a b\n", "line 1: 4 fields"},
		{"\nSim-0001 pi-1 pw\n", "line 2: site and agent"},
		{"sim-0001 pi_1 pw\n", "line 1: site and agent"},
		{"sim-0001 pi-1 pw\nsim-0001 pi-1 pw2\n", "line 2: sim-0001/pi-1 listed twice"},
		{"sim-0001 pi-1 pé\n", "printable ASCII"},
		{"sim-0001 pi-1 " + strings.Repeat("x", MaxPasswordBytes+1) + "\n", "longer than"},
		{"sim-0001 pi-1 " + strings.Repeat("x", 8*MaxPasswordBytes) + "\n", "line is longer"},
	} {
		if _, err := ReadCredentials(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v; want an error with %q", tc.in, err, tc.want)
		}
	}
	if _, err := ReadCredentials(strings.NewReader(strings.Repeat("#", MaxCredentialsBytes+1))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

func TestAgentIDs(t *testing.T) {
	cfg := Config{PerSite: 3, SitePrefix: "mairie"}
	for i, want := range []AgentID{{"mairie-0001", "pi-1"}, {"mairie-0001", "pi-2"}, {"mairie-0001", "pi-3"}, {"mairie-0002", "pi-1"}} {
		if got := cfg.AgentID(i); got != want {
			t.Errorf("agent %d: %v; want %v", i, got, want)
		}
	}
	if got := (Config{}).AgentID(12344); got != (AgentID{"sim-12345", "pi-1"}) || got.Username() != "sim-12345/pi-1" {
		t.Errorf("default naming: %v", got)
	}
}
