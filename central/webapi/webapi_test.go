package webapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/central/webapi"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// commander records the commands it is asked to send, after checking that
// they encode on the wire; it fails when err is set.
type commander struct {
	mu   sync.Mutex
	sent []string // site/agent/name/req
	err  error
}

func (c *commander) SendCommand(ctx context.Context, site, agent string, cmd api.Command) error {
	if c.err != nil {
		return c.err
	}
	if _, err := api.Encode(cmd); err != nil {
		return err
	}
	if _, err := api.ParseTopic(api.CommandTopic(site, agent, cmd.Name)); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fmt.Sprintf("%s/%s/%s/%s/%d", site, agent, cmd.Name, cmd.Req, cmd.Seconds))
	return nil
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	clk       *clock
	st        store.Store
	a         *auth.Auth
	cmd       *commander
	srv       *httptest.Server
	tech, mgr string // API tokens
}

func event(typ api.EventType, seq uint64, at time.Time) api.Event {
	return api.Event{Seq: seq, ID: uuid.Must(uuid.NewV7()).String(), Time: at, Type: typ}
}

// newFixture fills a real SQLite store with three agents:
//   - lyon-1/pi is registered and never reported;
//   - paris-2/pi-a is online with a printer fault open (and a jam closed
//     before it), metrics and usage;
//   - paris-2/pi-b said it was online 30 minutes ago: offline now.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, cmd: &commander{}, clk: &clock{t: now}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.AddAgent(ctx, store.Agent{Site: "lyon-1", Agent: "pi", SecretHash: []byte("hash"), Created: now.Add(-48 * time.Hour)}))

	jam := api.Fault{Code: "media-jam", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: now.Add(-3 * time.Hour)}
	empty := api.Fault{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: now.Add(-time.Hour)}
	online := func(h api.Health, faults ...api.Fault) api.Status {
		return api.Status{Online: true, Time: now, Version: "1.2.0", Health: h, Faults: faults}
	}
	must(st.SetStatus(ctx, "paris-2", "pi-a", online(api.HealthFault, jam), now.Add(-2*time.Hour)))
	must(st.SetStatus(ctx, "paris-2", "pi-a", online(api.HealthFault, empty), now.Add(-time.Minute)))
	must(st.SetMetrics(ctx, "paris-2", "pi-a", api.Metrics{
		Time: now.Add(-time.Minute),
		Printer: &api.Printer{State: api.PrinterStopped, Reasons: []string{"media-empty"},
			Markers: []api.Marker{{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 42}}},
		WiFi: &api.WiFi{Up: true, SSID: "relais", Channel: 6, Clients: 3},
	}, now.Add(-time.Minute)))
	day1 := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	prt := event(api.EventPrintCompleted, 1, day1)
	prt.Pages, prt.Source = new(3), api.SourcePC
	cp := event(api.EventCopyCompleted, 2, day1)
	cp.Pages = new(2)
	scan := event(api.EventScanCompleted, 3, day2)
	scan.Pages, scan.Format = new(1), "application/pdf"
	wifi := event(api.EventWiFiDaily, 4, day2)
	wifi.Day, wifi.Visitors = "2026-03-09", new(7)
	old := event(api.EventPrintCompleted, 5, time.Date(2025, 6, 15, 10, 0, 0, 0, time.UTC))
	old.Pages, old.Source = new(10), api.SourcePhone
	if _, err := st.Ingest(ctx, "paris-2", "pi-a", []api.Event{prt, cp, scan, wifi, old}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	must(st.SetStatus(ctx, "paris-2", "pi-b", online(api.HealthOK), now.Add(-30*time.Minute)))

	f.a = auth.New(auth.Options{Store: st, Now: f.clk.Now})
	if f.tech, err = f.a.NewToken(ctx, "tech-script", store.Technician); err != nil {
		t.Fatal(err)
	}
	if f.mgr, err = f.a.NewToken(ctx, "manager-script", store.Manager); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(webapi.Handler(webapi.Options{
		Store: st, Auth: f.a, Commander: f.cmd, Now: f.clk.Now, OfflineAfter: 10 * time.Minute,
		Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// call sends a request with token (an API token, or "cookie=VALUE") and
// decodes the JSON answer into out when it is not nil.
func (f *fixture) call(t *testing.T, method, path, token string, body io.Reader, out any, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := strings.CutPrefix(token, "cookie="); ok {
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: v})
	} else if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
		t.Errorf("%s %s: Content-Type %q", method, path, resp.Header.Get("Content-Type"))
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func TestSites(t *testing.T) {
	f := newFixture(t)
	var got struct{ Sites []webapi.Site }
	if code, body := f.call(t, "GET", "/api/v1/sites", f.mgr, nil, &got); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if len(got.Sites) != 2 {
		t.Fatalf("%d sites: %+v", len(got.Sites), got.Sites)
	}
	lyon, paris := got.Sites[0], got.Sites[1]
	if lyon.Site != "lyon-1" || lyon.Health != "offline" || lyon.Online || !lyon.LastSeen.IsZero() ||
		len(lyon.Agents) != 1 || !lyon.Agents[0].Registered || lyon.Agents[0].Online || lyon.Agents[0].Health != "offline" {
		t.Errorf("lyon-1: %+v", lyon)
	}
	if paris.Site != "paris-2" || paris.Health != "fault" || paris.Online || !paris.LastSeen.Equal(now.Add(-time.Minute)) || len(paris.Agents) != 2 {
		t.Fatalf("paris-2: %+v", paris)
	}
	a, b := paris.Agents[0], paris.Agents[1]
	if a.Agent != "pi-a" || !a.Online || a.Health != "fault" || a.Version != "1.2.0" || a.Registered ||
		len(a.Faults) != 1 || a.Faults[0].Code != "media-empty" {
		t.Errorf("pi-a: %+v", a)
	}
	if b.Agent != "pi-b" || b.Online || b.Health != "offline" || !b.LastSeen.Equal(now.Add(-30*time.Minute)) || b.Faults == nil {
		t.Errorf("pi-b: %+v", b)
	}
}

func TestAgent(t *testing.T) {
	f := newFixture(t)
	var d webapi.AgentDetail
	if code, body := f.call(t, "GET", "/api/v1/sites/paris-2/agents/pi-a", f.mgr, nil, &d); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if d.Site != "paris-2" || d.Agent.Agent != "pi-a" || !d.Online || d.Status.Health != api.HealthFault ||
		d.Metrics == nil || d.Metrics.Printer.Markers[0].Level != 42 || d.Metrics.WiFi.Clients != 3 ||
		d.Upto != 5 || d.Events != 5 || d.Commands == nil {
		t.Errorf("%+v", d)
	}
	// Commands appear, newest first.
	for _, name := range []string{"identify", "refresh"} {
		f.clk.Advance(time.Second)
		if code, body := f.call(t, "POST", "/api/v1/sites/paris-2/agents/pi-a/commands/"+name, f.tech, nil, nil); code != 202 {
			t.Fatalf("%s: %d %s", name, code, body)
		}
	}
	d = webapi.AgentDetail{}
	f.call(t, "GET", "/api/v1/sites/paris-2/agents/pi-a", f.mgr, nil, &d)
	if len(d.Commands) != 2 || d.Commands[0].Command != "refresh" || d.Commands[1].Command != "identify" ||
		d.Commands[0].By != "tech-script" || !d.Commands[0].Done.IsZero() {
		t.Errorf("commands %+v", d.Commands)
	}
	// An agent that never sent metrics has null metrics.
	var raw map[string]json.RawMessage
	f.call(t, "GET", "/api/v1/sites/lyon-1/agents/pi", f.mgr, nil, &raw)
	if string(raw["metrics"]) != "null" || string(raw["online"]) != "false" {
		t.Errorf("lyon-1/pi: %s %s", raw["metrics"], raw["online"])
	}
	if code, body := f.call(t, "GET", "/api/v1/sites/lyon-1/agents/nope", f.mgr, nil, nil); code != 404 || !strings.Contains(body, `"error":"no agent lyon-1/nope"`) {
		t.Errorf("unknown agent: %d %s", code, body)
	}
	if code, body := f.call(t, "GET", "/api/v1/sites/Lyon/agents/pi", f.mgr, nil, nil); code != 400 || !strings.Contains(body, `site \"Lyon\"`) {
		t.Errorf("bad site id: %d %s", code, body)
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t)
	get := func(query string) []webapi.Fault {
		t.Helper()
		var got struct{ Faults []webapi.Fault }
		if code, body := f.call(t, "GET", "/api/v1/faults"+query, f.mgr, nil, &got); code != 200 {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		return got.Faults
	}
	all := get("")
	if len(all) != 2 || all[0].Code != "media-empty" || !all[0].Open || all[0].DurationS != 3600 ||
		all[1].Code != "media-jam" || all[1].Open || !all[1].Cleared.Equal(now.Add(-time.Minute)) || all[1].DurationS != 3*3600-60 {
		t.Fatalf("all faults: %+v", all)
	}
	if open := get("?open=true"); len(open) != 1 || open[0].Code != "media-empty" {
		t.Errorf("open: %+v", open)
	}
	if closed := get("?open=false&site=paris-2&agent=pi-a"); len(closed) != 1 || closed[0].Code != "media-jam" {
		t.Errorf("closed: %+v", closed)
	}
	if none := get("?site=lyon-1"); len(none) != 0 || none == nil {
		t.Errorf("lyon-1: %+v", none)
	}
	// since selects the faults open at some time since then.
	if since := get("?since=" + url.QueryEscape(now.Add(-30*time.Second).Format(time.RFC3339))); len(since) != 1 || since[0].Code != "media-empty" {
		t.Errorf("since 30 s ago: %+v", since)
	}
	if since := get("?since=" + url.QueryEscape(now.Add(-2*time.Hour).Format(time.RFC3339))); len(since) != 2 {
		t.Errorf("since 2 h ago: %+v", since)
	}
	if one := get("?limit=1"); len(one) != 1 {
		t.Errorf("limit=1: %+v", one)
	}
	if day := get("?since=2026-03-10"); len(day) != 2 {
		t.Errorf("since a day: %+v", day)
	}

	// Acknowledge, as a technician; a manager may not.
	id := all[0].ID
	path := fmt.Sprintf("/api/v1/faults/%d/ack", id)
	if code, body := f.call(t, "POST", path, f.mgr, nil, nil); code != 403 || !strings.Contains(body, `"error"`) {
		t.Errorf("manager ack: %d %s", code, body)
	}
	if code, body := f.call(t, "POST", path, f.tech, nil, nil); code != 204 {
		t.Errorf("ack: %d %s", code, body)
	}
	if open := get("?open=true"); open[0].AckedBy != "tech-script" || !open[0].AckedAt.Equal(now) {
		t.Errorf("after ack: %+v", open[0])
	}
	for path, want := range map[string]int{
		"/api/v1/faults/999999/ack": 404,
		"/api/v1/faults/0/ack":      400,
		"/api/v1/faults/-1/ack":     400,
		"/api/v1/faults/01/ack":     400,
		"/api/v1/faults/x/ack":      400,
	} {
		if code, body := f.call(t, "POST", path, f.tech, nil, nil); code != want || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s: %d %s, want %d", path, code, body, want)
		}
	}
}

func TestUsage(t *testing.T) {
	f := newFixture(t)
	type answer struct {
		From, To, Period string
		Sites            []string
		Rows             []webapi.Usage
	}
	get := func(query string) answer {
		t.Helper()
		var got answer
		if code, body := f.call(t, "GET", "/api/v1/usage"+query, f.mgr, nil, &got); code != 200 {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		return got
	}
	// Defaults: the last 30 days, by day.
	d := get("")
	if d.From != "2026-02-09" || d.To != "2026-03-10" || d.Period != "day" || len(d.Rows) != 2 {
		t.Fatalf("defaults: %+v", d)
	}
	want9 := webapi.Usage{Site: "paris-2", Start: "2026-03-09", PrintJobs: 1, Pages: 3, Sheets: 5, CopyJobs: 1, CopyPages: 2, WiFiVisitors: 7}
	want10 := webapi.Usage{Site: "paris-2", Start: "2026-03-10", Scans: 1, ScanPages: 1}
	if d.Rows[0] != want9 || d.Rows[1] != want10 {
		t.Errorf("days:\n got %+v\nwant %+v %+v", d.Rows, want9, want10)
	}
	m := get("?from=2025-01-01&to=2026-12-31&period=month&site=paris-2&site=lyon-1&site=paris-2")
	if len(m.Rows) != 2 || m.Rows[0].Start != "2025-06-01" || m.Rows[0].Pages != 10 || m.Rows[1].Start != "2026-03-01" ||
		m.Rows[1].Pages != 3 || m.Rows[1].Scans != 1 || strings.Join(m.Sites, ",") != "paris-2,lyon-1" {
		t.Errorf("months: %+v", m)
	}
	// Weeks start on Monday; only periods with usage have rows.
	if w := get("?from=2026-03-02&to=2026-03-15&period=week"); len(w.Rows) != 1 ||
		w.Rows[0].Start != "2026-03-09" || w.Rows[0].Pages != 3 || w.Rows[0].Scans != 1 {
		t.Errorf("weeks: %+v", w)
	}
	if l := get("?site=lyon-1"); len(l.Rows) != 0 || l.Rows == nil {
		t.Errorf("lyon-1: %+v", l)
	}
}

func TestBadQueries(t *testing.T) {
	f := newFixture(t)
	many := strings.Repeat("&site=s", webapi.MaxSites+1)
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/sites?x=1", `unknown parameter \"x\": this route takes none`},
		{"/api/v1/faults?open=yes", `open=\"yes\": want true or false`},
		{"/api/v1/faults?open=1", `open=\"1\": want true or false`},
		{"/api/v1/faults?open=true&open=false", "parameter open given 2 times"},
		{"/api/v1/faults?site=", "parameter site is empty"},
		{"/api/v1/faults?site=A", `site=\"A\": want 1 to 63`},
		{"/api/v1/faults?since=yesterday", "want an RFC 3339 time"},
		{"/api/v1/faults?since=2019-12-31", "want a time from 2020-01-01"},
		{"/api/v1/faults?since=2027-01-01", "to tomorrow"},
		{"/api/v1/faults?limit=0", "want a number from 1 to 1000"},
		{"/api/v1/faults?limit=1001", "want a number from 1 to 1000"},
		{"/api/v1/faults?sites=a", `unknown parameter \"sites\": want open, site, agent, since, limit`},
		{"/api/v1/faults?%zz", "malformed query string"},
		{"/api/v1/usage?period=year", `period=\"year\": want day, week or month`},
		{"/api/v1/usage?from=2026-3-1", `from=\"2026-3-1\": want a day`},
		{"/api/v1/usage?from=2026-03-10&to=2026-03-01", "to=2026-03-01 is before from=2026-03-10"},
		{"/api/v1/usage?from=2019-12-31&to=2020-01-31", "from=2019-12-31: want 2020-01-01 or later"},
		{"/api/v1/usage?to=2027-03-12&period=month", "to=2027-03-12: want 2027-03-11 or earlier"},
		{"/api/v1/usage?from=2025-01-01&to=2026-03-01", "425 days from 2025-01-01 to 2026-03-01: want at most 366 with period=day"},
		{"/api/v1/usage?from=2020-01-01&to=2026-03-01&period=month", "want at most 1831 with period=month"},
		{"/api/v1/usage?site=paris_2", `site=\"paris_2\"`},
		{"/api/v1/usage?" + many[1:], "1001 site parameters: want at most 1000"},
		{"/api/v1/nothing", "no such API route: GET /api/v1/nothing"},
	} {
		code, body := f.call(t, "GET", tc.path, f.mgr, nil, nil)
		var e struct{ Error string }
		if code != 400 && !(code == 404 && strings.Contains(tc.path, "nothing")) || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(body, tc.want) {
			t.Errorf("GET %.80s: %d %s, want 400 with %q", tc.path, code, body, tc.want)
		}
	}
}

func TestCommands(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var acc webapi.CommandAccepted
	code, body := f.call(t, "POST", "/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.tech, strings.NewReader(`{"seconds":30}`), &acc)
	if code != 202 || acc.Req == "" || acc.Command != "identify" || acc.Site != "paris-2" || acc.Agent != "pi-a" || !acc.At.Equal(now) {
		t.Fatalf("%d %s", code, body)
	}
	if want := "paris-2/pi-a/identify/" + acc.Req + "/30"; len(f.cmd.sent) != 1 || f.cmd.sent[0] != want {
		t.Errorf("sent %v, want %s", f.cmd.sent, want)
	}
	cmds, err := f.st.Commands(ctx, "paris-2", "pi-a", 10)
	if err != nil || len(cmds) != 1 || cmds[0].Req != acc.Req || cmds[0].By != "tech-script" || cmds[0].Name != "identify" {
		t.Errorf("stored %+v, %v", cmds, err)
	}
	// An unregistered agent that reported may be sent commands too.
	if code, body := f.call(t, "POST", "/api/v1/sites/paris-2/agents/pi-b/commands/test-page", f.tech, nil, nil); code != 202 {
		t.Errorf("test-page: %d %s", code, body)
	}

	for _, tc := range []struct {
		path, token, body string
		code              int
		want              string
	}{
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.mgr, "", 403, "your role (manager) may not do this"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", "", "", 401, "authentication required"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/reboot", f.tech, "", 400, "want one of identify, test-page, cancel-jobs, purge-scans, refresh"},
		{"/api/v1/sites/paris-2/agents/pi-z/commands/refresh", f.tech, "", 404, "no agent paris-2/pi-z"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/refresh", f.tech, `{"seconds":30}`, 400, "seconds: only for identify"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.tech, `{"seconds":601}`, 400, "seconds: want 1 to 600"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.tech, `{"secs":1}`, 400, "unknown field"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.tech, `{} {}`, 400, "trailing data"},
		{"/api/v1/sites/paris-2/agents/pi-a/commands/identify", f.tech, `{"seconds":"` + strings.Repeat("9", 5000) + `"}`, 413, "body larger than 4096 bytes"},
	} {
		code, body := f.call(t, "POST", tc.path, tc.token, strings.NewReader(tc.body), nil)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s %.20q: %d %s, want %d %q", tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
	if len(f.cmd.sent) != 2 {
		t.Errorf("refused requests were sent: %v", f.cmd.sent)
	}

	// A broker failure is answered 502 and recorded as the command's result.
	f.cmd.err = errors.New("broker down")
	f.clk.Advance(time.Second)
	code, body = f.call(t, "POST", "/api/v1/sites/paris-2/agents/pi-a/commands/cancel-jobs", f.tech, nil, nil)
	if code != 502 || !strings.Contains(body, "could not be sent") {
		t.Errorf("broker down: %d %s", code, body)
	}
	cmds, _ = f.st.Commands(ctx, "paris-2", "pi-a", 1)
	if len(cmds) != 1 || cmds[0].Name != "cancel-jobs" || cmds[0].Done.IsZero() || cmds[0].OK || cmds[0].Error == "" {
		t.Errorf("failed command stored as %+v", cmds)
	}
}

// A dashboard session may use the API; its POSTs need the CSRF token.
func TestSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h, _ := auth.HashPassword("a long password")
	if err := f.st.AddUser(ctx, store.User{Name: "tech", Role: store.Technician, PasswordHash: h, Created: now}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	p, err := f.a.Login(rec, req, "tech", "a long password")
	if err != nil {
		t.Fatal(err)
	}
	cookie := "cookie=" + rec.Result().Cookies()[0].Value
	if code, _ := f.call(t, "GET", "/api/v1/sites", cookie, nil, nil); code != 200 {
		t.Errorf("GET with a session: %d", code)
	}
	path := "/api/v1/sites/paris-2/agents/pi-a/commands/refresh"
	if code, body := f.call(t, "POST", path, cookie, nil, nil); code != 403 || !strings.Contains(body, "CSRF") {
		t.Errorf("POST without CSRF: %d %s", code, body)
	}
	if code, body := f.call(t, "POST", path, cookie, nil, nil, auth.CSRFHeader, p.CSRF); code != 202 {
		t.Errorf("POST with CSRF: %d %s", code, body)
	}
}

func TestSchemaIsPublic(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/api/v1/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/schema+json" || !bytes.Equal(b, api.Schema()) {
		t.Errorf("%s %q: not the contract's schema", resp.Status, resp.Header.Get("Content-Type"))
	}
	if code, body := f.call(t, "GET", "/api/v1/sites", "", nil, nil); code != 401 || !strings.Contains(body, `{"error":"authentication required"}`) {
		t.Errorf("sites without credentials: %d %s", code, body)
	}
}

func TestNoCommander(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(webapi.Handler(webapi.Options{Store: f.st, Auth: f.a}))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/sites/paris-2/agents/pi-a/commands/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+f.tech)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no commander: %s", resp.Status)
	}
}
