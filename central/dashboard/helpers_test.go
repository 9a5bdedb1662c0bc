package dashboard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// t0 is the tests' "now": a Monday, 14:00 in Paris.
var t0 = time.Date(2026, 3, 16, 13, 0, 0, 0, time.UTC)

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return l
}()

// password is every test user's password.
const password = "correct horse battery"

// clock is a settable clock shared by auth and the dashboard.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// commander records the commands the dashboard sends, as the broker would
// take them, and fails while fail is set.
type commander struct {
	mu   sync.Mutex
	sent []sentCommand
	fail error
}

type sentCommand struct {
	Site, Agent string
	Cmd         api.Command
}

func (c *commander) SendCommand(ctx context.Context, site, agent string, cmd api.Command) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.sent = append(c.sent, sentCommand{site, agent, cmd})
	return nil
}

func (c *commander) commands() []sentCommand {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sentCommand(nil), c.sent...)
}

// env is a dashboard over a real SQLite store and real auth, served on the
// loopback.
type env struct {
	t     testing.TB
	st    store.Store
	auth  *auth.Auth
	d     *Dashboard
	srv   *httptest.Server
	clock *clock
	cmd   *commander
}

type envOptions struct {
	maxSubscribers int
}

func newEnv(t testing.TB, eo envOptions) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, nil))
	}
	a := auth.New(auth.Options{Store: st, Now: clk.Now, Logger: log})
	cmd := &commander{}
	d, err := New(Options{
		Store: st, Auth: a, Commander: cmd, Now: clk.Now, OfflineAfter: 10 * time.Minute,
		Version: "1.2.3-test", Logger: log, Location: paris, MaxSubscribers: eo.maxSubscribers,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() { d.Close(); srv.Close() })
	return &env{t: t, st: st, auth: a, d: d, srv: srv, clock: clk, cmd: cmd}
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// user adds a dashboard user with password.
func (e *env) user(name string, role store.Role) {
	e.t.Helper()
	h, err := auth.HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddUser(context.Background(), store.User{Name: name, Role: role, PasswordHash: h, Created: t0}); err != nil {
		e.t.Fatal(err)
	}
}

// agent registers an agent.
func (e *env) agent(site, agent string) {
	e.t.Helper()
	if err := e.st.AddAgent(context.Background(), store.Agent{Site: site, Agent: agent, SecretHash: []byte("not-a-real-hash"), Created: t0.Add(-30 * 24 * time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
}

// status records an online status with faults at at.
func (e *env) status(site, agent string, at time.Time, faults ...api.Fault) {
	e.t.Helper()
	h := api.HealthOK
	for _, f := range faults {
		if f.Severity == api.SeverityFault {
			h = api.HealthFault
		} else if h == api.HealthOK {
			h = api.HealthWarn
		}
	}
	s := api.Status{Online: true, Time: at, Version: "0.9.1", Health: h, Faults: faults}
	if err := s.Validate(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.SetStatus(context.Background(), site, agent, s, at); err != nil {
		e.t.Fatal(err)
	}
}

// offline records the will.
func (e *env) offline(site, agent string, at time.Time) {
	e.t.Helper()
	if err := e.st.SetStatus(context.Background(), site, agent, api.Status{Online: false}, at); err != nil {
		e.t.Fatal(err)
	}
}

func fault(dev api.Device, code string, sev api.Severity, since time.Time) api.Fault {
	return api.Fault{Code: code, Device: dev, Severity: sev, Since: since}
}

// events ingests usage events of one agent, numbering them from seq.
func (e *env) events(site, agent string, seq uint64, evs ...api.Event) {
	e.t.Helper()
	for i := range evs {
		evs[i].Seq = seq + uint64(i)
		evs[i].ID = uuid.Must(uuid.NewV7()).String()
		if err := evs[i].Validate(); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.st.Ingest(context.Background(), site, agent, evs, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func printed(at time.Time, pages int) api.Event {
	return api.Event{Time: at, Type: api.EventPrintCompleted, Pages: &pages, Source: api.SourcePC}
}

func copied(at time.Time, pages int) api.Event {
	return api.Event{Time: at, Type: api.EventCopyCompleted, Pages: &pages}
}

func scanned(at time.Time, pages int) api.Event {
	return api.Event{Time: at, Type: api.EventScanCompleted, Pages: &pages, Format: "application/pdf"}
}

func visitors(at time.Time, n int) api.Event {
	return api.Event{Time: at, Type: api.EventWiFiDaily, Day: at.Format(time.DateOnly), Visitors: &n}
}

// client is a browser-like client: a cookie jar, no redirects followed,
// and the CSRF token of the last page that had one.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
	lang string // Accept-Language
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

type response struct {
	code     int
	body     string
	location string
	header   http.Header
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var loginTokenRe = regexp.MustCompile(`name="login_token" value="([^"]+)"`)

func (c *client) do(req *http.Request) response {
	c.e.t.Helper()
	req.Header.Set("Accept", "text/html")
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if m := csrfRe.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return response{code: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"), header: resp.Header}
}

func (c *client) get(path string) response {
	c.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.e.srv.URL+path, nil)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form the way a browser on the page does (same origin),
// with the page's CSRF token unless the form has its own csrf field.
func (c *client) post(path string, form url.Values) response {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && c.csrf != "" {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, c.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.do(req)
}

// login logs in through the form and checks that it worked.
func (c *client) login(name string) {
	c.e.t.Helper()
	r := c.get("/login")
	m := loginTokenRe.FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		c.e.t.Fatalf("GET /login: %d, no token in:\n%s", r.code, r.body)
	}
	r = c.post("/login", url.Values{"login_token": {m[1]}, "name": {name}, "password": {password}, "next": {"/"}})
	if r.code != http.StatusSeeOther || r.location != "/" {
		c.e.t.Fatalf("POST /login as %s: %d to %q:\n%s", name, r.code, r.location, r.body)
	}
	if r = c.get("/"); r.code != http.StatusOK || c.csrf == "" {
		c.e.t.Fatalf("GET / after login: %d, csrf %q", r.code, c.csrf)
	}
}

// loggedIn returns a client logged in as a new user with role.
func (e *env) loggedIn(name string, role store.Role) *client {
	e.t.Helper()
	e.user(name, role)
	c := e.client()
	c.login(name)
	return c
}

// inlineTagRe matches the tags of inline elements, which do not separate
// words.
var inlineTagRe = regexp.MustCompile(`</?(?:span|strong|em|time|a|small|abbr|b|i)\b[^>]*>`)

// text is the body with tags removed and spaces collapsed, as a reader
// sees it.
func text(body string) string {
	body = regexp.MustCompile(`(?s)<svg.*?</svg>`).ReplaceAllString(body, " ")
	body = inlineTagRe.ReplaceAllString(body, "")
	body = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(body, " ")
	r := strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`)
	return strings.Join(strings.Fields(r.Replace(body)), " ")
}

// mustContain fails unless the text of body holds every want.
func mustContain(t *testing.T, what, body string, want ...string) {
	t.Helper()
	tx := text(body)
	for _, w := range want {
		if !strings.Contains(tx, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, tx)
		}
	}
}

// mustNotContain fails if the text of body holds any of unwanted.
func mustNotContain(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	tx := text(body)
	for _, w := range unwanted {
		if strings.Contains(tx, w) {
			t.Errorf("%s: %q should not be there:\n%s", what, w, tx)
		}
	}
}

// before fails unless a appears before b in s.
func before(t *testing.T, s, a, b string) {
	t.Helper()
	i, j := strings.Index(s, a), strings.Index(s, b)
	if i < 0 || j < 0 || i > j {
		t.Errorf("%q (at %d) should come before %q (at %d)", a, i, b, j)
	}
}

var errBrokerDown = errors.New("broker: not connected")
