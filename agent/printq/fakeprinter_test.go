package printq

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
)

// fakePrinter is a small IPP printer on loopback, written with goipp, for
// the unit tests: it keeps the jobs it is sent, answers Get-Jobs,
// Get-Job-Attributes and Cancel-Job, and can be made busy, picky, slow,
// stopped or unreachable. The integration tests use ippeveprinter.
type fakePrinter struct {
	t    *testing.T
	addr string

	mu        sync.Mutex
	srv       *http.Server
	jobs      []*fakeJob
	nextID    int
	bodies    [][]byte // every request body, with its document
	reasons   []string // printer-state-reasons
	state     int
	holdJobs  bool           // jobs stay processing until finish
	impress   int            // job-impressions-completed of a completed job
	sheets    int            // job-media-sheets-completed
	printErr  []goipp.Status // answers to the next Print-Jobs
	refuse    map[string]bool
	noAll     bool          // which-jobs all is not supported: not-completed instead
	hideWhich bool          // which-jobs-supported is not reported
	hideNames bool          // Get-Jobs leaves job names out, as for another user's jobs
	drop      bool          // Print-Job keeps nothing and drops the connection unanswered
	block     chan struct{} // when set, Print-Job keeps the job, then waits for it to close
	blocked   chan struct{} // receives when a Print-Job is blocked
}

type fakeJob struct {
	id          int
	name, user  string
	format      string
	template    goipp.Attributes
	doc         []byte
	state       State
	reasons     []string
	impressions int
	sheets      int
}

func newFakePrinter(t *testing.T) *fakePrinter {
	p := &fakePrinter{t: t, nextID: 1, state: 3, impress: 1, sheets: 1, blocked: make(chan struct{}, 16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *fakePrinter) uri() string { return "ipp://" + p.addr + "/ipp/print" }

func (p *fakePrinter) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(ln)
}

// down closes the printer's socket: connections are refused.
func (p *fakePrinter) down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// up listens again on the same address.
func (p *fakePrinter) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

func (p *fakePrinter) set(f func(p *fakePrinter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *fakePrinter) printJobs() []fakeJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	var js []fakeJob
	for _, j := range p.jobs {
		js = append(js, *j)
	}
	return js
}

// addJob makes a job on the printer as if it had been sent.
func (p *fakePrinter) addJob(name string, doc []byte, st State) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &fakeJob{id: p.nextID, name: name, user: upstreamUser, doc: doc, state: st, impressions: p.impress, sheets: p.sheets}
	p.nextID++
	p.jobs = append(p.jobs, j)
	return j.id
}

// finish ends the jobs still processing.
func (p *fakePrinter) finish(st State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.jobs {
		if !j.state.Terminal() {
			j.state = st
		}
	}
}

// count returns how many requests of an operation the printer got.
func (p *fakePrinter) count(op goipp.Op) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.bodies {
		var m goipp.Message
		if err := m.Decode(bytes.NewReader(b)); err == nil && goipp.Op(m.Code) == op {
			n++
		}
	}
	return n
}

func (p *fakePrinter) allBodies() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Join(p.bodies, nil)
}

func (p *fakePrinter) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	var req goipp.Message
	rd := bytes.NewReader(body)
	if err := req.Decode(rd); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	doc := body[len(body)-rd.Len():]
	p.mu.Lock()
	p.bodies = append(p.bodies, body)
	p.mu.Unlock()

	resp := goipp.NewResponse(req.Version, goipp.StatusOk, req.RequestID)
	resp.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	resp.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	switch goipp.Op(req.Code) {
	case goipp.OpGetPrinterAttributes:
		p.printerAttrs(resp)
	case goipp.OpPrintJob:
		p.mu.Lock()
		drop := p.drop
		p.mu.Unlock()
		if drop {
			panic(http.ErrAbortHandler)
		}
		if !p.printJob(&req, doc, resp, r) {
			return
		}
	case goipp.OpGetJobAttributes:
		p.mu.Lock()
		if j := p.find(intAttr(req.Operation, "job-id")); j != nil {
			resp.Job = j.attrs()
		} else {
			resp.Code = goipp.Code(goipp.StatusErrorNotFound)
		}
		p.mu.Unlock()
	case goipp.OpGetJobs:
		which := keyword(req.Operation, "which-jobs")
		p.mu.Lock()
		if which == "all" && p.noAll {
			// As RFC 8011 has it: the default, not-completed, instead.
			resp.Code = goipp.Code(goipp.StatusOkIgnoredOrSubstituted)
			resp.Unsupported.Add(goipp.MakeAttribute("which-jobs", goipp.TagKeyword, goipp.String("all")))
			which = "not-completed"
		}
		for _, j := range p.jobs {
			if which == "all" || which == "completed" && j.state.Terminal() ||
				which == "not-completed" && !j.state.Terminal() {
				attrs := j.attrs()
				if p.hideNames {
					attrs = slices.DeleteFunc(attrs, func(a goipp.Attribute) bool { return a.Name == "job-name" })
				}
				resp.Groups = append(resp.Groups, goipp.Group{Tag: goipp.TagJobGroup, Attrs: attrs})
			}
		}
		if len(resp.Groups) > 0 {
			head := goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: resp.Operation}}
			if len(resp.Unsupported) > 0 {
				head = append(head, goipp.Group{Tag: goipp.TagUnsupportedGroup, Attrs: resp.Unsupported})
			}
			resp.Groups = append(head, resp.Groups...)
		}
		p.mu.Unlock()
	case goipp.OpCancelJob:
		p.mu.Lock()
		switch j := p.find(intAttr(req.Operation, "job-id")); {
		case j == nil:
			resp.Code = goipp.Code(goipp.StatusErrorNotFound)
		case j.state.Terminal():
			resp.Code = goipp.Code(goipp.StatusErrorNotPossible)
		default:
			j.state, j.reasons = Canceled, []string{"job-canceled-by-user"}
		}
		p.mu.Unlock()
	default:
		resp.Code = goipp.Code(goipp.StatusErrorOperationNotSupported)
	}
	b, err := resp.EncodeBytes()
	if err != nil {
		p.t.Error(err)
		return
	}
	w.Header().Set("Content-Type", goipp.ContentType)
	w.Write(b)
}

func (p *fakePrinter) printerAttrs(resp *goipp.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resp.Printer.Add(goipp.MakeAttribute("printer-state", goipp.TagEnum, goipp.Integer(p.state)))
	reasons := goipp.Attribute{Name: "printer-state-reasons"}
	for _, r := range append([]string{}, p.reasons...) {
		reasons.Values.Add(goipp.TagKeyword, goipp.String(r))
	}
	if len(reasons.Values) == 0 {
		reasons.Values.Add(goipp.TagKeyword, goipp.String("none"))
	}
	resp.Printer.Add(reasons)
	resp.Printer.Add(goipp.MakeAttribute("printer-is-accepting-jobs", goipp.TagBoolean, goipp.Boolean(true)))
	resp.Printer.Add(goipp.MakeAttr("marker-names", goipp.TagName, goipp.String("Black Toner"), goipp.String("Cyan Toner")))
	resp.Printer.Add(goipp.MakeAttr("marker-types", goipp.TagKeyword, goipp.String("toner"), goipp.String("toner")))
	resp.Printer.Add(goipp.MakeAttr("marker-colors", goipp.TagName, goipp.String("#000000"), goipp.String("#00FFFF")))
	resp.Printer.Add(goipp.MakeAttr("marker-levels", goipp.TagInteger, goipp.Integer(80), goipp.Integer(15)))
	resp.Printer.Add(goipp.MakeAttribute("color-supported", goipp.TagBoolean, goipp.Boolean(true)))
	resp.Printer.Add(goipp.MakeAttribute("sides-default", goipp.TagKeyword, goipp.String("one-sided")))
	which := []goipp.Value{goipp.String("completed"), goipp.String("not-completed")}
	if !p.noAll && !p.hideWhich {
		which = append(which, goipp.String("all"))
	}
	if !p.hideWhich {
		resp.Printer.Add(goipp.MakeAttr("which-jobs-supported", goipp.TagKeyword, which[0], which[1:]...))
	}
	resp.Printer.Add(goipp.MakeAttr("document-format-supported", goipp.TagMimeType,
		goipp.String("application/pdf"), goipp.String("image/pwg-raster")))
}

// printJob keeps a job; false when the response must not be sent.
func (p *fakePrinter) printJob(req *goipp.Message, doc []byte, resp *goipp.Message, r *http.Request) bool {
	p.mu.Lock()
	if len(p.printErr) > 0 {
		resp.Code = goipp.Code(p.printErr[0])
		p.printErr = p.printErr[1:]
		p.mu.Unlock()
		return true
	}
	var refused goipp.Attributes
	for _, a := range req.Job {
		if p.refuse[a.Name] {
			refused = append(refused, a)
		}
	}
	if len(refused) > 0 {
		resp.Code = goipp.Code(goipp.StatusErrorAttributesOrValues)
		resp.Unsupported = refused
		p.mu.Unlock()
		return true
	}
	j := &fakeJob{
		id: p.nextID, name: keyword(req.Operation, "job-name"), user: keyword(req.Operation, "requesting-user-name"),
		format: keyword(req.Operation, "document-format"), template: req.Job, doc: slices.Clone(doc),
		state: Completed, impressions: p.impress, sheets: p.sheets,
	}
	if p.holdJobs {
		j.state = Processing
	}
	p.nextID++
	p.jobs = append(p.jobs, j)
	block := p.block
	resp.Job = j.attrs()
	p.mu.Unlock()
	if block != nil {
		p.blocked <- struct{}{}
		select {
		case <-block:
		case <-r.Context().Done():
		}
		return false
	}
	return true
}

func (p *fakePrinter) find(id int) *fakeJob {
	for _, j := range p.jobs {
		if j.id == id {
			return j
		}
	}
	return nil
}

func (j *fakeJob) attrs() goipp.Attributes {
	var a goipp.Attributes
	a.Add(goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(j.id)))
	a.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(j.name)))
	a.Add(goipp.MakeAttribute("job-state", goipp.TagEnum, goipp.Integer(j.state)))
	reasons := slices.Clone(j.reasons)
	if len(reasons) == 0 {
		reasons = []string{"none"}
	}
	a.Add(keywords("job-state-reasons", reasons))
	if j.state == Completed || j.state == Canceled {
		a.Add(goipp.MakeAttribute("job-impressions-completed", goipp.TagInteger, goipp.Integer(j.impressions)))
		a.Add(goipp.MakeAttribute("job-media-sheets-completed", goipp.TagInteger, goipp.Integer(j.sheets)))
	}
	return a
}

// ippCall sends a request to a printer, for tests that set one up.
func ippCall(t *testing.T, uri string, build func(c *upstream.Client) *goipp.Message, doc []byte) *goipp.Message {
	t.Helper()
	c := &upstream.Client{URI: uri}
	var r io.Reader
	if doc != nil {
		r = bytes.NewReader(doc)
	}
	resp, err := c.Do(t.Context(), build(c), r)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp
}
