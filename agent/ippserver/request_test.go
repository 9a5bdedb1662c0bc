package ippserver

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// Malformed requests get a clear IPP error (RFC 8011 section 4.1).
func TestRequestValidation(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	charset := goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8"))
	lang := goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en"))
	uri := goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(e.uri))
	raw := func(version goipp.Version, id uint32, op goipp.Op, attrs ...goipp.Attribute) *goipp.Message {
		m := goipp.NewRequest(version, op, id)
		m.Operation = attrs
		return m
	}
	v20, v11 := goipp.MakeVersion(2, 0), goipp.MakeVersion(1, 1)
	gpa := goipp.OpGetPrinterAttributes
	for _, c := range []struct {
		what string
		req  *goipp.Message
		want goipp.Status
	}{
		{"IPP/1.1", raw(v11, 1, gpa, charset, lang, uri), goipp.StatusOk},
		{"IPP/1.0", raw(goipp.MakeVersion(1, 0), 1, gpa, charset, lang, uri), goipp.StatusOk},
		{"IPP/0.0", raw(goipp.MakeVersion(0, 0), 1, gpa, charset, lang, uri), goipp.StatusErrorVersionNotSupported},
		{"IPP/3.0", raw(goipp.MakeVersion(3, 0), 1, gpa, charset, lang, uri), goipp.StatusErrorVersionNotSupported},
		{"request-id 0", raw(v20, 0, gpa, charset, lang, uri), goipp.StatusErrorBadRequest},
		{"request-id 2^31", raw(v20, 1<<31, gpa, charset, lang, uri), goipp.StatusErrorBadRequest},
		{"no attributes", raw(v20, 1, gpa), goipp.StatusErrorBadRequest},
		{"no language", raw(v20, 1, gpa, charset, uri), goipp.StatusErrorBadRequest},
		{"no charset", raw(v20, 1, gpa, lang, uri), goipp.StatusErrorBadRequest},
		{"language first", raw(v20, 1, gpa, lang, charset, uri), goipp.StatusErrorBadRequest},
		{"no printer-uri", raw(v20, 1, gpa, charset, lang), goipp.StatusErrorBadRequest},
		{"printer-uri as text", raw(v20, 1, gpa, charset, lang, goipp.MakeAttr("printer-uri", goipp.TagText, goipp.String(e.uri))), goipp.StatusErrorBadRequest},
		{"latin-1", raw(v20, 1, gpa, goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("iso-8859-1")), lang, uri), goipp.StatusErrorCharset},
		{"bad language", raw(v20, 1, gpa, charset, goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("fr_FR!")), uri), goipp.StatusErrorBadRequest},
		{"two charsets", raw(v20, 1, gpa, goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8"), goipp.String("utf-8")), lang, uri), goipp.StatusErrorBadRequest},
		{"repeated attribute", raw(v20, 1, gpa, charset, lang, uri, uri), goipp.StatusErrorBadRequest},
		{"Pause-Printer", raw(v20, 1, goipp.OpPausePrinter, charset, lang, uri), goipp.StatusErrorOperationNotSupported},
		{"Print-URI", raw(v20, 1, goipp.OpPrintURI, charset, lang, uri), goipp.StatusErrorOperationNotSupported},
		{"unknown operation attribute", raw(v20, 1, gpa, charset, lang, uri, kw("frobnicate", "yes")), goipp.StatusOkIgnoredOrSubstituted},
		{"requested-attributes as names", raw(v20, 1, gpa, charset, lang, uri, nameAttr("requested-attributes", "all")), goipp.StatusErrorBadRequest},
		{"job-id as text", raw(v20, 1, goipp.OpGetJobAttributes, charset, lang, uri, goipp.MakeAttr("job-id", goipp.TagText, goipp.String("1"))), goipp.StatusErrorBadRequest},
		{"user name as keyword", raw(v20, 1, gpa, charset, lang, uri, kw("requesting-user-name", "x")), goipp.StatusErrorBadRequest},
		{"Get-Printer-Attributes for text/plain", raw(v20, 1, gpa, charset, lang, uri, mimeAttr("text/plain")), goipp.StatusErrorDocumentFormatNotSupported},
	} {
		resp := e.do(c.req, nil)
		if status(resp) != c.want {
			t.Errorf("%s: %s, want %s (%s)", c.what, status(resp), c.want, str(resp.Operation, "status-message"))
		}
		if c.want >= goipp.StatusErrorBadRequest && (str(resp.Operation, "status-message") == "" || len(resp.Printer) > 0) {
			t.Errorf("%s: error without a message, or with printer attributes", c.what)
		}
	}
	// A job group is not a place for printer attributes: groups other than
	// operation and job are refused.
	m := raw(v20, 1, gpa, charset, lang, uri)
	m.Groups = goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: m.Operation}, {Tag: goipp.TagPrinterGroup, Attrs: goipp.Attributes{kw("x", "y")}}}
	wantStatus(t, "printer group in a request", e.do(m, nil), goipp.StatusErrorBadRequest)
}

// The attributes before the document are bounded.
func TestHeaderLimit(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	req := e.request(goipp.OpPrintJob)
	for i := range 5 {
		req.Operation.Add(goipp.MakeAttr("x-padding-"+itoa(i), goipp.TagText, goipp.String(strings.Repeat("x", 20000))))
	}
	resp := e.do(req, pdf)
	wantStatus(t, "100 KB of attributes", resp, goipp.StatusErrorRequestEntity)
	if len(e.jobs()) != 0 {
		t.Fatal("a job was made")
	}
}

// A request cut anywhere leaves no job and gets an IPP or HTTP error.
func TestTruncatedRequests(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	full, _ := withJob(e.request(goipp.OpPrintJob, nameAttr("job-name", "x"), mimeAttr("application/pdf")), intAttr("copies", 1)).EncodeBytes()
	header := len(full)
	full = append(full, pdf...)
	for cut := 0; cut < len(full); cut += 7 {
		if cut >= header && cut < len(full)-20 {
			// A cut document is a shorter document; the queue cannot tell,
			// and prints what came. Past the header, only a cut of the
			// connection is an error: see TestDocumentCutShort.
			continue
		}
		r := httptest.NewRequest(http.MethodPost, "http://relais.local:631"+Path, bytes.NewReader(full[:cut]))
		r.Header.Set("Content-Type", goipp.ContentType)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		switch {
		case rec.Code == http.StatusBadRequest && cut < 8:
		case rec.Code == http.StatusOK:
			var m goipp.Message
			if err := m.DecodeBytes(rec.Body.Bytes()); err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			if cut < header && status(&m) == goipp.StatusOk {
				t.Fatalf("cut at %d in the attributes: successful", cut)
			}
		default:
			t.Fatalf("cut at %d: HTTP %d", cut, rec.Code)
		}
	}
	for _, j := range e.jobs() {
		if !bytes.Equal(e.document(j.ID), pdf[:len(e.document(j.ID))]) {
			t.Fatalf("job %d holds other data", j.ID)
		}
	}
}

// A connection lost in the middle of the document leaves no job.
func TestDocumentCutShort(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	head, _ := e.request(goipp.OpPrintJob, mimeAttr("application/pdf")).EncodeBytes()
	r := httptest.NewRequest(http.MethodPost, "http://relais.local:631"+Path, &failingReader{data: append(head, pdf[:100]...)})
	r.Header.Set("Content-Type", goipp.ContentType)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	var m goipp.Message
	if err := m.DecodeBytes(rec.Body.Bytes()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "Print-Job cut short", &m, goipp.StatusErrorBadRequest)
	if len(e.jobs()) != 0 {
		t.Fatal("a job was left")
	}
}

// failingReader returns its data, then an error as a broken connection does.
type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errConnectionReset
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errConnectionReset = errors.New("read tcp: connection reset by peer")
