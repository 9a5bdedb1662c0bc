package printer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/peertest"
)

// fakeClock is a Clock the test advances. Each timer of positive duration
// is announced on timers, so that a test can wait for the printer to start
// timing a job before advancing.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiting []fakeTimer
	timers  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), timers: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiting = append(c.waiting, fakeTimer{c.now.Add(d), ch})
	c.timers <- d
	return ch
}

// Advance moves the time on, firing the timers that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiting[:0]
	for _, t := range c.waiting {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.waiting = kept
}

// awaitTimer waits for the printer to start a timer, and returns its
// duration.
func (c *fakeClock) awaitTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.timers:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the printer started no timer")
		return 0
	}
}

// start runs a printer on a loopback port for the test.
func start(t *testing.T, cfg Config) (*Printer, *upstream.Client) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return p, &upstream.Client{URI: p.URI(), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func strAttrVal(name string, tag goipp.Tag, v string) goipp.Attribute {
	return goipp.MakeAttr(name, tag, goipp.String(v))
}

// submit sends doc with Print-Job; template attributes go in the job
// group.
func submit(t *testing.T, c *upstream.Client, format string, doc []byte, template ...goipp.Attribute) (int, error) {
	t.Helper()
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(strAttrVal("requesting-user-name", goipp.TagName, "aidant"))
	req.Operation.Add(strAttrVal("job-name", goipp.TagName, "attestation.pdf"))
	req.Operation.Add(strAttrVal("document-format", goipp.TagMimeType, format))
	for _, a := range template {
		req.Job.Add(a)
	}
	resp, err := c.Do(context.Background(), req, bytes.NewReader(doc))
	if err != nil {
		return 0, err
	}
	return int(upstream.Find(resp.Job, "job-id")[0].V.(goipp.Integer)), nil
}

func mustSubmit(t *testing.T, c *upstream.Client, doc []byte, template ...goipp.Attribute) int {
	t.Helper()
	id, err := submit(t, c, "application/pdf", doc, template...)
	if err != nil {
		t.Fatalf("Print-Job: %v", err)
	}
	return id
}

func jobAttrs(t *testing.T, c *upstream.Client, id int) goipp.Attributes {
	t.Helper()
	req := c.NewRequest(goipp.OpGetJobAttributes)
	req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
	resp, err := c.Do(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("Get-Job-Attributes %d: %v", id, err)
	}
	return resp.Job
}

func intOf(t *testing.T, attrs goipp.Attributes, name string) int {
	t.Helper()
	v := upstream.Find(attrs, name)
	if len(v) != 1 {
		t.Fatalf("%s: %v", name, v)
	}
	n, ok := v[0].V.(goipp.Integer)
	if !ok {
		t.Fatalf("%s is %v, not an integer", name, v[0])
	}
	return int(n)
}

func strsOf(attrs goipp.Attributes, name string) []string {
	var s []string
	for _, v := range upstream.Find(attrs, name) {
		s = append(s, v.V.String())
	}
	return s
}

// waitState polls the job until it is in state, for at most 10 s.
func waitState(t *testing.T, c *upstream.Client, id, state int) goipp.Attributes {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := jobAttrs(t, c, id)
		if got := intOf(t, a, "job-state"); got == state {
			return a
		} else if time.Now().After(deadline) {
			t.Fatalf("job %d in state %d, want %d", id, got, state)
		}
		<-time.After(5 * time.Millisecond)
	}
}

func printerState(t *testing.T, c *upstream.Client) (int, []string) {
	t.Helper()
	a, err := c.PrinterAttributes(context.Background(), "printer-state", "printer-state-reasons")
	if err != nil {
		t.Fatal(err)
	}
	return intOf(t, a, "printer-state"), strsOf(a, "printer-state-reasons")
}

func command(t *testing.T, p *Printer, line string) {
	t.Helper()
	if _, err := p.Command(line); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
}

func TestPrintCountsImpressionsAndSheets(t *testing.T) {
	keep := t.TempDir()
	clock := newFakeClock()
	_, c := start(t, Config{KeepDir: keep, Clock: clock})
	doc := peertest.PDF(3)
	id := mustSubmit(t, c, doc,
		goipp.MakeAttr("copies", goipp.TagInteger, goipp.Integer(2)),
		strAttrVal("sides", goipp.TagKeyword, "two-sided-long-edge"))
	a := waitState(t, c, id, stateCompleted)
	for name, want := range map[string]int{
		"job-impressions": 6, "job-impressions-completed": 6,
		"job-media-sheets": 4, "job-media-sheets-completed": 4,
		"job-k-octets": 1, "number-of-documents": 1,
	} {
		if got := intOf(t, a, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := strsOf(a, "job-name"); !slices.Equal(got, []string{"attestation.pdf"}) {
		t.Errorf("job-name = %v", got)
	}
	kept, err := os.ReadFile(filepath.Join(keep, clock.Now().Format("20060102T150405Z")+"-1.pdf"))
	if err != nil || !bytes.Equal(kept, doc) {
		t.Errorf("kept document: %v, equal %v", err, bytes.Equal(kept, doc))
	}

	// A client's job-impressions hint wins over counting, and is not
	// answered twice.
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(strAttrVal("document-format", goipp.TagMimeType, "image/jpeg"))
	req.Operation.Add(goipp.MakeAttr("job-impressions", goipp.TagInteger, goipp.Integer(5)))
	resp, err := c.Do(context.Background(), req, strings.NewReader("\xff\xd8\xff not really a jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	a = waitState(t, c, intOf(t, resp.Job, "job-id"), stateCompleted)
	if got := intOf(t, a, "job-impressions-completed"); got != 5 {
		t.Errorf("job-impressions-completed with a hint of 5 = %d", got)
	}
	req = c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(strAttrVal("document-format", goipp.TagMimeType, "application/pdf"))
	req.Job.Add(goipp.MakeAttr("job-impressions", goipp.TagInteger, goipp.Integer(4)))
	resp, err = c.Do(context.Background(), req, bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	a = waitState(t, c, intOf(t, resp.Job, "job-id"), stateCompleted)
	if got := intOf(t, a, "job-impressions"); got != 4 {
		t.Errorf("job-impressions with a hint of 4 in the job group = %d", got)
	}
}

func TestMediaEmptyHoldsJobsUntilRefilled(t *testing.T) {
	clock := newFakeClock()
	p, c := start(t, Config{Clock: clock})
	command(t, p, "slow 10s")
	command(t, p, "media-empty")
	if st, reasons := printerState(t, c); st != 5 || !slices.Equal(reasons, []string{"media-empty-error"}) {
		t.Errorf("idle without paper: state %d %v, want 5 [media-empty-error]", st, reasons)
	}
	id := mustSubmit(t, c, peertest.PDF(1))
	a := waitState(t, c, id, statePending)
	if r := strsOf(a, "job-state-reasons"); !slices.Equal(r, []string{"printer-stopped"}) {
		t.Errorf("waiting job's reasons %v", r)
	}
	if _, reasons := printerState(t, c); !slices.Equal(reasons, []string{"media-empty-error", "media-needed-error"}) {
		t.Errorf("printer with a job waiting for paper reports %v", reasons)
	}
	command(t, p, "refill")
	if d := clock.awaitTimer(t); d != 10*time.Second {
		t.Errorf("job timed for %v, want the slow 10s", d)
	}
	waitState(t, c, id, stateProcessing)
	if st, reasons := printerState(t, c); st != 4 || !slices.Equal(reasons, []string{"none"}) {
		t.Errorf("printing: state %d %v", st, reasons)
	}
	clock.Advance(10 * time.Second)
	a = waitState(t, c, id, stateCompleted)
	if got := intOf(t, a, "time-at-completed") - intOf(t, a, "time-at-processing"); got != 10 {
		t.Errorf("printed in %d s, want 10", got)
	}
}

func TestJamStopsTheJobMidway(t *testing.T) {
	clock := newFakeClock()
	p, c := start(t, Config{Clock: clock})
	command(t, p, "slow 10")
	id := mustSubmit(t, c, peertest.PDF(2))
	clock.awaitTimer(t)
	clock.Advance(4 * time.Second)
	command(t, p, "media-jam on")
	a := waitState(t, c, id, stateStopped)
	if r := strsOf(a, "job-state-reasons"); !slices.Equal(r, []string{"printer-stopped"}) {
		t.Errorf("stopped job's reasons %v", r)
	}
	if st, reasons := printerState(t, c); st != 5 || !slices.Equal(reasons, []string{"media-jam-error"}) {
		t.Errorf("jammed: state %d %v", st, reasons)
	}
	clock.Advance(time.Hour) // time passes while jammed: no progress
	command(t, p, "media-jam off")
	if d := clock.awaitTimer(t); d != 6*time.Second {
		t.Errorf("resumed for %v, want the 6s left", d)
	}
	waitState(t, c, id, stateProcessing)
	clock.Advance(6 * time.Second)
	waitState(t, c, id, stateCompleted)
}

func TestBusyRefusesSubmissionsOnly(t *testing.T) {
	p, c := start(t, Config{})
	command(t, p, "busy")
	_, err := submit(t, c, "application/pdf", peertest.PDF(1))
	var se *upstream.StatusError
	if !errors.As(err, &se) || se.Status != goipp.StatusErrorBusy {
		t.Fatalf("Print-Job while busy: %v", err)
	}
	if _, err := c.PrinterAttributes(context.Background(), "printer-state"); err != nil {
		t.Errorf("Get-Printer-Attributes while busy: %v", err)
	}
	command(t, p, "busy off")
	waitState(t, c, mustSubmit(t, c, peertest.PDF(1)), stateCompleted)
}

func TestOfflineRefusesConnections(t *testing.T) {
	p, c := start(t, Config{})
	uri := p.URI()
	command(t, p, "offline")
	if _, err := c.PrinterAttributes(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("offline printer answered: %v", err)
	}
	if _, err := p.Command("offline off"); err != nil {
		t.Fatal(err)
	}
	if p.URI() != uri {
		t.Errorf("back on %s, was %s", p.URI(), uri)
	}
	if _, err := c.PrinterAttributes(context.Background(), "printer-state"); err != nil {
		t.Errorf("printer back online: %v", err)
	}
	// Without a port of its own, a printer cannot go offline.
	q, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Command("offline"); err == nil {
		t.Error("a printer not listening went offline")
	}
}

func TestGetJobsAndCancel(t *testing.T) {
	p, c := start(t, Config{})
	done := mustSubmit(t, c, peertest.PDF(1))
	waitState(t, c, done, stateCompleted)
	command(t, p, "media-empty on")
	waiting := []int{mustSubmit(t, c, peertest.PDF(1)), mustSubmit(t, c, peertest.PDF(1))}

	jobs := func(which string, extra ...goipp.Attribute) [][2]int {
		req := c.NewRequest(goipp.OpGetJobs)
		req.Operation.Add(strAttrVal("which-jobs", goipp.TagKeyword, which))
		req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword,
			goipp.String("job-id"), goipp.String("job-state"), goipp.String("job-name"),
			goipp.String("job-impressions-completed"), goipp.String("job-media-sheets-completed")))
		for _, a := range extra {
			req.Operation.Add(a)
		}
		resp, err := c.Do(context.Background(), req, nil)
		if err != nil {
			t.Fatalf("Get-Jobs %s: %v", which, err)
		}
		var out [][2]int
		for _, g := range resp.Groups {
			if g.Tag == goipp.TagJobGroup {
				if len(g.Attrs) != 5 {
					t.Errorf("job group %v, want the 5 requested attributes", g.Attrs)
				}
				out = append(out, [2]int{intOf(t, g.Attrs, "job-id"), intOf(t, g.Attrs, "job-state")})
			}
		}
		return out
	}
	if got := jobs("not-completed"); !slices.Equal(got, [][2]int{{waiting[0], 3}, {waiting[1], 3}}) {
		t.Errorf("not-completed = %v", got)
	}
	if got := jobs("completed"); !slices.Equal(got, [][2]int{{done, 9}}) {
		t.Errorf("completed = %v", got)
	}
	if got := jobs("not-completed", goipp.MakeAttr("limit", goipp.TagInteger, goipp.Integer(1))); len(got) != 1 {
		t.Errorf("limit 1 = %v", got)
	}
	if got := jobs("not-completed", goipp.MakeAttr("my-jobs", goipp.TagBoolean, goipp.Boolean(true)),
		strAttrVal("requesting-user-name", goipp.TagName, "someone-else")); len(got) != 0 {
		t.Errorf("someone else's jobs = %v", got)
	}

	cancel := func(id int) error {
		req := c.NewRequest(goipp.OpCancelJob)
		req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
		_, err := c.Do(context.Background(), req, nil)
		return err
	}
	if err := cancel(waiting[0]); err != nil {
		t.Fatal(err)
	}
	var se *upstream.StatusError
	if err := cancel(waiting[0]); !errors.As(err, &se) || se.Status != goipp.StatusErrorNotPossible {
		t.Errorf("canceling a canceled job: %v", err)
	}
	if err := cancel(999); !errors.As(err, &se) || se.Status != goipp.StatusErrorNotFound {
		t.Errorf("canceling no job: %v", err)
	}
	command(t, p, "clear")
	waitState(t, c, waiting[1], stateCompleted)
	if got := jobs("completed"); !slices.Equal(got, [][2]int{{waiting[1], 9}, {waiting[0], 7}, {done, 9}}) {
		t.Errorf("completed, most recent first = %v", got)
	}
	if st := p.Status(); st.Completed != 2 || st.Canceled != 1 || st.Pending != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestCreateJobThenSendDocument(t *testing.T) {
	_, c := start(t, Config{})
	req := c.NewRequest(goipp.OpCreateJob)
	req.Operation.Add(strAttrVal("job-name", goipp.TagName, "scan"))
	resp, err := c.Do(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := intOf(t, resp.Job, "job-id")
	if r := strsOf(jobAttrs(t, c, id), "job-state-reasons"); !slices.Equal(r, []string{"job-incoming"}) {
		t.Errorf("job without its document: %v", r)
	}
	send := func(last bool) error {
		req := c.NewRequest(goipp.OpSendDocument)
		req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
		req.Operation.Add(goipp.MakeAttr("last-document", goipp.TagBoolean, goipp.Boolean(last)))
		req.Operation.Add(strAttrVal("document-format", goipp.TagMimeType, "application/pdf"))
		_, err := c.Do(context.Background(), req, bytes.NewReader(peertest.PDF(4)))
		return err
	}
	if err := send(true); err != nil {
		t.Fatal(err)
	}
	a := waitState(t, c, id, stateCompleted)
	if n := intOf(t, a, "job-impressions-completed"); n != 4 {
		t.Errorf("job-impressions-completed = %d, want 4", n)
	}
	var se *upstream.StatusError
	if err := send(true); !errors.As(err, &se) || se.Status != goipp.StatusErrorMultipleJobsNotSupported {
		t.Errorf("a second document: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	_, c := start(t, Config{MaxDocumentBytes: 1000})
	var se *upstream.StatusError
	_, err := submit(t, c, "application/pdf", bytes.Repeat([]byte("%PDF"), 1000))
	if !errors.As(err, &se) || se.Status != goipp.StatusErrorRequestEntity {
		t.Errorf("document over the limit: %v", err)
	}
	_, err = submit(t, c, "application/vnd.ms-word", []byte("doc"))
	if !errors.As(err, &se) || se.Status != goipp.StatusErrorDocumentFormatNotSupported {
		t.Errorf("unsupported format: %v", err)
	}
	_, err = submit(t, c, "application/pdf", peertest.PDF(1), goipp.MakeAttr("copies", goipp.TagInteger, goipp.Integer(1000)))
	if err != nil {
		t.Errorf("unsupported copies without fidelity: %v, want the job, ignoring them", err)
	}
	req := c.NewRequest(goipp.Op(0x3C)) // Identify-Printer
	if _, err := c.Do(context.Background(), req, nil); !errors.As(err, &se) || se.Status != goipp.StatusErrorOperationNotSupported {
		t.Errorf("unsupported operation: %v", err)
	}
	// Not IPP at all.
	resp, err := http.Post(strings.Replace(c.URI, "ipp://", "http://", 1), goipp.ContentType, strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage: HTTP %d", resp.StatusCode)
	}
}

func TestReplaysADevice(t *testing.T) {
	attrs, err := LoadAttributes(peertest.Device(t, "Xerox-B235-Printer-Attributes.ipp"))
	if err != nil {
		t.Fatal(err)
	}
	p, c := start(t, Config{Attributes: attrs})
	req := c.NewRequest(goipp.OpGetPrinterAttributes)
	hreq, _ := req.EncodeBytes()
	resp, err := http.Post(strings.Replace(c.URI, "ipp://", "http://", 1), goipp.ContentType, bytes.NewReader(hreq))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(raw, []byte("192.168.")) {
		t.Error("the replayed attributes still point at the real device's address")
	}
	var m goipp.Message
	if err := m.DecodeBytes(raw); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"printer-make-and-model": "Xerox(R) B235 MFP",
		"printer-name":           "Xerox(R) B235 MFP",
		"printer-uri-supported":  p.URI(),
		"printer-state":          "3",
		"urf-supported":          "V1.5",
	} {
		if got := strsOf(m.Printer, name); len(got) == 0 || got[0] != want {
			t.Errorf("%s = %v, want %s first", name, got, want)
		}
	}
	if got := strsOf(m.Printer, "document-format-supported"); !slices.Contains(got, "image/urf") || slices.Contains(got, "application/pdf") {
		t.Errorf("document-format-supported = %v, want the device's", got)
	}
	// The device takes no PDF; Apple raster it counts from the header.
	if _, err := submit(t, c, "application/pdf", peertest.PDF(1)); err == nil {
		t.Error("PDF accepted by a replayed device that takes none")
	}
	id, err := submit(t, c, "image/urf", urf(3))
	if err != nil {
		t.Fatal(err)
	}
	if n := intOf(t, waitState(t, c, id, stateCompleted), "job-impressions-completed"); n != 3 {
		t.Errorf("URF of 3 pages counted as %d", n)
	}
}

func TestControlHandler(t *testing.T) {
	p, _ := start(t, Config{})
	h := p.ControlHandler()
	do := func(method, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://control/", strings.NewReader(body))
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		var out map[string]any
		json.Unmarshal(rec.body.Bytes(), &out)
		return rec.code, out
	}
	code, st := do("POST", "media-empty on\nbusy\nslow 2s\n")
	if code != 200 || st["state"] != "stopped" || !slices.Equal(toStrings(st["faults"]), []string{"media-empty", "busy", "slow 2s"}) {
		t.Errorf("POST: %d %v", code, st)
	}
	code, st = do("GET", "")
	if code != 200 || st["uri"] != p.URI() {
		t.Errorf("GET: %d %v", code, st)
	}
	for _, bad := range []string{"", "paper-low on", "slow forever", "slow -1s", "busy maybe", "slow 2h"} {
		if code, st := do("POST", bad); code != 400 || st["error"] == nil {
			t.Errorf("POST %q: %d %v", bad, code, st)
		}
	}
	if code, _ := do("POST", strings.Repeat("clear\n", 1000)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized commands: %d", code)
	}
	if code, _ := do("DELETE", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
	code, st = do("POST", "clear")
	if code != 200 || len(toStrings(st["faults"])) != 0 || st["state"] != "idle" {
		t.Errorf("clear: %d %v", code, st)
	}
}

func toStrings(v any) []string {
	var s []string
	l, _ := v.([]any)
	for _, x := range l {
		s = append(s, x.(string))
	}
	return s
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}

func TestLoadAttributesRejects(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"garbage.ipp": []byte("not ipp"),
		"error.ipp":   mustEncode(t, goipp.NewResponse(goipp.MakeVersion(2, 0), goipp.StatusErrorNotFound, 1)),
		"empty.ipp":   mustEncode(t, goipp.NewResponse(goipp.MakeVersion(2, 0), goipp.StatusOk, 1)),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadAttributes(path); err == nil {
			t.Errorf("%s loaded", name)
		}
	}
	if _, err := LoadAttributes(filepath.Join(dir, "missing.ipp")); err == nil {
		t.Error("missing file loaded")
	}
}

func mustEncode(t *testing.T, m *goipp.Message) []byte {
	b, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The listener refuses connections once closed.
func TestCloseStopsListening(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URI(), "ipp://"), Path)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("closed printer accepts connections")
	}
}
