package alert

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// dashboard is the end of the JSON notice about agent.
func dashboard(agent string) string {
	return `"dashboard_url":"https://central.example.org/sites/mediatheque-nord/` + agent + `"}`
}

// An agent whose will was published is offline since then: one alert once
// it has been for OfflineAfter, none at the next rounds, one recovery
// notice when it is back.
func TestOfflineWill(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent)
	f.check(a)
	f.at(6 * time.Minute)
	f.status(agent, false) // the will
	f.check(a)
	f.at(15*time.Minute + 59*time.Second)
	f.check(a)
	f.expectHook()

	f.at(16 * time.Minute)
	f.check(a)
	f.expectHook(`{"kind":"offline","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:06:00Z","resolved_at":null,` +
		`"message":"L'agent pi-accueil du site mediatheque-nord est hors ligne depuis le 23/11/2026 à 14 h 06 CET (10 min).",` + dashboard(agent))
	if got := f.openIncidents(); !slices.Equal(got, []string{"offline/mediatheque-nord/pi-accueil"}) {
		t.Errorf("open incidents %q", got)
	}
	f.at(16*time.Minute + 30*time.Second)
	f.check(a)
	f.at(19 * time.Minute)
	f.check(a)
	f.expectHook()

	f.at(20 * time.Minute)
	f.status(agent, true)
	f.check(a)
	f.expectHook(`{"kind":"offline","state":"resolved","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:06:00Z","resolved_at":"2026-11-23T13:20:00Z",` +
		`"message":"L'agent pi-accueil du site mediatheque-nord est de nouveau en ligne depuis le 23/11/2026 à 14 h 20 CET, après 14 min hors ligne.",` + dashboard(agent))
	f.at(21 * time.Minute)
	f.check(a)
	f.expectHook()
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("open incidents %q", got)
	}
}

// An agent that says it is online but sends nothing for OfflineAfter is
// offline since its last message.
func TestOfflineSilent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent)
	f.at(3 * time.Minute)
	metrics := func() {
		t.Helper()
		if err := f.st.SetMetrics(f.ctx, site, agent, api.Metrics{Time: f.clock.Now()}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	metrics()
	f.at(12*time.Minute + 59*time.Second)
	f.check(a)
	f.expectHook()
	f.at(13 * time.Minute)
	f.check(a)
	f.expectHook(`{"kind":"offline","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:03:00Z","resolved_at":null,` +
		`"message":"L'agent pi-accueil du site mediatheque-nord est hors ligne depuis le 23/11/2026 à 14 h 03 CET (10 min).",` + dashboard(agent))
	f.at(25 * time.Minute)
	metrics()
	f.check(a)
	f.expectHook(`{"kind":"offline","state":"resolved","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:03:00Z","resolved_at":"2026-11-23T13:25:00Z",` +
		`"message":"L'agent pi-accueil du site mediatheque-nord est de nouveau en ligne depuis le 23/11/2026 à 14 h 25 CET, après 22 min hors ligne.",` + dashboard(agent))
}

// A registered agent that never reported is not offline.
func TestNeverSeen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent)
	if err := f.st.AddAgent(f.ctx, storeAgent("pi-neuf")); err != nil {
		t.Fatal(err)
	}
	f.at(10 * time.Hour)
	f.status(agent, true)
	f.check(a)
	f.expectHook()
}

// A fault open for FaultAfter (from the agent's Since) is told once, and
// its end once.
func TestFault(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent, api.Fault{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: t0.Add(-5 * time.Minute)})
	f.check(a)
	f.at(24*time.Minute + 59*time.Second)
	f.heartbeat(agent)
	f.check(a)
	f.expectHook()
	f.at(25 * time.Minute)
	f.check(a)
	f.at(26 * time.Minute)
	f.heartbeat(agent)
	f.check(a)
	f.expectHook(`{"kind":"fault","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"printer","code":"media-empty","severity":"fault",` +
		`"since":"2026-11-23T12:55:00Z","resolved_at":null,` +
		`"message":"Site mediatheque-nord, agent pi-accueil : plus de papier dans l'imprimante (media-empty) depuis le 23/11/2026 à 13 h 55 CET (30 min).",` + dashboard(agent))
	if got := f.openIncidents(); !slices.Equal(got, []string{"fault/mediatheque-nord/pi-accueil/printer/media-empty"}) {
		t.Errorf("open incidents %q", got)
	}

	f.at(40 * time.Minute)
	f.status(agent, true) // the fault is no longer listed: cleared now
	f.at(41 * time.Minute)
	f.check(a)
	f.check(a)
	f.expectHook(`{"kind":"fault","state":"resolved","site":"mediatheque-nord","agent":"pi-accueil","device":"printer","code":"media-empty","severity":"fault",` +
		`"since":"2026-11-23T12:55:00Z","resolved_at":"2026-11-23T13:40:00Z",` +
		`"message":"Site mediatheque-nord, agent pi-accueil : résolu le 23/11/2026 à 14 h 40 CET après 45 min — plus de papier dans l'imprimante (media-empty).",` + dashboard(agent))
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("open incidents %q", got)
	}
}

// A fault that clears before FaultAfter never alerts.
func TestFaultClearedEarly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent, api.Fault{Code: "media-jam", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: t0})
	for _, d := range []time.Duration{5 * time.Minute, 29 * time.Minute} {
		f.at(d)
		f.heartbeat(agent)
		f.check(a)
	}
	f.status(agent, true)
	for _, d := range []time.Duration{31 * time.Minute, 2 * time.Hour} {
		f.at(d)
		f.heartbeat(agent)
		f.check(a)
	}
	f.expectHook()
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("open incidents %q", got)
	}
}

// The faults of an offline agent are unknown: they raise no alert and end
// no incident until the agent is back.
func TestFaultOfOfflineAgent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	jam := api.Fault{Code: "scanner-jam", Device: api.DeviceScanner, Severity: api.SeverityFault, Since: t0}
	f.addAgent(agent, jam)
	f.at(5 * time.Minute)
	f.status(agent, false)
	f.at(35 * time.Minute)
	f.check(a)
	f.expectHook(`{"kind":"offline","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:05:00Z","resolved_at":null,` +
		`"message":"L'agent pi-accueil du site mediatheque-nord est hors ligne depuis le 23/11/2026 à 14 h 05 CET (30 min).",` + dashboard(agent))
	f.at(40 * time.Minute)
	f.status(agent, true, jam)
	f.check(a)
	f.expectHook(
		`{"kind":"fault","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"scanner","code":"scanner-jam","severity":"fault",`+
			`"since":"2026-11-23T13:00:00Z","resolved_at":null,`+
			`"message":"Site mediatheque-nord, agent pi-accueil : bourrage papier dans le scanner (scanner-jam) depuis le 23/11/2026 à 14 h 00 CET (40 min).",`+dashboard(agent),
		`{"kind":"offline","state":"resolved","site":"mediatheque-nord","agent":"pi-accueil","device":"","code":"","severity":"",`+
			`"since":"2026-11-23T13:05:00Z","resolved_at":"2026-11-23T13:40:00Z",`+
			`"message":"L'agent pi-accueil du site mediatheque-nord est de nouveau en ligne depuis le 23/11/2026 à 14 h 40 CET, après 35 min hors ligne.",`+dashboard(agent))
}

// Incidents live in the store: a restarted central (another Alerter, on
// another connection to the same database) neither repeats an alert nor
// forgets to tell its end.
func TestRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.alerter(f.options())
	f.addAgent(agent, api.Fault{Code: "wifi-ap-down", Device: api.DeviceWiFi, Severity: api.SeverityFault, Since: t0})
	f.addAgent("pi-atelier")
	f.at(2 * time.Minute)
	f.status("pi-atelier", false)
	f.at(30 * time.Minute)
	f.heartbeat(agent)
	f.check(first)
	if got := len(f.hook.take(t)); got != 2 {
		t.Fatalf("%d notices, want 2", got)
	}

	o := f.options()
	o.Store = f.openStore()
	second := f.alerter(o)
	f.at(31 * time.Minute)
	f.heartbeat(agent)
	f.check(second)
	f.expectHook()

	f.at(32 * time.Minute)
	f.status(agent, true)
	f.status("pi-atelier", true)
	f.check(second)
	f.check(first)
	f.check(second)
	got := f.hook.take(t)
	if len(got) != 2 ||
		!strings.Contains(got[0], `"kind":"fault","state":"resolved","site":"mediatheque-nord","agent":"pi-accueil","device":"wifi","code":"wifi-ap-down"`) ||
		!strings.Contains(got[1], `"kind":"offline","state":"resolved","site":"mediatheque-nord","agent":"pi-atelier"`) {
		t.Errorf("after the restart, want the two recovery notices once:\n%s", joinLines(got))
	}
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("open incidents %q", got)
	}
}

// A delivery that fails is tried again within the round, waiting on the
// clock, then at the next round; the incident is recorded only once the
// notice is delivered.
func TestWebhookRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.alerter(f.options())
	f.addAgent(agent)
	f.status(agent, false)
	f.at(10 * time.Minute)
	f.hook.failNext(http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusBadGateway)

	done := make(chan error, 1)
	go func() { done <- a.Check(f.ctx) }()
	for _, wait := range []time.Duration{2 * time.Second, 4 * time.Second} {
		if err := f.clock.BlockUntilContext(f.ctx, 1); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(wait)
	}
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Fatalf("Check after three failures: %v", err)
	}
	bodies := f.hook.take(t)
	if len(bodies) != 3 || bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Fatalf("want the same notice three times, got\n%s", joinLines(bodies))
	}
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("incident recorded before delivery: %q", got)
	}

	// A refusal (4xx) is not retried within the round: no wait.
	f.at(10*time.Minute + 30*time.Second)
	f.hook.failNext(http.StatusBadRequest)
	go func() { done <- a.Check(f.ctx) }()
	if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Fatalf("Check after a refusal: %v", err)
	}
	f.expectHook(bodies[0])

	f.at(11 * time.Minute)
	f.check(a)
	f.expectHook(bodies[0]) // as first built, at t0+10m
	f.at(12 * time.Minute)
	f.check(a)
	f.expectHook()
	if got := f.openIncidents(); len(got) != 1 {
		t.Errorf("open incidents %q", got)
	}
}

// wait returns what a Check running in a goroutine returned.
func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Check did not return")
		return nil
	}
}

// Run makes a round at once, then one per interval of the clock, and
// returns nil when its context ends.
func TestRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options()
	o.Interval = time.Minute
	a := f.alerter(o)
	f.addAgent(agent)
	f.status(agent, false)
	f.at(10 * time.Minute)

	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	received := func() {
		t.Helper()
		select {
		case <-f.hook.got:
		case <-time.After(30 * time.Second):
			t.Fatal("no notice")
		}
	}
	received()
	f.status(agent, true)
	if err := f.clock.BlockUntilContext(f.ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	received()
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := f.hook.take(t)
	if len(got) != 2 || !strings.Contains(got[0], `"state":"open"`) || !strings.Contains(got[1], `"state":"resolved"`) {
		t.Errorf("want an alert and its recovery notice:\n%s", joinLines(got))
	}
}

// English messages; an unknown fault code is shown as it is.
func TestEnglish(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options()
	o.Language = English
	o.DashboardURL = ""
	a := f.alerter(o)
	f.addAgent(agent, api.Fault{Code: "laser-misaligned", Device: api.DevicePrinter, Severity: api.SeverityWarn, Since: t0})
	f.addAgent("pi-atelier")
	f.status("pi-atelier", false)
	f.at(2*time.Hour + 5*time.Minute)
	f.heartbeat(agent)
	f.check(a)
	f.expectHook(
		`{"kind":"fault","state":"open","site":"mediatheque-nord","agent":"pi-accueil","device":"printer","code":"laser-misaligned","severity":"warn",`+
			`"since":"2026-11-23T13:00:00Z","resolved_at":null,`+
			`"message":"Site mediatheque-nord, agent pi-accueil: problem \"laser-misaligned\" on the printer since 2026-11-23 14:00 CET (2 h 5 min).",`+
			`"dashboard_url":""}`,
		`{"kind":"offline","state":"open","site":"mediatheque-nord","agent":"pi-atelier","device":"","code":"","severity":"",`+
			`"since":"2026-11-23T13:00:00Z","resolved_at":null,`+
			`"message":"Agent pi-atelier of site mediatheque-nord has been offline since 2026-11-23 14:00 CET (2 h 5 min).",`+
			`"dashboard_url":""}`)
}

// Without any channel, incidents are still recorded, for the dashboard.
func TestNoChannel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options()
	o.WebhookURL = ""
	a := f.alerter(o)
	f.addAgent(agent)
	f.status(agent, false)
	f.at(time.Hour)
	f.check(a)
	if got := f.openIncidents(); !slices.Equal(got, []string{"offline/mediatheque-nord/pi-accueil"}) {
		t.Errorf("open incidents %q", got)
	}
	f.expectHook()
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, make([]byte, maxPasswordBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	smtp := SMTP{Addr: "127.0.0.1:25", From: "relais@example.org", To: []string{"tech@example.org"}, Username: "relais", PasswordFile: pw}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no store", func(o *Options) { o.Store = nil }, "no store"},
		{"no delay", func(o *Options) { o.FaultAfter = 0 }, "want durations above zero"},
		{"language", func(o *Options) { o.Language = "de" }, `language "de"`},
		{"webhook", func(o *Options) { o.WebhookURL = "ftp://example.org/" }, "webhook URL"},
		{"dashboard", func(o *Options) { o.DashboardURL = "central.example.org" }, "dashboard URL"},
		{"smtp addr", func(o *Options) { o.SMTP = smtp; o.SMTP.Addr = "smtp.example.org" }, "want host:port"},
		{"smtp from", func(o *Options) { o.SMTP = smtp; o.SMTP.From = "relais" }, "SMTP sender"},
		{"smtp to", func(o *Options) { o.SMTP = smtp; o.SMTP.To = nil }, "no recipient"},
		{"smtp bad to", func(o *Options) { o.SMTP = smtp; o.SMTP.To = []string{"tech@example.org\r\nBcc: x@example.org"} }, "SMTP recipient"},
		{"no password file", func(o *Options) { o.SMTP = smtp; o.SMTP.PasswordFile = "" }, "without a password file"},
		{"unreadable password", func(o *Options) { o.SMTP = smtp; o.SMTP.PasswordFile = filepath.Join(dir, "none") }, "no such file"},
		{"empty password", func(o *Options) { o.SMTP = smtp; o.SMTP.PasswordFile = empty }, "empty"},
		{"huge password", func(o *Options) { o.SMTP = smtp; o.SMTP.PasswordFile = huge }, "larger than"},
		{"smtp without server", func(o *Options) { o.SMTP = smtp; o.SMTP.Addr = "" }, "without a server address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := f.options()
			tc.edit(&o)
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
	o := f.options()
	o.SMTP = smtp
	if _, err := New(o); err != nil {
		t.Errorf("New with valid SMTP settings: %v", err)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration][2]string{
		30 * time.Second:                {"moins d'une minute", "less than a minute"},
		59 * time.Minute:                {"59 min", "59 min"},
		2 * time.Hour:                   {"2 h", "2 h"},
		2*time.Hour + 5*time.Minute:     {"2 h 5 min", "2 h 5 min"},
		48 * time.Hour:                  {"2 j", "2 d"},
		75*time.Hour + 10*time.Minute:   {"3 j 3 h", "3 d 3 h"},
		-5 * time.Minute:                {"moins d'une minute", "less than a minute"},
		10*time.Minute + 59*time.Second: {"10 min", "10 min"},
	} {
		if fr, en := formatDuration(French, d), formatDuration(English, d); fr != want[0] || en != want[1] {
			t.Errorf("formatDuration(%v) = %q, %q; want %q, %q", d, fr, en, want[0], want[1])
		}
	}
}
