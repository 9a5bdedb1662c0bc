package peertest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
)

// ippRequest returns a request to the printer with the attributes every
// request carries.
func ippRequest(uri string, op goipp.Op) *goipp.Message {
	m := goipp.NewRequest(goipp.MakeVersion(2, 0), op, 1)
	m.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(uri)))
	m.Operation.Add(goipp.MakeAttr("requesting-user-name", goipp.TagName, goipp.String("relais")))
	return m
}

func httpTarget(uri string) string {
	return "http://" + strings.TrimPrefix(uri, "ipp://")
}

// printPDF sends doc with Print-Job and returns the job id.
func printPDF(t *testing.T, uri string, doc []byte) int {
	t.Helper()
	req := ippRequest(uri, goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttr("job-name", goipp.TagName, goipp.String("peertest")))
	req.Operation.Add(goipp.MakeAttr("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	head, err := req.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	// The document follows the message on the wire.
	resp, err := postIPPBody(httpTarget(uri), append(head, doc...))
	if err != nil {
		t.Fatalf("Print-Job: %v", err)
	}
	return int(attr(t, resp.Job, "job-id").(goipp.Integer))
}

func attr(t *testing.T, attrs goipp.Attributes, name string) goipp.Value {
	t.Helper()
	for _, a := range attrs {
		if a.Name == name && len(a.Values) > 0 {
			return a.Values[0].V
		}
	}
	t.Fatalf("no %s in %v", name, attrs)
	return nil
}

func strs(attrs goipp.Attributes, name string) []string {
	for _, a := range attrs {
		if a.Name == name {
			var s []string
			for _, v := range a.Values {
				s = append(s, v.V.String())
			}
			return s
		}
	}
	return nil
}

// jobAttrs returns a job's attributes.
func jobAttrs(t *testing.T, uri string, id int) goipp.Attributes {
	t.Helper()
	req := ippRequest(uri, goipp.OpGetJobAttributes)
	req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
	resp, err := postIPP(httpTarget(uri), req)
	if err != nil {
		t.Fatalf("Get-Job-Attributes %d: %v", id, err)
	}
	return resp.Job
}

// waitJobState polls the job until it reaches state, for at most 20 s.
func waitJobState(t *testing.T, uri string, id, state int) goipp.Attributes {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := jobAttrs(t, uri, id)
		got := int(attr(t, a, "job-state").(goipp.Integer))
		if got == state {
			return a
		}
		if got >= 7 || time.Now().After(deadline) {
			t.Fatalf("job %d: state %d, want %d (%v)", id, got, state, a)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func printerReasons(t *testing.T, p *IPPEve) []string {
	t.Helper()
	a, err := p.attributes("printer-state-reasons")
	if err != nil {
		t.Fatal(err)
	}
	return strs(a, "printer-state-reasons")
}

// waitReason polls the printer until it reports reason, for at most 20 s.
func waitReason(t *testing.T, p *IPPEve, reason string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !hasReason(printerReasons(t, p), reason) {
		if time.Now().After(deadline) {
			t.Fatalf("printer does not report %s: %v", reason, printerReasons(t, p))
		}
		<-time.After(20 * time.Millisecond)
	}
}

func hasReason(reasons []string, r string) bool {
	return slices.ContainsFunc(reasons, func(s string) bool { return strings.HasPrefix(s, r) })
}

func TestIPPEvePrinterKeepsWhatItPrints(t *testing.T) {
	t.Parallel()
	p := IPPEvePrinter(t, IPPEveOptions{Duplex: true, Make: "Relais", Model: "Peer"})
	a, err := p.attributes("sides-supported", "printer-make-and-model", "printer-uri-supported")
	if err != nil {
		t.Fatal(err)
	}
	if sides := strs(a, "sides-supported"); !slices.Contains(sides, "two-sided-long-edge") {
		t.Errorf("sides-supported = %v, want two-sided with -2", sides)
	}
	if mm := strs(a, "printer-make-and-model"); len(mm) != 1 || mm[0] != "Relais Peer" {
		t.Errorf("printer-make-and-model = %v", mm)
	}
	doc := PDF(3)
	id := printPDF(t, p.URI, doc)
	ja := waitJobState(t, p.URI, id, 9)
	if n := attr(t, ja, "job-impressions-completed"); n != goipp.Integer(3) {
		t.Errorf("job-impressions-completed = %v, want 3", n)
	}
	docs := p.WaitDocuments(t, 1, 10*time.Second)
	if len(docs) != 1 || docs[0].JobID != id || docs[0].Run != 1 {
		t.Fatalf("documents = %+v", docs)
	}
	got, err := os.ReadFile(docs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, doc) {
		t.Errorf("kept document differs from the one sent (%d bytes, sent %d)", len(got), len(doc))
	}
}

func TestIPPEveMediaEmptyHoldsJobsUntilRefilled(t *testing.T) {
	t.Parallel()
	p := IPPEvePrinter(t, IPPEveOptions{})
	if r := printerReasons(t, p); hasReason(r, "media-empty") {
		t.Fatalf("fresh printer reports %v", r)
	}
	p.SetMediaEmpty(t, true)
	if r := printerReasons(t, p); !hasReason(r, "media-empty") {
		t.Fatalf("idle printer without paper reports %v, want media-empty", r)
	}
	id := printPDF(t, p.URI, PDF(1))
	waitJobState(t, p.URI, id, 5)
	waitReason(t, p, "media-needed")
	if r := printerReasons(t, p); !hasReason(r, "media-empty") {
		t.Errorf("printer holding a job without paper reports %v", r)
	}
	if docs := p.Documents(t); len(docs) != 1 {
		t.Errorf("the held job's document is not kept: %v", docs)
	}
	p.SetMediaEmpty(t, false)
	waitJobState(t, p.URI, id, 9)
	if r := printerReasons(t, p); hasReason(r, "media-empty") || hasReason(r, "media-needed") {
		t.Errorf("refilled printer reports %v", r)
	}
}

func TestIPPEveJamAndStopRestart(t *testing.T) {
	t.Parallel()
	p := IPPEvePrinter(t, IPPEveOptions{Formats: []string{"application/pdf"}})
	p.SetJammed(t, true)
	id := printPDF(t, p.URI, PDF(2))
	p.WaitStalled(t, 20*time.Second)
	if r := printerReasons(t, p); !hasReason(r, "media-jam") {
		t.Errorf("jammed printer reports %v", r)
	}

	// Switched off with the job in it; then no one answers on its port.
	p.Stop(t)
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port)); err == nil {
		c.Close()
		t.Fatal("stopped printer still accepts connections")
	}
	// Still jammed after the restart, as a real jam would be.
	p.Restart(t)
	id2 := printPDF(t, p.URI, PDF(1))
	if id2 != 1 {
		t.Errorf("first job after restart has id %d; ippeveprinter restarts at 1", id2)
	}
	p.WaitStalled(t, 20*time.Second)
	p.SetJammed(t, false)
	waitJobState(t, p.URI, id2, 9)
	docs := p.Documents(t)
	if len(docs) != 2 || docs[0] != (Document{Run: 1, JobID: id, Path: docs[0].Path}) || docs[1].Run != 2 || docs[1].JobID != 1 {
		t.Errorf("documents = %+v", docs)
	}
}

func TestPDFPageObjects(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		b := PDF(n)
		want := max(n, 1)
		if got := bytes.Count(b, []byte("/Type /Page ")); got != want {
			t.Errorf("PDF(%d) has %d page objects", n, got)
		}
		if !bytes.HasPrefix(b, []byte("%PDF-1.4")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) {
			t.Errorf("PDF(%d) is not framed as a PDF", n)
		}
	}
}

func TestIPPEveDocumentsLeaveOutArrivingOnes(t *testing.T) {
	t.Parallel()
	p := IPPEvePrinter(t, IPPEveOptions{})
	req := ippRequest(p.URI, goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttr("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	head, err := req.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	doc := PDF(2)
	body, w := io.Pipe()
	hreq, err := http.NewRequest(http.MethodPost, httpTarget(p.URI), body)
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", goipp.ContentType)
	answered := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hreq)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	if _, err := w.Write(append(head, doc[:100]...)); err != nil {
		t.Fatal(err)
	}
	// Once ippeveprinter has created the file, the document is arriving.
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := os.ReadDir(filepath.Join(p.SpoolDir, "run-1"))
		if len(files) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ippeveprinter created no file")
		}
		<-time.After(10 * time.Millisecond)
	}
	if docs := p.Documents(t); len(docs) != 0 {
		t.Errorf("a document still arriving is listed: %v", docs)
	}
	w.Write(doc[100:])
	w.Close()
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	docs := p.WaitDocuments(t, 1, 10*time.Second)
	if got, _ := os.ReadFile(docs[0].Path); !bytes.Equal(got, doc) {
		t.Error("the complete document differs from the one sent")
	}
}
