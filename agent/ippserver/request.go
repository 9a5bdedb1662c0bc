package ippserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/OpenPrinting/goipp"
)

// call is one IPP request being answered.
type call struct {
	s      *Server
	r      *http.Request
	req    *goipp.Message
	op     goipp.Op
	attrs  map[string]goipp.Attribute // operation attributes by name
	job    goipp.Attributes           // the job attributes group, if any
	doc    *bufio.Reader              // what follows the IPP message: the document
	header int64                      // bytes of the IPP message
	uri    string                     // printer-uri-supported for this client
	user   string                     // requesting-user-name, or ""
	client string                     // the client's address

	unsupported goipp.Attributes // returned in the unsupported-attributes group
}

// response is what a handler answers: a status, a message for people, and
// the groups that follow the operation (and unsupported) groups.
type response struct {
	status  goipp.Status
	message string
	groups  goipp.Groups
}

func fail(st goipp.Status, format string, args ...any) *response {
	return &response{status: st, message: fmt.Sprintf(format, args...)}
}

func ok(groups ...goipp.Group) *response {
	return &response{status: goipp.StatusOk, groups: groups}
}

// headerReader bounds the IPP message read before the document.
type headerReader struct {
	r    *bufio.Reader
	left int64
	n    int64
	over bool
}

var errHeaderTooLarge = errors.New("IPP attributes too large")

func (h *headerReader) Read(p []byte) (int, error) {
	if h.left <= 0 {
		h.over = true
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	h.n += int64(n)
	return n, err
}

// maxDrainBytes bounds what is read and discarded of a refused oversized
// document before the refusal is sent.
const maxDrainBytes = 8 << 20

// serveIPP reads an IPP request and answers it.
func (s *Server) serveIPP(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != goipp.ContentType {
		http.Error(w, "IPP requests are posted as application/ipp", http.StatusUnsupportedMediaType)
		return
	}
	br := bufio.NewReaderSize(r.Body, 32<<10)
	hr := &headerReader{r: br, left: MaxHeaderBytes}
	var req goipp.Message
	err := req.Decode(hr)
	if hr.n < 8 {
		http.Error(w, "truncated IPP request", http.StatusBadRequest)
		return
	}
	c := &call{
		s: s, r: r, req: &req, op: goipp.Op(req.Code), doc: br, header: hr.n,
		uri: printerURI(r), client: clientIP(r),
	}
	var resp *response
	switch major := req.Version.Major(); {
	case major < 1 || major > 2:
		resp = fail(goipp.StatusErrorVersionNotSupported, "IPP version %s is not supported (1.1 and 2.0 are)", req.Version)
	case hr.over:
		resp = fail(goipp.StatusErrorRequestEntity, "the request's attributes exceed %d KiB", MaxHeaderBytes>>10)
	case err != nil:
		resp = fail(goipp.StatusErrorBadRequest, "malformed IPP request: %v", err)
	default:
		resp = s.handle(c)
	}
	if resp.status == goipp.StatusErrorRequestEntity {
		// The client is probably still sending the document: read the
		// rest, within a bound, so that it gets this answer rather than
		// a connection reset in the middle of its upload.
		io.CopyN(io.Discard, br, maxDrainBytes)
	}
	data := c.encode(resp)
	s.log.Debug("ipp", "op", c.op.String(), "status", resp.status.String(), "client", c.client)
	w.Header().Set("Content-Type", goipp.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// encode returns the response message. Should it not encode (an echoed
// value too long, say), a bare internal-error response is returned.
func (c *call) encode(resp *response) []byte {
	st := resp.status
	if st == goipp.StatusOk && len(c.unsupported) > 0 {
		st = goipp.StatusOkIgnoredOrSubstituted
	}
	m := goipp.NewResponse(c.version(), st, c.req.RequestID)
	op := goipp.Attributes{
		goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")),
		goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")),
	}
	if resp.message != "" {
		op.Add(goipp.MakeAttr("status-message", goipp.TagText, goipp.String(truncate(resp.message, 255))))
	}
	m.Groups = goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: op}}
	if len(c.unsupported) > 0 {
		m.Groups = append(m.Groups, goipp.Group{Tag: goipp.TagUnsupportedGroup, Attrs: c.unsupported})
	}
	m.Groups = append(m.Groups, resp.groups...)
	data, err := m.EncodeBytes()
	if err == nil {
		return data
	}
	c.s.log.Error("ipp: cannot encode a response", "op", c.op.String(), "err", err)
	m.Code = goipp.Code(goipp.StatusErrorInternal)
	m.Groups = m.Groups[:1]
	m.Groups[0].Attrs = op[:2]
	data, _ = m.EncodeBytes()
	return data
}

// version is the version of the response: the request's, or the nearest
// supported one when the request's is not supported.
func (c *call) version() goipp.Version {
	v := c.req.Version
	switch {
	case v.Major() < 1:
		return goipp.MakeVersion(1, 1)
	case v.Major() > 2:
		return goipp.MakeVersion(2, 0)
	}
	return v
}

// handle checks what every well-formed request of a supported version must
// have and runs the operation.
func (s *Server) handle(c *call) *response {
	if c.req.RequestID == 0 || c.req.RequestID > math.MaxInt32 {
		return fail(goipp.StatusErrorBadRequest, "request-id must be from 1 to 2147483647")
	}
	if resp := c.checkGroups(); resp != nil {
		return resp
	}
	if resp := c.checkCharset(); resp != nil {
		return resp
	}
	op, found := operations[c.op]
	if !found {
		return fail(goipp.StatusErrorOperationNotSupported, "operation %s is not supported", c.op)
	}
	if resp := c.checkTarget(op.job); resp != nil {
		return resp
	}
	for _, a := range c.req.Operation {
		if !op.accepts(a.Name) {
			c.unsupportedAttr(a.Name)
		}
	}
	if resp := c.readUser(); resp != nil {
		return resp
	}
	return op.run(s, c)
}

// checkGroups checks the order and uniqueness of groups and attributes
// (RFC 8011 section 4.1.4 and 4.1.3).
func (c *call) checkGroups() *response {
	groups := c.req.Groups
	if len(groups) == 0 || groups[0].Tag != goipp.TagOperationGroup {
		return fail(goipp.StatusErrorBadRequest, "the request has no operation attributes")
	}
	seen := map[goipp.Tag]bool{}
	for _, g := range groups {
		switch {
		case seen[g.Tag]:
			return fail(goipp.StatusErrorBadRequest, "the request repeats the group %s", g.Tag)
		case g.Tag != goipp.TagOperationGroup && g.Tag != goipp.TagJobGroup:
			return fail(goipp.StatusErrorBadRequest, "unexpected group %s in a request", g.Tag)
		}
		seen[g.Tag] = true
		names := make(map[string]bool, len(g.Attrs))
		for _, a := range g.Attrs {
			if names[a.Name] {
				return fail(goipp.StatusErrorBadRequest, "the request repeats the attribute %q", truncate(a.Name, 64))
			}
			names[a.Name] = true
		}
	}
	c.attrs = make(map[string]goipp.Attribute, len(c.req.Operation))
	for _, a := range c.req.Operation {
		c.attrs[a.Name] = a
	}
	c.job = c.req.Job
	return nil
}

// checkCharset checks the first two operation attributes (RFC 8011 section
// 4.1.4): attributes-charset and attributes-natural-language.
func (c *call) checkCharset() *response {
	op := c.req.Operation
	if len(op) < 2 || op[0].Name != "attributes-charset" || op[1].Name != "attributes-natural-language" {
		return fail(goipp.StatusErrorBadRequest, "attributes-charset and attributes-natural-language must come first")
	}
	cs, lang := op[0], op[1]
	if len(cs.Values) != 1 || cs.Values[0].T != goipp.TagCharset {
		return c.badSyntax(cs)
	}
	if len(lang.Values) != 1 || lang.Values[0].T != goipp.TagLanguage || !validLanguage(lang.Values[0].V.String()) {
		return c.badSyntax(lang)
	}
	switch strings.ToLower(cs.Values[0].V.String()) {
	case "utf-8", "us-ascii":
	default:
		c.addUnsupported(echo(cs))
		return fail(goipp.StatusErrorCharset, "charset %q is not supported (utf-8 is)", truncate(cs.Values[0].V.String(), 64))
	}
	return nil
}

// validLanguage checks the syntax of a natural language tag (RFC 5646).
func validLanguage(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, part := range strings.Split(s, "-") {
		if part == "" || len(part) > 8 || !validChars(part, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
			return false
		}
	}
	return true
}

// checkTarget checks printer-uri, or job-uri for job operations.
func (c *call) checkTarget(jobOp bool) *response {
	if a, found := c.attrs["printer-uri"]; found {
		if len(a.Values) != 1 || a.Values[0].T != goipp.TagURI {
			return c.badSyntax(a)
		}
		return nil
	}
	if a, found := c.attrs["job-uri"]; found && jobOp {
		if len(a.Values) != 1 || a.Values[0].T != goipp.TagURI {
			return c.badSyntax(a)
		}
		return nil
	}
	return fail(goipp.StatusErrorBadRequest, "printer-uri is missing")
}

// readUser reads requesting-user-name.
func (c *call) readUser() *response {
	a, found := c.attrs["requesting-user-name"]
	if !found {
		return nil
	}
	v, resp := c.nameValue(a)
	if resp != nil {
		return resp
	}
	c.user = v
	return nil
}

// badSyntax answers a request whose attribute has the wrong syntax or count.
func (c *call) badSyntax(a goipp.Attribute) *response {
	c.addUnsupported(echo(a))
	return fail(goipp.StatusErrorBadRequest, "attribute %q has the wrong syntax or number of values", truncate(a.Name, 64))
}

// unsupportedAttr records an attribute that the printer ignores.
func (c *call) unsupportedAttr(name string) {
	c.addUnsupported(goipp.MakeAttr(truncate(name, 255), goipp.TagUnsupportedValue, goipp.Void{}))
}

// unsupportedValue records an attribute whose values are not supported.
func (c *call) unsupportedValue(a goipp.Attribute) {
	c.addUnsupported(echo(a))
}

// addUnsupported adds a to the unsupported group, replacing an attribute of
// the same name.
func (c *call) addUnsupported(a goipp.Attribute) {
	for i := range c.unsupported {
		if c.unsupported[i].Name == a.Name {
			c.unsupported[i] = a
			return
		}
	}
	c.unsupported.Add(a)
}

// echo returns a as it can be returned in a response: values too long to
// be worth echoing are replaced by the out-of-band "unsupported".
func echo(a goipp.Attribute) goipp.Attribute {
	out := goipp.Attribute{Name: truncate(a.Name, 255)}
	size := 0
	for _, v := range a.Values {
		size += len(v.V.String())
	}
	if size > 1024 || len(a.Values) > 64 || len(a.Values) == 0 {
		out.Values.Add(goipp.TagUnsupportedValue, goipp.Void{})
		return out
	}
	out.Values = a.Values
	return out
}

// single returns the one value of an operation attribute, checking its tag.
func (c *call) single(name string, tags ...goipp.Tag) (goipp.Value, bool, *response) {
	a, found := c.attrs[name]
	if !found {
		return nil, false, nil
	}
	if len(a.Values) != 1 || !tagIn(a.Values[0].T, tags) {
		return nil, false, c.badSyntax(a)
	}
	return a.Values[0].V, true, nil
}

func tagIn(t goipp.Tag, tags []goipp.Tag) bool {
	for _, x := range tags {
		if t == x {
			return true
		}
	}
	return false
}

// nameValue returns the value of a name attribute (with or without a
// language), made valid UTF-8 and at most 255 bytes.
func (c *call) nameValue(a goipp.Attribute) (string, *response) {
	if len(a.Values) != 1 {
		return "", c.badSyntax(a)
	}
	switch v := a.Values[0].V.(type) {
	case goipp.String:
		if a.Values[0].T == goipp.TagName {
			return truncate(string(v), 255), nil
		}
	case goipp.TextWithLang:
		if a.Values[0].T == goipp.TagNameLang {
			return truncate(v.Text, 255), nil
		}
	}
	return "", c.badSyntax(a)
}

// name returns an operation attribute of syntax name, or "".
func (c *call) name(attr string) (string, *response) {
	a, found := c.attrs[attr]
	if !found {
		return "", nil
	}
	return c.nameValue(a)
}

// boolean returns an operation attribute of syntax boolean, or def.
func (c *call) boolean(attr string, def bool) (bool, *response) {
	v, found, resp := c.single(attr, goipp.TagBoolean)
	if !found {
		return def, resp
	}
	return bool(v.(goipp.Boolean)), nil
}

// integer returns an operation attribute of syntax integer, which must lie
// in [lo, hi], or def.
func (c *call) integer(attr string, lo, hi int, def int) (int, *response) {
	v, found, resp := c.single(attr, goipp.TagInteger)
	if !found {
		return def, resp
	}
	n := int(v.(goipp.Integer))
	if n < lo || n > hi {
		c.unsupportedValue(c.attrs[attr])
		return 0, fail(goipp.StatusErrorAttributesOrValues, "%s must be from %d to %d", attr, lo, hi)
	}
	return n, nil
}

// keyword returns an operation attribute of syntax keyword, or def.
func (c *call) keyword(attr, def string) (string, *response) {
	v, found, resp := c.single(attr, goipp.TagKeyword)
	if !found {
		return def, resp
	}
	return v.String(), nil
}

// requested returns the requested-attributes operation attribute, or nil.
func (c *call) requested() ([]string, *response) {
	a, found := c.attrs["requested-attributes"]
	if !found {
		return nil, nil
	}
	if len(a.Values) == 0 || len(a.Values) > 1024 {
		return nil, c.badSyntax(a)
	}
	names := make([]string, 0, len(a.Values))
	for _, v := range a.Values {
		if v.T != goipp.TagKeyword {
			return nil, c.badSyntax(a)
		}
		names = append(names, v.V.String())
	}
	return names, nil
}

// jobID returns the target job: job-id, or the id at the end of job-uri.
func (c *call) jobID() (int, *response) {
	if a, found := c.attrs["job-id"]; found {
		if len(a.Values) != 1 || a.Values[0].T != goipp.TagInteger {
			return 0, c.badSyntax(a)
		}
		id := int(a.Values[0].V.(goipp.Integer))
		if id < 1 {
			c.unsupportedValue(a)
			return 0, fail(goipp.StatusErrorNotFound, "job %d does not exist", id)
		}
		return id, nil
	}
	if a, found := c.attrs["job-uri"]; found {
		uri := a.Values[0].V.String()
		i := strings.LastIndex(uri, Path+"/")
		if i >= 0 {
			if id, err := strconv.Atoi(uri[i+len(Path)+1:]); err == nil && id > 0 {
				return id, nil
			}
		}
		c.unsupportedValue(a)
		return 0, fail(goipp.StatusErrorNotFound, "%s is not a job of this printer", truncate(uri, 128))
	}
	return 0, fail(goipp.StatusErrorBadRequest, "job-id is missing")
}

// truncate returns s made valid UTF-8 and cut to at most n bytes on a
// character boundary.
func truncate(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
