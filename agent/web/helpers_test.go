package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/printq"
	simprinter "github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/central/api"
)

// The page runs on the real queue and inbox.
var (
	_ Queue = (*printq.Queue)(nil)
	_ Inbox = (*inbox.Inbox)(nil)
)

var quiet = slog.New(slog.DiscardHandler)

// t0 is when the tests' clocks start: 09:00 in the page's time zone, UTC.
var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

// manualClock moves only when the test advances it. It drives the inbox and
// the page; the queue runs on the real clock, as it talks to a real printer.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c  *manualClock
	at time.Time
	ch chan time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTimer(d time.Duration) inbox.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	return t
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *manualTimer) bool { return x == t })
	return len(t.c.timers) < n
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.ch <- c.now
		return true
	})
}

// env is the page on a real inbox and a real queue (with the real outbox as
// its recorder), whose printer is the simulator on loopback.
type env struct {
	t       *testing.T
	clock   *manualClock
	in      *inbox.Inbox
	q       *printq.Queue
	box     *outbox.Outbox
	printer *simprinter.Printer
	h       http.Handler

	mu sync.Mutex
	st PageStatus
}

type envOptions struct {
	inbox     inbox.Options
	noPrinter bool
	allow     []netip.Prefix
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, clock: &manualClock{now: t0}}
	var err error
	e.box, err = outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.box.Close() })
	qc := printq.Config{Dir: filepath.Join(dir, "spool"), Hold: true, PollInterval: 20 * time.Millisecond,
		Recorder: e.box, Faults: e.box, Logger: quiet}
	if !o.noPrinter {
		e.printer, err = simprinter.New(simprinter.Config{Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.printer.Close() })
		if err := e.printer.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		qc.PrinterURI = e.printer.URI()
	}
	e.q, err = printq.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("queue Run: %v", err)
		}
		e.q.Close()
	})
	io := o.inbox
	io.Clock, io.Logger = e.clock, quiet
	e.in, err = inbox.Open(filepath.Join(dir, "inbox"), io)
	if err != nil {
		t.Fatal(err)
	}
	e.st = PageStatus{
		Version:   "1.2.3",
		Started:   t0.Add(-90 * time.Minute),
		NoPrinter: o.noPrinter,
		Hold:      true,
		Scanner:   &api.Scanner{State: api.ScannerIdle},
		WiFi:      &api.WiFi{Up: true, SSID: "Mairie-Public", Channel: 6, Clients: 3},
	}
	allow := o.allow
	if allow == nil {
		allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}
	}
	e.h = New(Config{Allow: allow, Hostnames: []string{"relais-accueil", "relais-accueil.local"}, SiteName: "Mairie de Trifouilly",
		Inbox: e.in, Queue: e.q, Status: e.status, Clock: e.clock, Location: time.UTC, Logger: quiet})
	if !o.noPrinter {
		e.waitPrinter("the printer answering", func(ps printq.PrinterStatus) bool { return ps.Reachable })
	}
	return e
}

// status is the PageStatus the agent would fill: the test's, with the
// outbox's open faults and figures.
func (e *env) status() PageStatus {
	e.mu.Lock()
	st := e.st
	e.mu.Unlock()
	faults, err := e.box.OpenFaults()
	if err != nil {
		e.t.Error(err)
	}
	st.Faults = append(slices.Clone(st.Faults), faults...)
	if s, err := e.box.Stats(); err == nil {
		st.Outbox = &OutboxStatus{Depth: s.Depth, LastSeq: s.LastSeq, LastAck: s.LastAck}
	}
	return st
}

func (e *env) setStatus(f func(*PageStatus)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.st)
}

// waitPrinter waits until what the queue knows of the printer satisfies ok.
func (e *env) waitPrinter(what string, ok func(printq.PrinterStatus) bool) {
	e.t.Helper()
	eventually(e.t, what, func() bool { return ok(e.q.Printer()) })
}

// faults sets the simulated printer's faults and waits until the queue sees
// them.
func (e *env) faults(f simprinter.Faults, what string, ok func(printq.PrinterStatus) bool) {
	e.t.Helper()
	if err := e.printer.SetFaults(f); err != nil {
		e.t.Fatal(err)
	}
	e.waitPrinter(what, ok)
}

// submit puts a print in the queue, held.
func (e *env) submit(name, user string, src api.Source, doc string) printq.Job {
	e.t.Helper()
	j, err := e.q.Submit(printq.Ticket{Name: name, User: user, Client: "192.168.1.20", Format: "application/pdf", Source: src},
		strings.NewReader(doc))
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// scan puts a scan in the inbox.
func (e *env) scan(doc string, pages int) inbox.Scan {
	e.t.Helper()
	s, err := e.in.Add(strings.NewReader(doc), inbox.Meta{Pages: pages, Format: "application/pdf"})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// response is a recorded answer.
type response struct {
	*http.Response
	body string
}

// do serves a request from a client on the site LAN, or from remote.
func (e *env) do(method, target, remote string, body url.Values, header http.Header) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	r := httptest.NewRequest(method, target, rd)
	r.Host = "relais-accueil.local"
	if remote != "" {
		r.RemoteAddr = remote
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return response{res, string(b)}
}

// get fetches a page from the LAN, in French unless lang says otherwise.
func (e *env) get(target string) response {
	e.t.Helper()
	return e.do(http.MethodGet, target, "192.168.1.10:50000", nil, nil)
}

// post submits a form of the page, with its token, as a browser would
// under Referrer-Policy no-referrer (Origin: null).
func (e *env) post(target string, form url.Values) response {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("token") == "" {
		form.Set("token", e.token())
	}
	return e.do(http.MethodPost, target, "192.168.1.10:50000", form, http.Header{"Origin": {"null"}})
}

var tokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)

// token is a form token as the page gives it now (every form of every page
// served at one moment has the same).
func (e *env) token() string { return e.h.(*handler).token(e.clock.Now()) }

// follow gets the page a POST redirected to.
func (e *env) follow(res response) response {
	e.t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("status %d, want 303; body:\n%s", res.StatusCode, res.body)
	}
	return e.get(res.Header.Get("Location"))
}

// contains fails the test for each text missing from body.
func contains(t *testing.T, what, body string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(body, s) {
			t.Errorf("%s lacks %q", what, s)
		}
	}
}

// lacks fails the test for each text present in body.
func lacks(t *testing.T, what, body string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(body, s) {
			t.Errorf("%s has %q", what, s)
		}
	}
}

// text is a page's HTML with tags removed and entities decoded enough for
// the checks: what a reader sees.
func text(html string) string {
	s := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(html, " ")
	s = strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`).Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// eventually polls cond until it holds, failing the test after a bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
