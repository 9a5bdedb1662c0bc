package alert

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris, wherever the tests run

	"github.com/jonboulle/clockwork"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

const (
	site  = "mediatheque-nord"
	agent = "pi-accueil"
)

// t0 is when every test starts: 14:00 in Paris.
var t0 = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

// fixture is a real SQLite store, a fake clock at t0 and a webhook that
// records what it receives.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	dir   string
	clock *clockwork.FakeClock
	hook  *hookServer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: t.Context(), dir: t.TempDir(), clock: clockwork.NewFakeClockAt(t0)}
	f.st = f.openStore()
	f.hook = newHookServer(t)
	return f
}

// openStore opens the fixture's database; it is closed when the test ends.
func (f *fixture) openStore() store.Store {
	f.t.Helper()
	st, err := store.Open(f.ctx, "sqlite:central.db", f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	return st
}

// options are the options of the tests' Alerters: the fixture's store,
// clock and webhook, French, times in Paris.
func (f *fixture) options() Options {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		f.t.Fatal(err)
	}
	return Options{
		Store:        f.st,
		Clock:        f.clock,
		OfflineAfter: 10 * time.Minute,
		FaultAfter:   30 * time.Minute,
		WebhookURL:   f.hook.URL + "/hooks/relais",
		DashboardURL: "https://central.example.org/",
		Location:     paris,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func (f *fixture) alerter(o Options) *Alerter {
	f.t.Helper()
	a, err := New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// check makes one round, which must succeed.
func (f *fixture) check(a *Alerter) {
	f.t.Helper()
	if err := a.Check(f.ctx); err != nil {
		f.t.Fatalf("Check at %v: %v", f.clock.Now(), err)
	}
}

// at advances the clock to t0+d.
func (f *fixture) at(d time.Duration) {
	f.t.Helper()
	if now := f.clock.Now(); t0.Add(d).Before(now) {
		f.t.Fatalf("clock at %v, cannot go back to t0+%v", now, d)
	}
	f.clock.Advance(t0.Add(d).Sub(f.clock.Now()))
}

// addAgent registers an agent that reports it is online now, with faults.
func (f *fixture) addAgent(name string, faults ...api.Fault) {
	f.t.Helper()
	if err := f.st.AddAgent(f.ctx, store.Agent{Site: site, Agent: name, SecretHash: []byte("hash"), Created: f.clock.Now()}); err != nil {
		f.t.Fatal(err)
	}
	f.status(name, true, faults...)
}

// status records a status of the agent at the clock's time: online with
// the faults, or the will.
func (f *fixture) status(name string, online bool, faults ...api.Fault) {
	f.t.Helper()
	s := api.Status{Online: false}
	if online {
		s = api.Status{Online: true, Time: f.clock.Now(), Version: "1.4.0", Health: api.HealthOK, Faults: faults}
		for _, x := range faults {
			if x.Severity == api.SeverityFault {
				s.Health = api.HealthFault
			} else if s.Health == api.HealthOK {
				s.Health = api.HealthWarn
			}
		}
	}
	if err := f.st.SetStatus(f.ctx, site, name, s, f.clock.Now()); err != nil {
		f.t.Fatal(err)
	}
}

// openIncidents returns the keys of the open incidents.
func (f *fixture) openIncidents() []string {
	f.t.Helper()
	is, err := f.st.OpenIncidents(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var keys []string
	for _, i := range is {
		keys = append(keys, i.Key)
	}
	return keys
}

// hookServer is a webhook receiver that records every request and answers
// with the statuses queued in fail, then 204.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []hookRequest
	fail     []int
	got      chan struct{} // a value per request, for Run's test
}

type hookRequest struct {
	method, path, contentType, userAgent string
	body                                 string
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{got: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.requests = append(h.requests, hookRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), string(body)})
		status := http.StatusNoContent
		if len(h.fail) > 0 {
			status, h.fail = h.fail[0], h.fail[1:]
		}
		h.mu.Unlock()
		if status != http.StatusNoContent {
			http.Error(w, "not now", status)
		} else {
			w.WriteHeader(status)
		}
		h.got <- struct{}{}
	}))
	t.Cleanup(h.Close)
	return h
}

// failNext makes the next requests fail with these statuses.
func (h *hookServer) failNext(statuses ...int) {
	h.mu.Lock()
	h.fail = append(h.fail, statuses...)
	h.mu.Unlock()
}

// take returns the bodies received since the last call, after checking
// each request's method, path and headers.
func (h *hookServer) take(t *testing.T) []string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var bodies []string
	for _, r := range h.requests {
		if r.method != http.MethodPost || r.path != "/hooks/relais" || r.contentType != "application/json" || r.userAgent != "relais-central" {
			t.Errorf("webhook request %s %s, Content-Type %q, User-Agent %q", r.method, r.path, r.contentType, r.userAgent)
		}
		bodies = append(bodies, r.body)
	}
	h.requests = nil
	return bodies
}

// expectHook checks that the webhook received exactly these bodies since
// the last call.
func (f *fixture) expectHook(want ...string) {
	f.t.Helper()
	got := f.hook.take(f.t)
	if len(got) != len(want) {
		f.t.Fatalf("at t0+%v the webhook received %d notices, want %d:\n%s", f.clock.Now().Sub(t0), len(got), len(want), joinLines(got))
	}
	for i := range want {
		if got[i] != want[i] {
			f.t.Errorf("notice %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += l + "\n"
	}
	return out
}

func storeAgent(name string) store.Agent {
	return store.Agent{Site: site, Agent: name, SecretHash: []byte("hash"), Created: t0}
}

// heartbeat records a metrics snapshot of the agents at the clock's time:
// they are alive.
func (f *fixture) heartbeat(names ...string) {
	f.t.Helper()
	for _, name := range names {
		if err := f.st.SetMetrics(f.ctx, site, name, api.Metrics{Time: f.clock.Now()}, f.clock.Now()); err != nil {
			f.t.Fatal(err)
		}
	}
}
