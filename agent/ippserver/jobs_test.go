package ippserver

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

func TestPrintJob(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	req := withJob(e.request(goipp.OpPrintJob, nameAttr("requesting-user-name", "aidant"), nameAttr("job-name", "Attestation CAF"),
		mimeAttr("application/pdf")),
		intAttr("copies", 1), kw("media", "iso_a4_210x297mm"), kw("print-color-mode", "monochrome"))
	resp := e.do(req, pdf)
	wantStatus(t, "Print-Job", resp, goipp.StatusOk)
	id := integerOf(resp.Job, "job-id")
	if id < 1 || str(resp.Job, "job-uri") != e.uri+"/"+itoa(id) || integerOf(resp.Job, "job-state") != int(printq.Pending) ||
		len(find(resp.Job, "job-state-reasons")) == 0 {
		t.Fatalf("Print-Job answered %v", resp.Job)
	}
	j, ok := e.q.Job(id)
	if !ok {
		t.Fatal("no job in the queue")
	}
	if j.Name != "Attestation CAF" || j.User != "aidant" || j.Client != "127.0.0.1" || j.Format != "application/pdf" ||
		j.Source != api.SourcePC || j.Hold {
		t.Errorf("ticket %+v", j.Ticket)
	}
	if got := names(j.Template); !slices.Equal(got, []string{"copies", "media", "print-color-mode"}) {
		t.Errorf("template %v", got)
	}
	if !bytes.Equal(e.document(id), pdf) {
		t.Error("the spooled document differs from the one sent")
	}
}

// application/octet-stream documents are recognized from their first bytes.
func TestPrintJobRecognizesTheFormat(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	for _, c := range []struct {
		doc    []byte
		format string
		status goipp.Status
	}{
		{pdf, "application/pdf", goipp.StatusOk},
		{jpegImage(t, 40, 30, false), "image/jpeg", goipp.StatusOk},
		{pwgRaster(288, 432, 150, "sgray_8", "na_index-4x6_4x6in", 1), "image/pwg-raster", goipp.StatusOk},
		{[]byte("UNIRAST\x00\x00\x00\x00\x01"), "", goipp.StatusErrorDocumentFormatNotSupported}, // no URF on this printer
		{[]byte("Hello, world\n"), "", goipp.StatusErrorDocumentFormatNotSupported},
		{[]byte("%P"), "", goipp.StatusErrorDocumentFormatNotSupported},
		{nil, "", goipp.StatusErrorBadRequest},
	} {
		before := len(e.jobs())
		for _, declared := range []bool{false, true} {
			req := e.request(goipp.OpPrintJob)
			if declared {
				req.Operation.Add(mimeAttr("application/octet-stream"))
			}
			resp := e.do(req, c.doc)
			wantStatus(t, "Print-Job of "+string(c.doc[:min(len(c.doc), 4)]), resp, c.status)
			if c.status != goipp.StatusOk {
				if len(e.jobs()) != before {
					t.Fatalf("a refused document left a job")
				}
				continue
			}
			j, _ := e.q.Job(integerOf(resp.Job, "job-id"))
			if j.Format != c.format {
				t.Errorf("format %q, want %q", j.Format, c.format)
			}
		}
	}
}

func TestPrintJobRefusesFormatsThePrinterCannotPrint(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	for _, f := range []string{"text/plain", "image/urf", "application/vnd.ms-excel"} {
		resp := e.do(e.request(goipp.OpPrintJob, mimeAttr(f)), []byte("data"))
		wantStatus(t, "Print-Job "+f, resp, goipp.StatusErrorDocumentFormatNotSupported)
		if str(resp.Unsupported, "document-format") != f {
			t.Errorf("unsupported group %v", resp.Unsupported)
		}
		resp = e.do(e.request(goipp.OpValidateJob, mimeAttr(f)), nil)
		wantStatus(t, "Validate-Job "+f, resp, goipp.StatusErrorDocumentFormatNotSupported)
	}
	// Formats compare without regard to case.
	wantStatus(t, "Print-Job Application/PDF", e.do(e.request(goipp.OpPrintJob, mimeAttr("Application/PDF")), pdf), goipp.StatusOk)
	if n := len(e.jobs()); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
}

func TestPrintJobTooLarge(t *testing.T) {
	e := newEnv(t, printq.Config{MaxJobBytes: 1000}, Config{MaxJobBytes: 1000})
	big := append(append([]byte{}, pdf...), bytes.Repeat([]byte("%%%%%%%%\n"), 200)...)
	// With Content-Length, the request is refused before the document is read.
	resp := e.do(e.request(goipp.OpPrintJob, mimeAttr("application/pdf")), big)
	wantStatus(t, "Print-Job with Content-Length", resp, goipp.StatusErrorRequestEntity)
	// Chunked, the queue finds it out.
	body, _ := e.request(goipp.OpPrintJob, mimeAttr("application/pdf")).EncodeBytes()
	hreq, _ := http.NewRequest(http.MethodPost, e.http.URL+Path, unsized(body, big))
	hreq.Header.Set("Content-Type", goipp.ContentType)
	hresp, err := e.http.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	var m goipp.Message
	if err := m.Decode(hresp.Body); err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	wantStatus(t, "chunked Print-Job", &m, goipp.StatusErrorRequestEntity)
	// Compressed, the limit applies to the document itself.
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(big)
	zw.Close()
	resp = e.do(e.request(goipp.OpPrintJob, mimeAttr("application/pdf"), kw("compression", "gzip")), z.Bytes())
	wantStatus(t, "gzip Print-Job", resp, goipp.StatusErrorRequestEntity)
	// So does an announced size.
	resp = e.do(e.request(goipp.OpPrintJob, intAttr("job-k-octets", 2)), pdf)
	wantStatus(t, "Print-Job of 2 k-octets", resp, goipp.StatusErrorRequestEntity)
	if n := len(e.jobs()); n != 0 {
		t.Fatalf("%d jobs left by documents too large", n)
	}
	wantStatus(t, "small Print-Job", e.do(e.request(goipp.OpPrintJob, mimeAttr("application/pdf")), pdf), goipp.StatusOk)
}

// unsized returns a reader of its arguments' concatenation whose length
// the HTTP client does not know, so that it is sent chunked.
func unsized(parts ...[]byte) *chunked {
	return &chunked{r: bytes.NewReader(bytes.Join(parts, nil))}
}

type chunked struct{ r *bytes.Reader }

func (c *chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestPrintJobCompressed(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	var gz, fl bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pdf)
	zw.Close()
	fw, _ := flate.NewWriter(&fl, flate.BestCompression)
	fw.Write(pdf)
	fw.Close()
	for comp, data := range map[string][]byte{"gzip": gz.Bytes(), "deflate": fl.Bytes()} {
		resp := e.do(e.request(goipp.OpPrintJob, kw("compression", comp)), data)
		wantStatus(t, "Print-Job "+comp, resp, goipp.StatusOk)
		id := integerOf(resp.Job, "job-id")
		if j, _ := e.q.Job(id); j.Format != "application/pdf" || !bytes.Equal(e.document(id), pdf) {
			t.Errorf("%s: job %+v, document not the PDF", comp, j)
		}
		// Cut short, the compressed data is an error and leaves no job.
		before := len(e.jobs())
		resp = e.do(e.request(goipp.OpPrintJob, mimeAttr("application/pdf"), kw("compression", comp)), data[:len(data)/2])
		wantStatus(t, "truncated "+comp, resp, goipp.StatusErrorCompressionError)
		if len(e.jobs()) != before {
			t.Errorf("truncated %s left a job", comp)
		}
	}
	resp := e.do(e.request(goipp.OpPrintJob, kw("compression", "compress")), pdf)
	wantStatus(t, "Print-Job compress", resp, goipp.StatusErrorCompressionNotSupported)
	resp = e.do(e.request(goipp.OpPrintJob, kw("compression", "gzip")), pdf)
	wantStatus(t, "Print-Job gzip of plain data", resp, goipp.StatusErrorCompressionError)
}

// Unsupported job template attributes are left out and listed, or refuse
// the job with ipp-attribute-fidelity.
func TestJobTemplateValidation(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	a4 := goipp.Collection{
		goipp.MakeAttr("media-size", goipp.TagBeginCollection, goipp.Collection{intAttr("x-dimension", 21000), intAttr("y-dimension", 29700)}),
		kw("media-source", "auto"),
		kw("media-color", "blue"), // not in media-col-supported
	}
	req := withJob(e.request(goipp.OpPrintJob),
		kw("sides", "two-sided-long-edge"), // the built-in set is one-sided
		goipp.MakeAttr("media-col", goipp.TagBeginCollection, a4),
		intAttr("job-priority", 50),
		goipp.MakeAttr("page-ranges", goipp.TagRange, goipp.Range{Lower: 1, Upper: 2}),
		goipp.MakeAttr("print-quality", goipp.TagEnum, goipp.Integer(4)),
		goipp.MakeAttr("copies", goipp.TagInteger, goipp.Integer(1)))
	resp := e.do(req, pdf)
	wantStatus(t, "Print-Job", resp, goipp.StatusOkIgnoredOrSubstituted)
	if str(resp.Unsupported, "sides") != "two-sided-long-edge" || find(resp.Unsupported, "job-priority") == nil ||
		find(resp.Unsupported, "page-ranges") == nil {
		t.Errorf("unsupported group %v", resp.Unsupported)
	}
	if col := find(resp.Unsupported, "media-col"); len(col) != 1 || len(col[0].V.(goipp.Collection)) != 1 {
		t.Errorf("unsupported media-col %v, want only media-color", col)
	}
	j, _ := e.q.Job(integerOf(resp.Job, "job-id"))
	if got := names(j.Template); !slices.Equal(got, []string{"media-col", "print-quality", "copies"}) {
		t.Errorf("template %v", got)
	}
	if col := find(j.Template, "media-col"); len(col) != 1 || len(col[0].V.(goipp.Collection)) != 2 {
		t.Errorf("forwarded media-col %v", col)
	}

	before := len(e.jobs())
	for _, refused := range []*goipp.Message{
		withJob(e.request(goipp.OpPrintJob, boolAttr("ipp-attribute-fidelity", true)), kw("sides", "two-sided-long-edge")),
		withJob(e.request(goipp.OpPrintJob, kw("job-mandatory-attributes", "sides")), kw("sides", "two-sided-long-edge")),
		withJob(e.request(goipp.OpCreateJob, boolAttr("ipp-attribute-fidelity", true)), intAttr("copies", 5)),
	} {
		resp := e.do(refused, pdf)
		wantStatus(t, "with fidelity", resp, goipp.StatusErrorAttributesOrValues)
	}
	if len(e.jobs()) != before {
		t.Fatal("a refused job was queued")
	}
	// Wrong syntax and bad values are unsupported too.
	for _, a := range []goipp.Attribute{
		kw("copies", "1"),
		intAttr("copies", 0),
		goipp.MakeAttr("print-quality", goipp.TagInteger, goipp.Integer(4)),
		kw("sides", "one-sided", "one-sided"),
		goipp.MakeAttr("media-col", goipp.TagBeginCollection, goipp.Collection{
			goipp.MakeAttr("media-size", goipp.TagBeginCollection, goipp.Collection{intAttr("x-dimension", 10000), intAttr("y-dimension", 10000)})}),
		kw("job-hold-until", "evening"),
	} {
		resp := e.do(withJob(e.request(goipp.OpValidateJob), a), nil)
		wantStatus(t, "Validate-Job with "+a.Name, resp, goipp.StatusOkIgnoredOrSubstituted)
		if len(resp.Unsupported) != 1 || resp.Unsupported[0].Name != a.Name {
			t.Errorf("%v: unsupported group %v", a, resp.Unsupported)
		}
	}
	// media-col says more than media, which is ignored.
	resp = e.do(withJob(e.request(goipp.OpValidateJob), kw("media", "na_letter_8.5x11in"),
		goipp.MakeAttr("media-col", goipp.TagBeginCollection, a4[:2])), nil)
	wantStatus(t, "media and media-col", resp, goipp.StatusOkIgnoredOrSubstituted)
	if names(resp.Unsupported)[0] != "media" {
		t.Errorf("unsupported %v", resp.Unsupported)
	}
	resp = e.do(withJob(e.request(goipp.OpValidateJob, boolAttr("ipp-attribute-fidelity", true)), kw("media", "na_letter_8.5x11in"),
		goipp.MakeAttr("media-col", goipp.TagBeginCollection, a4[:2])), nil)
	wantStatus(t, "media and media-col with fidelity", resp, goipp.StatusErrorConflicting)
}

func TestCheckTemplateRanges(t *testing.T) {
	caps := &capabilities{byName: map[string]goipp.Values{
		"page-ranges-supported": {{T: goipp.TagBoolean, V: goipp.Boolean(true)}},
		"copies-supported":      {{T: goipp.TagRange, V: goipp.Range{Lower: 1, Upper: 99}}},
		"number-up-supported":   {{T: goipp.TagInteger, V: goipp.Integer(1)}, {T: goipp.TagInteger, V: goipp.Integer(2)}},
	}}
	rng := func(pairs ...int) goipp.Attribute {
		a := goipp.Attribute{Name: "page-ranges"}
		for i := 0; i < len(pairs); i += 2 {
			a.Values.Add(goipp.TagRange, goipp.Range{Lower: pairs[i], Upper: pairs[i+1]})
		}
		return a
	}
	for _, c := range []struct {
		a  goipp.Attribute
		ok bool
	}{
		{rng(1, 1), true}, {rng(1, 3, 5, 9), true}, {rng(3, 5, 1, 2), false}, {rng(1, 3, 3, 4), false},
		{rng(0, 2), false}, {rng(4, 2), false},
		{intAttr("copies", 99), true}, {intAttr("copies", 100), false},
		{intAttr("number-up", 2), true}, {intAttr("number-up", 4), false},
	} {
		keep, _, known := checkTemplate(caps, c.a)
		if !known || (keep.Name != "") != c.ok {
			t.Errorf("%v: kept %v, want %v", c.a, keep, c.ok)
		}
	}
}

func TestHoldUntilIndefinite(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	resp := e.do(withJob(e.request(goipp.OpPrintJob), kw("job-hold-until", "indefinite")), pdf)
	wantStatus(t, "Print-Job held", resp, goipp.StatusOk)
	j, _ := e.q.Job(integerOf(resp.Job, "job-id"))
	if !j.Hold || j.State != printq.Held || find(j.Template, "job-hold-until") != nil {
		t.Errorf("job %+v", j)
	}
	resp = e.do(e.request(goipp.OpGetJobAttributes, intAttr("job-id", j.ID)), nil)
	if str(resp.Job, "job-hold-until") != "indefinite" || integerOf(resp.Job, "job-state") != int(printq.Held) {
		t.Errorf("Get-Job-Attributes %v", resp.Job)
	}
}

func TestCreateJobSendDocumentCloseJob(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	user := nameAttr("requesting-user-name", "aidant")
	create := func() int {
		t.Helper()
		resp := e.do(e.request(goipp.OpCreateJob, user, nameAttr("job-name", "Relevé")), nil)
		wantStatus(t, "Create-Job", resp, goipp.StatusOk)
		return integerOf(resp.Job, "job-id")
	}
	send := func(id int, attrs []goipp.Attribute, doc []byte) *goipp.Message {
		t.Helper()
		return e.do(e.request(goipp.OpSendDocument, append([]goipp.Attribute{intAttr("job-id", id), user}, attrs...)...), doc)
	}

	// One document, last.
	id := create()
	if j, _ := e.q.Job(id); j.HasDoc || j.State.Terminal() {
		t.Fatalf("created job %+v", j)
	}
	wantStatus(t, "Send-Document without last-document", send(id, nil, pdf), goipp.StatusErrorBadRequest)
	resp := send(id, []goipp.Attribute{boolAttr("last-document", true)}, pdf)
	wantStatus(t, "Send-Document", resp, goipp.StatusOk)
	if j, _ := e.q.Job(id); !j.HasDoc || j.State != printq.Pending || j.Format != "application/pdf" || !bytes.Equal(e.document(id), pdf) {
		t.Fatalf("job %+v", j)
	}
	wantStatus(t, "second document", send(id, []goipp.Attribute{boolAttr("last-document", true)}, pdf), goipp.StatusErrorMultipleJobsNotSupported)

	// Not last, then Close-Job.
	id = create()
	wantStatus(t, "Send-Document not last", send(id, []goipp.Attribute{boolAttr("last-document", false), mimeAttr("image/jpeg")},
		jpegImage(t, 20, 20, true)), goipp.StatusOk)
	resp = e.do(e.request(goipp.OpCloseJob, intAttr("job-id", id), user), nil)
	wantStatus(t, "Close-Job", resp, goipp.StatusOk)
	if j, _ := e.q.Job(id); j.State != printq.Pending || j.Format != "image/jpeg" {
		t.Fatalf("closed job %+v", j)
	}

	// Not last, then an empty last document (IPP/1.1 clients).
	id = create()
	wantStatus(t, "Send-Document not last", send(id, []goipp.Attribute{boolAttr("last-document", false)}, pdf), goipp.StatusOk)
	wantStatus(t, "empty last Send-Document", send(id, []goipp.Attribute{boolAttr("last-document", true)}, nil), goipp.StatusOk)
	if j, _ := e.q.Job(id); j.State != printq.Pending {
		t.Fatalf("job %+v", j)
	}

	// A format the printer cannot print leaves the job waiting for a good one.
	id = create()
	wantStatus(t, "Send-Document text/plain", send(id, []goipp.Attribute{boolAttr("last-document", true), mimeAttr("text/plain")}, []byte("x")),
		goipp.StatusErrorDocumentFormatNotSupported)
	wantStatus(t, "Send-Document", send(id, []goipp.Attribute{boolAttr("last-document", true)}, pdf), goipp.StatusOk)

	wantStatus(t, "Send-Document to no job", send(999, []goipp.Attribute{boolAttr("last-document", true)}, pdf), goipp.StatusErrorNotFound)
	stranger := e.request(goipp.OpSendDocument, intAttr("job-id", id), boolAttr("last-document", true), nameAttr("requesting-user-name", "other"))
	wantStatus(t, "Send-Document to another's job", e.serve(stranger, pdf, "192.0.2.66:5000"), goipp.StatusErrorNotAuthorized)
}

func TestCancelJob(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	print := func(user, remote string) int {
		t.Helper()
		resp := e.serve(e.request(goipp.OpPrintJob, nameAttr("requesting-user-name", user)), pdf, remote)
		wantStatus(t, "Print-Job", resp, goipp.StatusOk)
		return integerOf(resp.Job, "job-id")
	}
	cancel := func(id int, user, remote string) *goipp.Message {
		return e.serve(e.request(goipp.OpCancelJob, intAttr("job-id", id), nameAttr("requesting-user-name", user)), nil, remote)
	}
	a := print("alice", "192.0.2.10:4000")
	wantStatus(t, "another user on another device", cancel(a, "bob", "192.0.2.11:4000"), goipp.StatusErrorNotAuthorized)
	if j, _ := e.q.Job(a); j.State != printq.Pending {
		t.Fatalf("job %+v", j)
	}
	wantStatus(t, "the same device", cancel(a, "bob", "192.0.2.10:4001"), goipp.StatusOk)
	if j, _ := e.q.Job(a); j.State != printq.Canceled {
		t.Fatalf("job %+v", j)
	}
	wantStatus(t, "a finished job", cancel(a, "alice", "192.0.2.10:4000"), goipp.StatusErrorNotPossible)
	b := print("alice", "192.0.2.10:4000")
	wantStatus(t, "the same user elsewhere", cancel(b, "alice", "[2001:db8::5]:4000"), goipp.StatusOk)
	wantStatus(t, "no such job", cancel(12345, "alice", "192.0.2.10:4000"), goipp.StatusErrorNotFound)
	resp := e.serve(e.request(goipp.OpCancelJob, nameAttr("requesting-user-name", "alice")), nil, "192.0.2.10:4000")
	wantStatus(t, "no job-id", resp, goipp.StatusErrorBadRequest)
	// job-uri names the job too.
	c := print("alice", "192.0.2.10:4000")
	req := e.request(goipp.OpCancelJob, nameAttr("requesting-user-name", "alice"))
	req.Operation[2] = goipp.MakeAttr("job-uri", goipp.TagURI, goipp.String("ipp://relais.local:631/ipp/print/"+itoa(c)))
	wantStatus(t, "by job-uri", e.serve(req, nil, "192.0.2.10:4000"), goipp.StatusOk)
}

func TestCancelMyJobs(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	var ids []int
	for _, who := range []struct{ user, remote string }{{"alice", "192.0.2.10:1"}, {"alice", "192.0.2.10:2"}, {"bob", "192.0.2.11:1"}} {
		resp := e.serve(e.request(goipp.OpPrintJob, nameAttr("requesting-user-name", who.user)), pdf, who.remote)
		ids = append(ids, integerOf(resp.Job, "job-id"))
	}
	resp := e.serve(e.request(goipp.OpCancelMyJobs, nameAttr("requesting-user-name", "alice")), nil, "192.0.2.10:3")
	wantStatus(t, "Cancel-My-Jobs", resp, goipp.StatusOk)
	for i, want := range []printq.State{printq.Canceled, printq.Canceled, printq.Pending} {
		if j, _ := e.q.Job(ids[i]); j.State != want {
			t.Errorf("job %d: %v, want %v", ids[i], j.State, want)
		}
	}
	resp = e.serve(e.request(goipp.OpCancelMyJobs, nameAttr("requesting-user-name", "alice"),
		goipp.MakeAttr("job-ids", goipp.TagInteger, goipp.Integer(ids[2]))), nil, "192.0.2.10:3")
	wantStatus(t, "Cancel-My-Jobs of bob's job", resp, goipp.StatusErrorNotAuthorized)
	resp = e.serve(e.request(goipp.OpCancelMyJobs, nameAttr("requesting-user-name", "alice"),
		goipp.MakeAttr("job-ids", goipp.TagInteger, goipp.Integer(ids[0]))), nil, "192.0.2.10:3")
	wantStatus(t, "Cancel-My-Jobs of a canceled job", resp, goipp.StatusErrorNotPossible)
	if got := find(resp.Unsupported, "job-ids"); len(got) != 1 || got[0].V != goipp.Integer(ids[0]) {
		t.Errorf("unsupported job-ids %v", got)
	}
}

func TestGetJobs(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	var ids []int
	for _, who := range []struct{ user, remote string }{{"alice", "192.0.2.10:1"}, {"bob", "192.0.2.11:1"}, {"alice", "192.0.2.10:1"}} {
		resp := e.serve(e.request(goipp.OpPrintJob, nameAttr("requesting-user-name", who.user), nameAttr("job-name", who.user+"'s job")),
			pdf, who.remote)
		ids = append(ids, integerOf(resp.Job, "job-id"))
	}
	e.q.Cancel(ids[0])
	getJobs := func(remote string, attrs ...goipp.Attribute) []goipp.Attributes {
		t.Helper()
		resp := e.serve(e.request(goipp.OpGetJobs, attrs...), nil, remote)
		wantStatus(t, "Get-Jobs", resp, goipp.StatusOk)
		var out []goipp.Attributes
		for _, g := range resp.Groups {
			if g.Tag == goipp.TagJobGroup {
				out = append(out, g.Attrs)
			}
		}
		return out
	}
	ids2 := func(groups []goipp.Attributes) []int {
		var out []int
		for _, g := range groups {
			out = append(out, integerOf(g, "job-id"))
		}
		return out
	}
	got := getJobs("192.0.2.10:1")
	if !slices.Equal(ids2(got), []int{ids[1], ids[2]}) || len(got[0]) != 2 || str(got[0], "job-uri") == "" {
		t.Errorf("not-completed jobs %v", got)
	}
	if got := ids2(getJobs("192.0.2.10:1", kw("which-jobs", "completed"))); !slices.Equal(got, []int{ids[0]}) {
		t.Errorf("completed %v", got)
	}
	if got := ids2(getJobs("192.0.2.10:1", kw("which-jobs", "all"), intAttr("limit", 2))); !slices.Equal(got, []int{ids[1], ids[2]}) {
		t.Errorf("all, limit 2: %v", got)
	}
	if got := ids2(getJobs("192.0.2.10:1", kw("which-jobs", "all"), intAttr("first-index", 3))); !slices.Equal(got, []int{ids[0]}) {
		t.Errorf("all from 3: %v", got)
	}
	if got := ids2(getJobs("192.0.2.99:1", boolAttr("my-jobs", true), nameAttr("requesting-user-name", "bob"))); !slices.Equal(got, []int{ids[1]}) {
		t.Errorf("bob's jobs %v", got)
	}
	if got := ids2(getJobs("192.0.2.10:1", boolAttr("my-jobs", true))); !slices.Equal(got, []int{ids[2]}) {
		t.Errorf("this device's jobs %v", got)
	}
	// Names are shown to their owner only.
	all := getJobs("192.0.2.10:1", kw("requested-attributes", "all"), nameAttr("requesting-user-name", "alice"))
	if str(all[1], "job-name") != "alice's job" || str(all[1], "job-originating-user-name") != "alice" {
		t.Errorf("alice's own job %v", all[1])
	}
	if str(all[0], "job-name") != "" || str(all[0], "job-originating-user-name") != "" {
		t.Errorf("bob's job shown to alice with its names: %v", all[0])
	}
	for _, name := range []string{"job-printer-uri", "job-state", "job-state-reasons", "time-at-creation", "job-k-octets",
		"date-time-at-creation", "job-uuid", "number-of-documents", "document-format-supplied"} {
		if find(all[1], name) == nil {
			t.Errorf("requested-attributes all lacks %s", name)
		}
	}
	resp := e.serve(e.request(goipp.OpGetJobs, kw("which-jobs", "saved")), nil, "192.0.2.10:1")
	wantStatus(t, "which-jobs saved", resp, goipp.StatusErrorAttributesOrValues)
	resp = e.serve(e.request(goipp.OpGetJobs, intAttr("limit", 0)), nil, "192.0.2.10:1")
	wantStatus(t, "limit 0", resp, goipp.StatusErrorAttributesOrValues)
}

func TestGetJobAttributes(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{AdminURL: "http://relais.local/"})
	resp := e.do(withJob(e.request(goipp.OpPrintJob, nameAttr("requesting-user-name", "alice")), intAttr("copies", 1)), pdf)
	id := integerOf(resp.Job, "job-id")
	resp = e.do(e.request(goipp.OpGetJobAttributes, intAttr("job-id", id), nameAttr("requesting-user-name", "alice")), nil)
	wantStatus(t, "Get-Job-Attributes", resp, goipp.StatusOk)
	j := resp.Job
	if integerOf(j, "job-id") != id || str(j, "job-printer-uri") != e.uri || str(j, "job-more-info") != "http://relais.local/" ||
		integerOf(j, "copies") != 1 || integerOf(j, "time-at-creation") < 1 || integerOf(j, "job-k-octets") != 1 ||
		find(j, "time-at-completed")[0].T != goipp.TagNoValue || str(j, "job-state-reasons") != "job-queued" {
		t.Errorf("attributes %v", j)
	}
	resp = e.do(e.request(goipp.OpGetJobAttributes, intAttr("job-id", id), kw("requested-attributes", "job-template")), nil)
	if got := names(resp.Job); !slices.Equal(got, []string{"job-hold-until", "copies"}) {
		t.Errorf("job-template: %v", got)
	}
	wantStatus(t, "no such job", e.do(e.request(goipp.OpGetJobAttributes, intAttr("job-id", id+1)), nil), goipp.StatusErrorNotFound)
}

// Each client may create JobsPerClientPerMinute jobs a minute; clients
// are told to wait, not that the printer is busy.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{JobsPerClientPerMinute: 2})
	printFrom := func(remote string) goipp.Status {
		return status(e.serve(e.request(goipp.OpPrintJob), pdf, remote))
	}
	for i := range 2 {
		if st := printFrom("192.0.2.10:1"); st != goipp.StatusOk {
			t.Fatalf("job %d: %s", i, st)
		}
	}
	if st := status(e.serve(e.request(goipp.OpCreateJob), nil, "192.0.2.10:1")); st != goipp.StatusErrorNotPossible {
		t.Fatalf("third job in a minute: %s", st)
	}
	if st := printFrom("192.0.2.11:1"); st != goipp.StatusOk {
		t.Fatalf("another client: %s", st)
	}
	// An IPv6 host is one client across its /64.
	printFrom("[2001:db8::1]:1")
	printFrom("[2001:db8::2]:1")
	if st := printFrom("[2001:db8::3]:1"); st != goipp.StatusErrorNotPossible {
		t.Fatalf("third job from the /64: %s", st)
	}
	// Validate-Job is free.
	if st := status(e.serve(e.request(goipp.OpValidateJob), nil, "192.0.2.10:1")); st != goipp.StatusOk {
		t.Fatalf("Validate-Job: %s", st)
	}
	e.clock.Add(61 * time.Second)
	if st := printFrom("192.0.2.10:1"); st != goipp.StatusOk {
		t.Fatalf("a minute later: %s", st)
	}
	if n := len(e.jobs()); n != 6 {
		t.Fatalf("%d jobs, want 6", n)
	}
}

func TestSource(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	for ua, want := range map[string]api.Source{
		"CUPS/2.4.2 (Linux 6.1.0; x86_64) IPP/2.0":          api.SourcePC,
		"Microsoft-Windows/10.0 UPnP/1.0 Microsoft IPP/2.0": api.SourcePC,
		"iOS/17.1 (21B80) AirPrint/7.1":                     api.SourcePhone,
		"Mopria Print Service/2.19 (Android 13)":            api.SourcePhone,
	} {
		resp := e.post(e.request(goipp.OpPrintJob), pdf, http.Header{"User-Agent": {ua}})
		j, _ := e.q.Job(integerOf(resp.Job, "job-id"))
		if j.Source != want {
			t.Errorf("%s: source %s, want %s", ua, j.Source, want)
		}
	}
	details := goipp.MakeAttr("document-format-details", goipp.TagBeginCollection, goipp.Collection{
		nameAttr("document-source-os-name", "Android")})
	resp := e.do(e.request(goipp.OpPrintJob, details), pdf)
	if j, _ := e.q.Job(integerOf(resp.Job, "job-id")); j.Source != api.SourcePhone {
		t.Errorf("document-source-os-name Android: %s", j.Source)
	}
}

func TestQueueErrors(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	c := &call{s: e.srv, op: goipp.OpPrintJob}
	for err, want := range map[error]goipp.Status{
		printq.ErrTooLarge:    goipp.StatusErrorRequestEntity,
		printq.ErrQuota:       goipp.StatusErrorNotPossible,
		printq.ErrStorageFull: goipp.StatusErrorTemporary,
		printq.ErrNotFound:    goipp.StatusErrorNotFound,
		printq.ErrState:       goipp.StatusErrorNotPossible,
		printq.ErrClosed:      goipp.StatusErrorServiceUnavailable,
		printq.ErrTicket:      goipp.StatusErrorBadRequest,
	} {
		resp := c.queueError(err, nil)
		if resp.status != want || resp.message == "" || strings.Contains(resp.message, "printq") {
			t.Errorf("%v: %s %q, want %s", err, resp.status, resp.message, want)
		}
	}
	// A closed queue refuses jobs, and the client hears why.
	e.q.Close()
	resp := e.do(e.request(goipp.OpPrintJob), pdf)
	wantStatus(t, "Print-Job to a closed queue", resp, goipp.StatusErrorServiceUnavailable)
}
