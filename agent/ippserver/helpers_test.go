package ippserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/printq"
)

// The server runs on the real queue.
var _ Queue = (*printq.Queue)(nil)

var quiet = slog.New(slog.DiscardHandler)

// t0 is the time of the tests' clocks.
var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

// env is a server on a real queue (in a temporary directory, with the
// real outbox as its recorder), reached over loopback HTTP.
type env struct {
	t     testing.TB
	q     *printq.Queue
	box   *outbox.Outbox
	srv   *Server
	http  *httptest.Server
	uri   string // printer-uri
	clock *manualClock
	id    uint32
}

// newEnv opens a queue with qc (Dir, Recorder, Faults and Logger are set
// here) and a server with sc. The queue does not run: with no printer,
// jobs are accepted and wait.
func newEnv(t testing.TB, qc printq.Config, sc Config) *env {
	t.Helper()
	dir := t.TempDir()
	box, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	qc.Dir = filepath.Join(dir, "spool")
	qc.Recorder, qc.Faults, qc.Logger = box, box, quiet
	q, err := printq.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	clock := &manualClock{t: t0}
	if sc.Now == nil {
		sc.Now = clock.Now
	}
	if sc.Logger == nil {
		sc.Logger = quiet
	}
	srv := New(q, sc)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, q: q, box: box, srv: srv, http: hs, uri: "ipp" + strings.TrimPrefix(hs.URL, "http") + Path, clock: clock}
}

// run runs the queue until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.q.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
}

// request returns a request for op with the attributes every request
// starts with, followed by the given operation attributes.
func (e *env) request(op goipp.Op, attrs ...goipp.Attribute) *goipp.Message {
	e.id++
	m := goipp.NewRequest(goipp.MakeVersion(2, 0), op, e.id)
	m.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("fr-fr")))
	m.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(e.uri)))
	for _, a := range attrs {
		m.Operation.Add(a)
	}
	return m
}

// do sends a request (with doc after it, if not nil) over HTTP and returns
// the decoded response, checking what every response must be.
func (e *env) do(req *goipp.Message, doc []byte) *goipp.Message {
	e.t.Helper()
	return e.post(req, doc, nil)
}

// post is do with extra HTTP headers.
func (e *env) post(req *goipp.Message, doc []byte, header http.Header) *goipp.Message {
	e.t.Helper()
	body, err := req.EncodeBytes()
	if err != nil {
		e.t.Fatal(err)
	}
	hreq, err := http.NewRequest(http.MethodPost, e.http.URL+Path, bytes.NewReader(append(body, doc...)))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		hreq.Header[k] = v
	}
	hreq.Header.Set("Content-Type", goipp.ContentType)
	resp, err := e.http.Client().Do(hreq)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != goipp.ContentType {
		e.t.Fatalf("HTTP %s, %s: %q", resp.Status, resp.Header.Get("Content-Type"), data)
	}
	return e.check(req, data)
}

// serve calls the handler in process, from the client address remote.
func (e *env) serve(req *goipp.Message, doc []byte, remote string) *goipp.Message {
	e.t.Helper()
	body, err := req.EncodeBytes()
	if err != nil {
		e.t.Fatal(err)
	}
	hreq := httptest.NewRequest(http.MethodPost, "http://relais.local:631"+Path, bytes.NewReader(append(body, doc...)))
	hreq.Header.Set("Content-Type", goipp.ContentType)
	hreq.RemoteAddr = remote
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, hreq)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("HTTP %d: %q", rec.Code, rec.Body.Bytes())
	}
	return e.check(req, rec.Body.Bytes())
}

// check decodes a response and checks its header and first attributes
// (RFC 8011 section 4.1.4).
func (e *env) check(req *goipp.Message, data []byte) *goipp.Message {
	e.t.Helper()
	var m goipp.Message
	if err := m.DecodeBytes(data); err != nil {
		e.t.Fatalf("response does not decode: %v", err)
	}
	if err := checkResponse(req, &m); err != nil {
		e.t.Fatal(err)
	}
	return &m
}

// status returns the status of a response.
func status(m *goipp.Message) goipp.Status { return goipp.Status(m.Code) }

// wantStatus fails the test unless the response has the status st.
func wantStatus(t *testing.T, what string, m *goipp.Message, st goipp.Status) {
	t.Helper()
	if got := status(m); got != st {
		t.Fatalf("%s: status %s, want %s (%s)", what, got, st, find(m.Operation, "status-message"))
	}
}

// find returns the values of the named attribute, or nil.
func find(attrs goipp.Attributes, name string) goipp.Values {
	return values(attrs, name)
}

// str returns the first value of the named attribute as a string, or "".
func str(attrs goipp.Attributes, name string) string {
	v := values(attrs, name)
	if len(v) == 0 {
		return ""
	}
	return stringOf(v[0].V)
}

// integer returns the first value of the named attribute, or -1.
func integerOf(attrs goipp.Attributes, name string) int {
	v := values(attrs, name)
	if len(v) == 0 {
		return -1
	}
	if i, ok := v[0].V.(goipp.Integer); ok {
		return int(i)
	}
	return -1
}

// strs returns the values of the named attribute as strings.
func strs(attrs goipp.Attributes, name string) []string {
	var out []string
	for _, v := range values(attrs, name) {
		out = append(out, stringOf(v.V))
	}
	return out
}

func kw(name string, vals ...string) goipp.Attribute { return strAttr(name, goipp.TagKeyword, vals...) }

func nameAttr(name, v string) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagName, goipp.String(v))
}

func intAttr(name string, v int) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagInteger, goipp.Integer(v))
}

func boolAttr(name string, v bool) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagBoolean, goipp.Boolean(v))
}

func mimeAttr(v string) goipp.Attribute {
	return goipp.MakeAttr("document-format", goipp.TagMimeType, goipp.String(v))
}

// withJob adds a job attributes group to a request.
func withJob(m *goipp.Message, attrs ...goipp.Attribute) *goipp.Message {
	m.Job = append(m.Job, attrs...)
	return m
}

// jobs returns the jobs of the queue.
func (e *env) jobs() []printq.Job { return e.q.Jobs() }

// document returns the spooled document of a job.
func (e *env) document(id int) []byte {
	e.t.Helper()
	r, err := e.q.Document(id)
	if err != nil {
		e.t.Fatalf("document of job %d: %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// manualClock is a clock that moves only when the test moves it.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pdf is a small valid PDF document.
var pdf = minimalPDF(595, 842, "Relais")

// contextWithLocalAddr returns r's context as if r had come in on the local
// address addr.
func contextWithLocalAddr(r *http.Request, addr string) context.Context {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		panic(err)
	}
	return context.WithValue(r.Context(), http.LocalAddrContextKey, a)
}

func itoa(n int) string { return strconv.Itoa(n) }
