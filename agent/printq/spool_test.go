package printq

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/central/api"
)

// richTemplate holds a value of most IPP syntaxes, nested collections
// included.
func richTemplate() goipp.Attributes {
	size := goipp.Collection{
		goipp.MakeAttribute("x-dimension", goipp.TagInteger, goipp.Integer(21000)),
		goipp.MakeAttribute("y-dimension", goipp.TagInteger, goipp.Integer(29700)),
	}
	mediaCol := goipp.Collection{
		goipp.MakeAttribute("media-size", goipp.TagBeginCollection, size),
		goipp.MakeAttribute("media-source", goipp.TagKeyword, goipp.String("tray-1")),
		goipp.MakeAttribute("media-type", goipp.TagKeyword, goipp.String("stationery")),
	}
	var a goipp.Attributes
	a.Add(goipp.MakeAttribute("copies", goipp.TagInteger, goipp.Integer(2)))
	a.Add(goipp.MakeAttribute("sides", goipp.TagKeyword, goipp.String("two-sided-long-edge")))
	a.Add(goipp.MakeAttribute("print-color-mode", goipp.TagKeyword, goipp.String("monochrome")))
	a.Add(goipp.MakeAttribute("print-quality", goipp.TagEnum, goipp.Integer(4)))
	a.Add(goipp.MakeAttribute("media-col", goipp.TagBeginCollection, mediaCol))
	a.Add(goipp.MakeAttribute("printer-resolution", goipp.TagResolution, goipp.Resolution{Xres: 600, Yres: 600, Units: goipp.UnitsDpi}))
	a.Add(goipp.MakeAttr("page-ranges", goipp.TagRange, goipp.Range{Lower: 1, Upper: 3}, goipp.Range{Lower: 5, Upper: 5}))
	a.Add(goipp.MakeAttribute("print-scaling", goipp.TagKeyword, goipp.String("fit")))
	a.Add(goipp.MakeAttribute("job-hold-until", goipp.TagKeyword, goipp.String("indefinite")))
	a.Add(goipp.MakeAttribute("job-message-to-operator", goipp.TagTextLang, goipp.TextWithLang{Lang: "fr", Text: "Merci Élodie"}))
	a.Add(goipp.MakeAttribute("x-vendor-date", goipp.TagDateTime, goipp.Time{Time: time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)}))
	a.Add(goipp.MakeAttribute("x-vendor-blob", goipp.TagString, goipp.Binary{0, 1, 2, 0xff}))
	a.Add(goipp.MakeAttribute("x-vendor-flag", goipp.TagBoolean, goipp.Boolean(true)))
	a.Add(goipp.MakeAttribute("x-vendor-none", goipp.TagNoValue, goipp.Void{}))
	return a
}

func TestTemplateRoundTrip(t *testing.T) {
	h := newHarness(t, "", nil)
	cases := map[string]goipp.Attributes{"rich": richTemplate(), "nil": nil, "empty": {}}
	ids := map[string]int{}
	for name, tmpl := range cases {
		j, err := h.q.Submit(Ticket{Name: "n", Format: "application/pdf", Template: tmpl}, strings.NewReader("%PDF-1.7"))
		if err != nil {
			t.Fatal(err)
		}
		if !j.Template.Equal(tmpl) {
			t.Errorf("%s: Submit returned template %v, want %v", name, j.Template, tmpl)
		}
		ids[name] = j.ID
	}
	h.restart()
	for name, tmpl := range cases {
		j, ok := h.q.Job(ids[name])
		if !ok {
			t.Fatalf("%s: job lost on reopen", name)
		}
		if !j.Template.Equal(tmpl) {
			t.Errorf("%s: template after reopen %v, want %v", name, j.Template, tmpl)
		}
	}
	// A caller changing the returned job changes nothing in the queue.
	j, _ := h.q.Job(ids["rich"])
	j.Template[0].Values[0].V = goipp.Integer(99)
	if j2, _ := h.q.Job(ids["rich"]); !j2.Template.Equal(richTemplate()) {
		t.Error("the queue's template was changed through a returned Job")
	}
}

func TestSubmitDurable(t *testing.T) {
	h := newHarness(t, "", nil)
	doc := bytes.Repeat([]byte("page "), 10000)
	tk := Ticket{Name: "Attestation CAF.pdf", User: "marie", Client: "192.0.2.7", Format: "application/pdf", Source: api.SourcePC}
	j, err := h.q.Submit(tk, bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != 1 || j.State != Pending || !j.HasDoc || j.Size != int64(len(doc)) ||
		!strings.HasPrefix(j.UUID, "urn:uuid:") || !slices.Equal(j.Reasons, []string{"job-queued"}) {
		t.Fatalf("job %+v", j)
	}
	if want := []string{docName(1), metaName(1)}; !slices.Equal(h.spoolFiles(), want) {
		t.Fatalf("spool holds %v, want %v", h.spoolFiles(), want)
	}
	// No printer: the job waits, across a restart, with its document.
	h.run()
	h.restart()
	got, ok := h.q.Job(1)
	if !ok || got.State != Pending || got.Name != tk.Name || got.User != tk.User || got.Client != tk.Client || got.UUID != j.UUID {
		t.Fatalf("after restart: %+v", got)
	}
	rc, err := h.q.Document(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, doc) {
		t.Error("document differs after restart")
	}
	if info, err := os.Stat(filepath.Join(h.cfg.Dir, docName(1))); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("document mode: %v %v", info.Mode(), err)
	}
	if info, err := os.Stat(h.cfg.Dir); err != nil || info.Mode().Perm() != 0o750 {
		t.Errorf("spool mode: %v %v", info.Mode(), err)
	}
}

// failingReader returns n bytes, then an error, as a client whose
// connection drops mid-upload.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestTruncatedDocumentLeavesNothing(t *testing.T) {
	h := newHarness(t, "", nil)
	_, err := h.q.Submit(Ticket{Format: "application/pdf"}, &failingReader{n: 300000})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Submit: %v, want the reader's error", err)
	}
	if js := h.q.Jobs(); len(js) != 0 {
		t.Errorf("jobs %v, want none", js)
	}
	if fs := h.spoolFiles(); len(fs) != 0 {
		t.Errorf("spool holds %v, want nothing", fs)
	}

	// The same through Create and SendDocument: the job is aborted, with no
	// document and no usage event.
	j, err := h.q.Create(Ticket{Format: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.SendDocument(j.ID, "", &failingReader{n: 1000}, true); err == nil {
		t.Fatal("SendDocument of a truncated document succeeded")
	}
	if j, _ := h.q.Job(j.ID); j.State != Aborted || j.HasDoc || !slices.Contains(j.Reasons, "submission-interrupted") {
		t.Errorf("job after a truncated Send-Document: %+v", j)
	}
	if fs := h.spoolFiles(); !slices.Equal(fs, []string{metaName(j.ID)}) {
		t.Errorf("spool holds %v, want only the metadata of the aborted job", fs)
	}
	h.run()
	h.q.flushEvents()
	if evs := h.rec.all(); len(evs) != 0 {
		t.Errorf("events %v, want none", evs)
	}
}

func TestTooLarge(t *testing.T) {
	const limit = 1000
	h := newHarness(t, "", func(c *Config) { c.MaxJobBytes = limit })
	if _, err := h.q.Submit(Ticket{}, bytes.NewReader(make([]byte, limit+1))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Submit of limit+1 bytes: %v, want ErrTooLarge", err)
	}
	if fs := h.spoolFiles(); len(fs) != 0 || len(h.q.Jobs()) != 0 {
		t.Fatalf("left behind: files %v, jobs %v", fs, h.q.Jobs())
	}
	j, err := h.q.Submit(Ticket{}, bytes.NewReader(make([]byte, limit)))
	if err != nil || j.Size != limit {
		t.Fatalf("Submit of exactly the limit: %+v, %v", j, err)
	}
	// A reader that never ends is not read past the limit.
	if _, err := h.q.Submit(Ticket{}, endless{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless document: %v", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestTicketBounds(t *testing.T) {
	h := newHarness(t, "", nil)
	bad := []Ticket{
		{Name: strings.Repeat("n", 256)},
		{User: strings.Repeat("u", 256)},
		{Format: strings.Repeat("f", 256)},
		{Source: "fax"},
		{Template: goipp.Attributes{{Name: "copies"}}}, // no value: does not encode
	}
	for _, tk := range bad {
		if _, err := h.q.Submit(tk, strings.NewReader("x")); !errors.Is(err, ErrTicket) {
			t.Errorf("Submit(%+v): %v, want ErrTicket", tk, err)
		}
	}
	if fs := h.spoolFiles(); len(fs) != 0 {
		t.Errorf("spool holds %v", fs)
	}
}

func TestStorageFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	h := newHarness(t, "", func(c *Config) { c.Dir = filepath.Join(dir, "spool") })
	_, err := h.q.Submit(Ticket{}, bytes.NewReader(make([]byte, 1<<20)))
	if !errors.Is(err, ErrStorageFull) {
		t.Fatalf("Submit on a full disk: %v, want ErrStorageFull", err)
	}
	if fs := h.spoolFiles(); len(fs) != 0 || len(h.q.Jobs()) != 0 {
		t.Fatalf("left behind: %v", fs)
	}
	// Room again: jobs are accepted.
	if _, err := h.q.Submit(Ticket{}, bytes.NewReader(make([]byte, 10000))); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCleansAndNeverReusesIDs(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.KeepCompleted = 1 })
	h.run()
	for range 3 {
		j, err := h.q.Submit(Ticket{}, strings.NewReader("doc"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.q.Cancel(j.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Once their events are recorded, only the last terminal job is kept,
	// without its document.
	h.rec.waitEvents(t, 3)
	eventually(t, "pruning", func() bool { return len(h.q.Jobs()) == 1 })
	if js := h.q.Jobs(); len(js) != 1 || js[0].ID != 3 || js[0].State != Canceled {
		t.Fatalf("jobs %+v", js)
	}
	if fs := h.spoolFiles(); !slices.Equal(fs, []string{metaName(3)}) {
		t.Fatalf("spool holds %v", fs)
	}
	// What a crash leaves: a temporary file, a document whose metadata
	// never became durable.
	h.stop()
	h.q.Close()
	for _, name := range []string{tmpPrefix + "123", docName(9)} {
		if err := os.WriteFile(filepath.Join(h.cfg.Dir, name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Even with every job file gone, ids are not reused.
	os.Remove(filepath.Join(h.cfg.Dir, metaName(3)))
	h.open()
	if fs := h.spoolFiles(); len(fs) != 0 {
		t.Fatalf("Open left %v", fs)
	}
	j, err := h.q.Submit(Ticket{}, strings.NewReader("doc"))
	if err != nil || j.ID != 4 {
		t.Fatalf("next job: %+v %v, want id 4", j, err)
	}
}

func TestSpoolLocked(t *testing.T) {
	h := newHarness(t, "", nil)
	if q, err := Open(h.cfg); err == nil {
		q.Close()
		t.Fatal("a second queue opened the same spool")
	}
	h.q.Close()
	if _, err := h.q.Submit(Ticket{}, strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	h.open()
}

func TestUnreadableMetadataSetAside(t *testing.T) {
	h := newHarness(t, "", nil)
	j, err := h.q.Submit(Ticket{}, strings.NewReader("doc"))
	if err != nil {
		t.Fatal(err)
	}
	h.q.Close()
	if err := os.WriteFile(filepath.Join(h.cfg.Dir, metaName(j.ID)), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.open()
	if _, ok := h.q.Job(j.ID); ok {
		t.Error("a job was loaded from broken metadata")
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, metaName(j.ID)+".bad")); err != nil {
		t.Errorf("broken metadata not set aside: %v", err)
	}
	if j2, err := h.q.Submit(Ticket{}, strings.NewReader("doc")); err != nil || j2.ID <= j.ID {
		t.Errorf("next job %+v %v", j2, err)
	}
}
