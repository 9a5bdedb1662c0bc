package printer

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"
	"github.com/google/uuid"
)

// Path is where the printer answers IPP.
const Path = "/ipp/print"

// ServeHTTP answers IPP requests posted to Path, and a short text page at
// "/" (the printer-more-info address).
func (p *Printer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == Path && r.Method == http.MethodPost:
	case r.URL.Path == Path:
		w.Header().Set("Allow", "POST")
		http.Error(w, "IPP wants POST", http.StatusMethodNotAllowed)
		return
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s: simulated IPP printer (relais-sim). %s\n", p.cfg.Name, p.Status().State)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, goipp.ContentType) {
		http.Error(w, "want Content-Type "+goipp.ContentType, http.StatusBadRequest)
		return
	}
	body := bufio.NewReader(r.Body)
	var req goipp.Message
	if err := req.Decode(io.LimitReader(body, MaxRequestBytes)); err != nil {
		http.Error(w, "bad IPP request: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := &call{p: p, req: &req, doc: body, base: p.baseURI(r)}
	resp := c.serve()
	// Read what the client still sends (a refused document), within the
	// limit, so that it reads our answer rather than a reset connection.
	io.Copy(io.Discard, io.LimitReader(body, p.cfg.MaxDocumentBytes))
	out, err := resp.EncodeBytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", goipp.ContentType)
	w.Write(out)
}

// baseURI returns the printer URI as the client reached it: the request's
// Host if it is a valid host:port, else the listening address.
func (p *Printer) baseURI(r *http.Request) string {
	if host, port, err := net.SplitHostPort(r.Host); err == nil && len(r.Host) <= 255 && validHost(host) {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return "ipp://" + net.JoinHostPort(host, port) + Path
		}
	}
	if r.Host != "" && len(r.Host) <= 255 && validHost(r.Host) {
		return "ipp://" + net.JoinHostPort(r.Host, "80") + Path
	}
	if u := p.URI(); u != "" {
		return u
	}
	return "ipp://localhost" + Path
}

// validHost accepts an IP address or a DNS name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// call is one IPP request being answered.
type call struct {
	p      *Printer
	req    *goipp.Message
	doc    io.Reader
	base   string // printer URI as the client reached it
	status goipp.Status
	// The answer's groups: operation, unsupported, one job group per job,
	// printer.
	op, unsupported, printer goipp.Attributes
	jobs                     []goipp.Attributes
}

// ippError is an IPP status to answer with, and its message.
type ippError struct {
	status goipp.Status
	msg    string
}

func (e *ippError) Error() string { return e.msg }

func fail(st goipp.Status, format string, args ...any) error {
	return &ippError{st, fmt.Sprintf(format, args...)}
}

// serve checks the request as RFC 8011 section 4.1 says and runs the
// operation.
func (c *call) serve() *goipp.Message {
	version := c.req.Version
	if version.Major() != 1 && version.Major() != 2 {
		version = goipp.MakeVersion(2, 0)
	}
	c.op = goipp.Attributes{
		goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")),
		goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")),
	}
	err := c.check()
	if err == nil {
		err = c.dispatch()
	}
	if err != nil {
		var ie *ippError
		if !errors.As(err, &ie) {
			ie = &ippError{goipp.StatusErrorInternal, err.Error()}
		}
		c.status = ie.status
		c.op.Add(goipp.MakeAttr("status-message", goipp.TagText, goipp.String(ie.msg)))
		c.jobs, c.printer = nil, nil
		c.p.log.Debug("ipp", "op", goipp.Op(c.req.Code), "status", ie.status, "message", ie.msg)
	}
	groups := goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: c.op}}
	if len(c.unsupported) > 0 {
		groups.Add(goipp.Group{Tag: goipp.TagUnsupportedGroup, Attrs: c.unsupported})
	}
	for _, j := range c.jobs {
		groups.Add(goipp.Group{Tag: goipp.TagJobGroup, Attrs: j})
	}
	if c.printer != nil {
		groups.Add(goipp.Group{Tag: goipp.TagPrinterGroup, Attrs: c.printer})
	}
	return goipp.NewMessageWithGroups(version, goipp.Code(c.status), c.req.RequestID, groups)
}

func (c *call) check() error {
	if v := c.req.Version; v.Major() != 1 && v.Major() != 2 {
		return fail(goipp.StatusErrorVersionNotSupported, "IPP version %v is not supported", v)
	}
	if c.req.RequestID == 0 {
		return fail(goipp.StatusErrorBadRequest, "request-id must not be 0")
	}
	groups := c.req.AttrGroups()
	if len(groups) == 0 || groups[0].Tag != goipp.TagOperationGroup {
		return fail(goipp.StatusErrorBadRequest, "no operation attributes")
	}
	op := groups[0].Attrs
	if len(op) < 2 || op[0].Name != "attributes-charset" || op[1].Name != "attributes-natural-language" {
		return fail(goipp.StatusErrorBadRequest, "attributes-charset and attributes-natural-language must come first")
	}
	if len(op[0].Values) != 1 || op[0].Values[0].T != goipp.TagCharset {
		return fail(goipp.StatusErrorBadRequest, "bad attributes-charset")
	}
	if cs := strings.ToLower(op[0].Values[0].V.String()); cs != "utf-8" && cs != "us-ascii" {
		return fail(goipp.StatusErrorCharset, "charset %q is not supported", cs)
	}
	if len(op[1].Values) != 1 || op[1].Values[0].T != goipp.TagLanguage {
		return fail(goipp.StatusErrorBadRequest, "bad attributes-natural-language")
	}
	for _, g := range groups {
		for _, a := range g.Attrs {
			if len(a.Values) == 0 {
				return fail(goipp.StatusErrorBadRequest, "attribute %s has no value", a.Name)
			}
		}
	}
	return nil
}

func (c *call) dispatch() error {
	op := goipp.Op(c.req.Code)
	switch op {
	case goipp.OpGetPrinterAttributes, goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpGetJobs:
		if c.opValue("printer-uri") == nil {
			return fail(goipp.StatusErrorBadRequest, "no printer-uri")
		}
	case goipp.OpSendDocument, goipp.OpCancelJob, goipp.OpGetJobAttributes:
		if c.opValue("printer-uri") == nil && c.opValue("job-uri") == nil {
			return fail(goipp.StatusErrorBadRequest, "no printer-uri or job-uri")
		}
	}
	switch op {
	case goipp.OpGetPrinterAttributes:
		return c.getPrinterAttributes()
	case goipp.OpValidateJob:
		if err := c.busy(); err != nil {
			return err
		}
		_, err := c.newJob()
		return err
	case goipp.OpPrintJob:
		return c.printJob()
	case goipp.OpCreateJob:
		return c.createJob()
	case goipp.OpSendDocument:
		return c.sendDocument()
	case goipp.OpGetJobAttributes:
		return c.getJobAttributes()
	case goipp.OpGetJobs:
		return c.getJobs()
	case goipp.OpCancelJob:
		return c.cancelJob()
	}
	return fail(goipp.StatusErrorOperationNotSupported, "operation %v is not supported", op)
}

// opValue returns the first value of an operation attribute, or nil.
func (c *call) opValue(name string) goipp.Value {
	if v := find(c.req.Operation, name); len(v) > 0 {
		return v[0].V
	}
	return nil
}

func (c *call) opString(name, def string) string {
	if v := c.opValue(name); v != nil {
		return v.String()
	}
	return def
}

// requested returns the requested-attributes keywords, or def.
func (c *call) requested(def ...string) map[string]bool {
	ra := map[string]bool{}
	vals := find(c.req.Operation, "requested-attributes")
	for _, v := range vals {
		ra[v.V.String()] = true
	}
	if len(vals) == 0 {
		for _, d := range def {
			ra[d] = true
		}
	}
	return ra
}

func (c *call) busy() error {
	if c.p.Faults().Busy {
		return fail(goipp.StatusErrorBusy, "printer busy, try again later")
	}
	return nil
}

func (c *call) getPrinterAttributes() error {
	ra := c.requested("all")
	if df := c.opValue("document-format"); df != nil && !c.p.formats[df.String()] {
		return fail(goipp.StatusErrorDocumentFormatNotSupported, "document format %s is not supported", df)
	}
	all := ra["all"] || ra["printer-description"] || ra["job-template"]
	c.printer = goipp.Attributes{}
	for _, a := range c.p.printerAttributes(c.base) {
		if ra[a.Name] || all && a.Name != "media-col-database" {
			c.printer.Add(a)
		}
	}
	return nil
}

// printerAttributes returns every printer attribute, the static ones and
// those of the moment.
func (p *Printer) printerAttributes(base string) goipp.Attributes {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	state, reasons, message := p.printerStateLocked()
	queued := 0
	for _, j := range p.jobs {
		if !j.terminal() {
			queued++
		}
	}
	u, _ := parseURI(base)
	web := "http://" + u
	attrs := make(goipp.Attributes, 0, len(p.static)+16)
	for _, a := range p.static {
		if len(a.Values) > 0 && a.Values[0].T == goipp.TagURI && strings.HasPrefix(a.Values[0].V.String(), "http") {
			a = rehost(a, web)
		}
		attrs = append(attrs, a)
	}
	reasonVals := make([]goipp.Value, len(reasons))
	for i, r := range reasons {
		reasonVals[i] = goipp.String(r)
	}
	attrs = append(attrs,
		goipp.MakeAttr("printer-uri-supported", goipp.TagURI, goipp.String(base)),
		goipp.MakeAttr("uri-security-supported", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttr("uri-authentication-supported", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttr("printer-uuid", goipp.TagURI, goipp.String(printerUUID(cmp.Or(p.addr, base), p.cfg.Name))),
		goipp.MakeAttr("printer-state", goipp.TagEnum, goipp.Integer(state)),
		goipp.MakeAttr("printer-state-reasons", goipp.TagKeyword, reasonVals[0], reasonVals[1:]...),
		goipp.MakeAttr("printer-state-message", goipp.TagText, goipp.String(message)),
		goipp.MakeAttr("printer-is-accepting-jobs", goipp.TagBoolean, goipp.Boolean(true)),
		goipp.MakeAttr("queued-job-count", goipp.TagInteger, goipp.Integer(queued)),
		goipp.MakeAttr("printer-up-time", goipp.TagInteger, goipp.Integer(p.upTime(now))),
		goipp.MakeAttr("printer-current-time", goipp.TagDateTime, goipp.Time{Time: now}),
		goipp.MakeAttr("printer-state-change-time", goipp.TagInteger, goipp.Integer(p.upTime(p.stateChanged))),
		goipp.MakeAttr("printer-state-change-date-time", goipp.TagDateTime, goipp.Time{Time: p.stateChanged}),
		goipp.MakeAttr("printer-config-change-time", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttr("printer-config-change-date-time", goipp.TagDateTime, goipp.Time{Time: p.started}),
	)
	return attrs
}

// upTime returns t in seconds since the printer started; IPP's up-time
// starts at 1.
func (p *Printer) upTime(t time.Time) int {
	return int(t.Sub(p.started)/time.Second) + 1
}

// printerUUID derives a stable printer-uuid from the printer's listening
// address (or URI) and name, so that two simulated printers replaying one
// device differ, and one keeps its UUID however a client names its host.
func printerUUID(addr, name string) string {
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(addr+"#"+name)).String()
}

// parseURI returns the host:port of an ipp:// URI made by baseURI.
func parseURI(base string) (string, error) {
	rest, ok := strings.CutPrefix(base, "ipp://")
	if !ok {
		return "", errors.New("not an ipp URI")
	}
	host, _, _ := strings.Cut(rest, "/")
	return host, nil
}

// rehost points every URI of a web address attribute (printer-more-info,
// printer-icons, ...) at this printer's own web address, keeping the
// path: a client never follows a replayed URI to the real device.
func rehost(a goipp.Attribute, web string) goipp.Attribute {
	out := goipp.Attribute{Name: a.Name}
	for _, v := range a.Values {
		s := v.V.String()
		path := "/"
		if _, rest, ok := strings.Cut(s, "://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				path = rest[i:]
			}
		}
		out.Values.Add(v.T, goipp.String(web+path))
	}
	return out
}

// newJob checks a job creation request (Print-Job, Validate-Job,
// Create-Job) and returns the job it describes, not yet queued.
func (c *call) newJob() (*job, error) {
	j := &job{
		name:    bounded(c.opString("job-name", "Untitled"), 255),
		user:    bounded(c.opString("requesting-user-name", "anonymous"), 255),
		state:   statePending,
		reasons: []string{"job-incoming"},
	}
	fidelity := false
	if b, ok := c.opValue("ipp-attribute-fidelity").(goipp.Boolean); ok {
		fidelity = bool(b)
	}
	if comp := c.opString("compression", "none"); comp != "none" && comp != "gzip" {
		c.unsupport(find(c.req.Operation, "compression"), "compression")
		return nil, fail(goipp.StatusErrorCompressionNotSupported, "compression %s is not supported", comp)
	}
	if df := c.opValue("document-format"); df != nil {
		if !c.p.formats[df.String()] {
			c.unsupport(find(c.req.Operation, "document-format"), "document-format")
			return nil, fail(goipp.StatusErrorDocumentFormatNotSupported, "document format %s is not supported", df)
		}
		j.format = df.String()
	}
	substituted := false
	for _, a := range c.req.Job {
		if ok := c.p.supports(a); !ok {
			if fidelity {
				c.unsupport(a.Values, a.Name)
				return nil, fail(goipp.StatusErrorAttributesOrValues, "unsupported %s", a.Name)
			}
			c.unsupport(a.Values, a.Name)
			substituted = true
			continue
		}
		j.template.Add(a)
	}
	if substituted {
		c.status = goipp.StatusOkIgnoredOrSubstituted
	}
	return j, nil
}

// unsupport reports an attribute in the unsupported group.
func (c *call) unsupport(vals goipp.Values, name string) {
	if len(vals) == 0 {
		return
	}
	c.unsupported.Add(goipp.Attribute{Name: name, Values: vals})
}

// supports checks a job template attribute against the printer's
// capabilities: copies against copies-supported, keywords against
// NAME-supported when the printer lists it. Others are accepted as sent.
func (p *Printer) supports(a goipp.Attribute) bool {
	if a.Name == "copies" {
		n, ok := a.Values[0].V.(goipp.Integer)
		upper := 999
		if r := find(p.static, "copies-supported"); len(r) > 0 {
			if rg, ok := r[0].V.(goipp.Range); ok {
				upper = rg.Upper
			}
		}
		return ok && len(a.Values) == 1 && n >= 1 && int(n) <= upper
	}
	if a.Values[0].T != goipp.TagKeyword {
		return true
	}
	sup := find(p.static, a.Name+"-supported")
	if len(sup) == 0 {
		return true
	}
	for _, v := range a.Values {
		if !slices.ContainsFunc(sup, func(s goipp.TaggedValue) bool { return s.V.String() == v.V.String() }) {
			return false
		}
	}
	return true
}

// bounded cuts s to at most n bytes, on a character boundary.
func bounded(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// queue adds a job, giving it an id, unless too many are active.
func (p *Printer) queue(j *job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.activeLocked() >= MaxActiveJobs {
		return fail(goipp.StatusErrorTooManyJobs, "too many jobs (%d)", MaxActiveJobs)
	}
	j.id = p.nextID
	p.nextID++
	j.created = p.clock.Now()
	j.uuid = "urn:uuid:" + uuid.New().String()
	p.jobs = append(p.jobs, j)
	p.log.Info("job received", "job", j.id)
	return nil
}

func (c *call) printJob() error {
	if err := c.busy(); err != nil {
		return err
	}
	j, err := c.newJob()
	if err != nil {
		return err
	}
	if err := c.p.queue(j); err != nil {
		return err
	}
	if err := c.receive(j); err != nil {
		return err
	}
	c.jobAnswer(j)
	return nil
}

func (c *call) createJob() error {
	if err := c.busy(); err != nil {
		return err
	}
	j, err := c.newJob()
	if err != nil {
		return err
	}
	j.state, j.reasons = stateHeld, []string{"job-incoming"}
	if err := c.p.queue(j); err != nil {
		return err
	}
	c.jobAnswer(j)
	return nil
}

func (c *call) sendDocument() error {
	if err := c.busy(); err != nil {
		return err
	}
	j, err := c.targetJob()
	if err != nil {
		return err
	}
	last, ok := c.opValue("last-document").(goipp.Boolean)
	if !ok {
		return fail(goipp.StatusErrorBadRequest, "no last-document")
	}
	if !last {
		return fail(goipp.StatusErrorMultipleJobsNotSupported, "one document per job")
	}
	c.p.mu.Lock()
	state, has := j.state, j.hasDoc
	c.p.mu.Unlock()
	switch {
	case has:
		return fail(goipp.StatusErrorMultipleJobsNotSupported, "job %d has its document", j.id)
	case state != stateHeld:
		return fail(goipp.StatusErrorNotPossible, "job %d is not waiting for a document", j.id)
	}
	if df := c.opValue("document-format"); df != nil {
		if !c.p.formats[df.String()] {
			c.unsupport(find(c.req.Operation, "document-format"), "document-format")
			return fail(goipp.StatusErrorDocumentFormatNotSupported, "document format %s is not supported", df)
		}
		c.p.mu.Lock()
		j.format = df.String()
		c.p.mu.Unlock()
	}
	if comp := c.opString("compression", "none"); comp != "none" && comp != "gzip" {
		return fail(goipp.StatusErrorCompressionNotSupported, "compression %s is not supported", comp)
	}
	if err := c.receive(j); err != nil {
		return err
	}
	c.jobAnswer(j)
	return nil
}

// receive reads the job's document, counts its pages and queues the job
// for printing; on failure the job is aborted.
func (c *call) receive(j *job) error {
	err := c.read(j)
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if err != nil {
		if !j.terminal() {
			c.p.finishLocked(j, stateAborted, "aborted-by-system")
		}
		return err
	}
	if j.terminal() { // canceled while it arrived
		return nil
	}
	j.hasDoc = true
	j.state, j.reasons = statePending, []string{"none"}
	c.p.signal()
	return nil
}

func (c *call) read(j *job) error {
	limit := c.p.cfg.MaxDocumentBytes
	in := c.doc
	if c.opString("compression", "none") == "gzip" {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return fail(goipp.StatusErrorCompressionError, "bad gzip document: %v", err)
		}
		defer zr.Close()
		in = zr
	}
	c.p.mu.Lock()
	format := j.format
	c.p.mu.Unlock()
	br := bufio.NewReader(in)
	if format == "" || format == "application/octet-stream" {
		head, _ := br.Peek(16)
		format = sniff(head)
	}
	out, path, err := c.p.keep(j.id, format)
	if err != nil {
		return err
	}
	counter := newPageCounter(format)
	n, err := io.Copy(io.MultiWriter(out, counter), io.LimitReader(br, limit+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = fail(goipp.StatusErrorRequestEntity, "document larger than %d bytes", limit)
	}
	if err != nil {
		if path != "" {
			removeQuietly(path)
		}
		var ie *ippError
		if errors.As(err, &ie) {
			return err
		}
		return fail(goipp.StatusErrorDocumentFormatError, "reading the document: %v", err)
	}
	pages := counter.Pages()
	hint := c.opValue("job-impressions")
	if v := find(j.template, "job-impressions"); hint == nil && len(v) > 0 {
		hint = v[0].V
	}
	if n, ok := hint.(goipp.Integer); ok && n > 0 {
		pages = int(n)
	}
	copies, sides := 1, "one-sided"
	for _, a := range j.template {
		switch a.Name {
		case "copies":
			copies = int(a.Values[0].V.(goipp.Integer))
		case "sides":
			sides = a.Values[0].V.String()
		}
	}
	sheets := pages
	if strings.HasPrefix(sides, "two-sided") {
		sheets = (pages + 1) / 2
	}
	c.p.mu.Lock()
	j.format, j.bytes = format, n
	j.impressions, j.sheets = pages*copies, sheets*copies
	c.p.mu.Unlock()
	return nil
}

// targetJob returns the job named by job-id or job-uri.
func (c *call) targetJob() (*job, error) {
	id := 0
	if v, ok := c.opValue("job-id").(goipp.Integer); ok {
		id = int(v)
	} else if u := c.opValue("job-uri"); u != nil {
		s := u.String()
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			id, _ = strconv.Atoi(s[i+1:])
		}
	}
	if id <= 0 {
		return nil, fail(goipp.StatusErrorBadRequest, "no job-id")
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if j := c.p.jobLocked(id); j != nil {
		return j, nil
	}
	return nil, fail(goipp.StatusErrorNotFound, "no job %d", id)
}

// jobAnswer adds the attributes a job creation answers with.
func (c *call) jobAnswer(j *job) {
	c.jobs = append(c.jobs, c.jobAttributes(j, map[string]bool{"job-id": true, "job-uri": true, "job-state": true,
		"job-state-reasons": true, "job-state-message": true, "number-of-intervening-jobs": true}))
}

func (c *call) getJobAttributes() error {
	j, err := c.targetJob()
	if err != nil {
		return err
	}
	c.jobs = append(c.jobs, c.jobAttributes(j, c.requested("all")))
	return nil
}

func (c *call) getJobs() error {
	which := c.opString("which-jobs", "not-completed")
	if which != "completed" && which != "not-completed" {
		c.unsupport(find(c.req.Operation, "which-jobs"), "which-jobs")
		return fail(goipp.StatusErrorAttributesOrValues, "which-jobs %s is not supported", which)
	}
	limit := 0
	if v, ok := c.opValue("limit").(goipp.Integer); ok && v > 0 {
		limit = int(v)
	}
	mine := false
	if b, ok := c.opValue("my-jobs").(goipp.Boolean); ok {
		mine = bool(b)
	}
	user := c.opString("requesting-user-name", "")
	ra := c.requested("job-id", "job-uri")
	c.p.mu.Lock()
	var jobs []*job
	for _, j := range c.p.jobs {
		if j.terminal() != (which == "completed") || mine && j.user != user {
			continue
		}
		jobs = append(jobs, j)
	}
	c.p.mu.Unlock()
	if which == "completed" {
		slices.Reverse(jobs) // most recent first
	}
	if limit > 0 && len(jobs) > limit {
		jobs = jobs[:limit]
	}
	for _, j := range jobs {
		c.jobs = append(c.jobs, c.jobAttributes(j, ra))
	}
	return nil
}

func (c *call) cancelJob() error {
	j, err := c.targetJob()
	if err != nil {
		return err
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if j.terminal() {
		return fail(goipp.StatusErrorNotPossible, "job %d is already finished", j.id)
	}
	c.p.finishLocked(j, stateCanceled, "job-canceled-by-user")
	c.p.signal()
	return nil
}

// jobAttributes returns a job's attributes, as filtered by ra ("all",
// "job-description", "job-template" or names).
func (c *call) jobAttributes(j *job, ra map[string]bool) goipp.Attributes {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	all := ra["all"]
	want := func(name string, template bool) bool {
		return ra[name] || all || template && ra["job-template"] || !template && ra["job-description"]
	}
	attrs := goipp.Attributes{}
	add := func(name string, tag goipp.Tag, v goipp.Value) {
		if want(name, false) {
			attrs.Add(goipp.MakeAttr(name, tag, v))
		}
	}
	noValue := goipp.Void{}
	when := func(name string, t time.Time) {
		if t.IsZero() {
			add("time-at-"+name, goipp.TagNoValue, noValue)
			add("date-time-at-"+name, goipp.TagNoValue, noValue)
			return
		}
		add("time-at-"+name, goipp.TagInteger, goipp.Integer(p.upTime(t)))
		add("date-time-at-"+name, goipp.TagDateTime, goipp.Time{Time: t})
	}
	add("job-id", goipp.TagInteger, goipp.Integer(j.id))
	add("job-uri", goipp.TagURI, goipp.String(fmt.Sprintf("%s/%d", c.base, j.id)))
	add("job-printer-uri", goipp.TagURI, goipp.String(c.base))
	add("job-uuid", goipp.TagURI, goipp.String(j.uuid))
	add("job-name", goipp.TagName, goipp.String(j.name))
	add("job-originating-user-name", goipp.TagName, goipp.String(j.user))
	add("job-state", goipp.TagEnum, goipp.Integer(j.state))
	if want("job-state-reasons", false) {
		reasons := j.reasons
		if len(reasons) == 0 {
			reasons = []string{"none"}
		}
		vals := make([]goipp.Value, len(reasons))
		for i, r := range reasons {
			vals[i] = goipp.String(r)
		}
		attrs.Add(goipp.MakeAttr("job-state-reasons", goipp.TagKeyword, vals[0], vals[1:]...))
	}
	add("job-state-message", goipp.TagText, goipp.String(stateMessage(j.state)))
	add("job-printer-up-time", goipp.TagInteger, goipp.Integer(p.upTime(p.clock.Now())))
	when("creation", j.created)
	when("processing", j.processing)
	when("completed", j.completed)
	if j.state < stateProcessing {
		n := 0
		for _, o := range p.jobs {
			if o == j {
				break
			}
			if !o.terminal() && o.hasDoc {
				n++
			}
		}
		add("number-of-intervening-jobs", goipp.TagInteger, goipp.Integer(n))
	}
	if j.hasDoc {
		add("number-of-documents", goipp.TagInteger, goipp.Integer(1))
		add("document-format", goipp.TagMimeType, goipp.String(j.format))
		add("job-k-octets", goipp.TagInteger, goipp.Integer((j.bytes+1023)/1024))
		add("job-impressions", goipp.TagInteger, goipp.Integer(j.impressions))
		add("job-media-sheets", goipp.TagInteger, goipp.Integer(j.sheets))
	} else {
		add("number-of-documents", goipp.TagInteger, goipp.Integer(0))
	}
	add("job-impressions-completed", goipp.TagInteger, goipp.Integer(j.impressionsCompleted))
	add("job-media-sheets-completed", goipp.TagInteger, goipp.Integer(j.sheetsCompleted))
	have := map[string]bool{}
	for _, a := range attrs {
		have[a.Name] = true
	}
	for _, a := range j.template {
		if want(a.Name, true) && !have[a.Name] {
			attrs.Add(a)
		}
	}
	return attrs
}

func stateMessage(state int) string {
	switch state {
	case statePending:
		return "Job pending."
	case stateHeld:
		return "Job incoming."
	case stateProcessing:
		return "Job printing."
	case stateStopped:
		return "Job stopped."
	case stateCanceled:
		return "Job canceled."
	case stateAborted:
		return "Job aborted."
	}
	return "Job completed."
}

// find returns the values of the named attribute, or nil.
func find(attrs goipp.Attributes, name string) goipp.Values {
	for _, a := range attrs {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}

// sniff guesses a document's format from its first bytes.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "application/pdf"
	case bytes.HasPrefix(head, []byte("RaS2")):
		return "image/pwg-raster"
	case bytes.HasPrefix(head, []byte("UNIRAST\x00")):
		return "image/urf"
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}):
		return "image/jpeg"
	case bytes.HasPrefix(head, []byte("%!")):
		return "application/postscript"
	}
	return "application/octet-stream"
}
