package printq

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// Integration tests against Debian's real ippeveprinter (see
// peertest.IPPEvePrinter). The queue runs on a clock twenty times faster
// than the real one, so that its polls and backoff fit a test; nothing is
// asserted about durations.

// fastClock is the real clock running factor times faster.
type fastClock struct {
	start  time.Time
	factor time.Duration
}

func (c fastClock) Now() time.Time {
	return c.start.Add(time.Since(c.start) * c.factor)
}

func (c fastClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(d / c.factor)}
}

// ippeveHarness starts ippeveprinter and opens a queue on it.
func ippeveHarness(t *testing.T, adjust func(*Config)) (*harness, *peertest.IPPEve) {
	t.Helper()
	p := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{Duplex: true})
	h := newHarness(t, p.URI, func(c *Config) {
		c.Clock = fastClock{start: time.Now(), factor: 20}
		c.PollInterval = 0 // the default
		if adjust != nil {
			adjust(c)
		}
	})
	return h, p
}

const ippeveLimit = 60 * time.Second

// keptDocument returns the content and file name of a document the printer
// kept.
func keptDocument(t *testing.T, d peertest.Document) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b, filepath.Base(d.Path)
}

func TestIPPEveForward(t *testing.T) {
	t.Parallel()
	h, p := ippeveHarness(t, nil)
	doc := peertest.PDF(3)
	tmpl := goipp.Attributes{
		goipp.MakeAttribute("copies", goipp.TagInteger, goipp.Integer(2)),
		goipp.MakeAttribute("sides", goipp.TagKeyword, goipp.String("two-sided-long-edge")),
		goipp.MakeAttribute("print-color-mode", goipp.TagKeyword, goipp.String("monochrome")),
		goipp.MakeAttribute("media", goipp.TagKeyword, goipp.String("iso_a4_210x297mm")),
	}
	tk := Ticket{Name: "Relevé Mme Dupont.pdf", User: "dupont", Client: "192.0.2.30",
		Format: "application/pdf", Source: api.SourcePC, Template: tmpl}
	j, err := h.q.Submit(tk, bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	done := h.waitState(j.ID, Completed)
	if done.Impressions != 6 || done.UpstreamID <= 0 {
		t.Errorf("completed job %+v, want 6 impressions (3 pages, 2 copies)", done)
	}
	docs := p.WaitDocuments(t, 1, ippeveLimit)
	got, name := keptDocument(t, docs[0])
	if len(docs) != 1 || !bytes.Equal(got, doc) {
		t.Fatalf("printer kept %d documents; the first differs: %v", len(docs), !bytes.Equal(got, doc))
	}
	// ippeveprinter names its files after the job-name: ours, not the user's.
	if tag := "relais-" + strings.TrimPrefix(j.UUID, "urn:uuid:"); !strings.Contains(name, tag) ||
		strings.Contains(name, "Dupont") || strings.Contains(name, "dupont") {
		t.Errorf("kept file %q, want one named after %s", name, tag)
	}
	ev := h.rec.waitEvents(t, 1)[0]
	if ev.Type != api.EventPrintCompleted || *ev.Pages != 6 || *ev.Color || !*ev.Duplex ||
		*ev.Bytes != int64(len(doc)) || ev.Format != "application/pdf" || ev.Source != api.SourcePC {
		t.Errorf("event %+v", ev)
	}
	// The printer's capabilities are kept in the spool for the IPP server.
	ps := h.q.Printer()
	if !ps.Reachable || ps.Attrs == nil || keyword(ps.Attrs, "printer-name") == "" {
		t.Fatalf("printer status %+v", ps)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, printerName)); err != nil {
		t.Errorf("printer attributes not saved: %v", err)
	}
	if log := h.faults.log(); len(log) != 0 {
		t.Errorf("faults %v", log)
	}
}

// sendAsQueue sends a job's Print-Job to the printer as the queue would
// have before a crash, and returns the printer's job id.
func sendAsQueue(t *testing.T, uri string, e *entry, doc []byte) int {
	t.Helper()
	resp := ippCall(t, uri, func(c *upstream.Client) *goipp.Message {
		req := c.NewRequest(goipp.OpPrintJob)
		req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(upstreamUser)))
		req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(jobTag(e))))
		req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
		return req
	}, doc)
	return intAttr(resp.Job, "job-id")
}

// TestIPPEveRecovery restarts the queue on the spool a crash mid-forward
// leaves: a job marked forwarding. One of them had reached the printer
// before the crash, the other had not: each is printed exactly once.
func TestIPPEveRecovery(t *testing.T) {
	t.Parallel()
	h, p := ippeveHarness(t, nil)
	reached, notReached := peertest.PDF(2), peertest.PDF(1)
	j1, err := h.q.Submit(Ticket{Format: "application/pdf"}, bytes.NewReader(reached))
	if err != nil {
		t.Fatal(err)
	}
	j2, err := h.q.Submit(Ticket{Format: "application/pdf"}, bytes.NewReader(notReached))
	if err != nil {
		t.Fatal(err)
	}
	markForwarding(t, h, j1.ID)
	markForwarding(t, h, j2.ID)
	upID := sendAsQueue(t, p.URI, h.q.jobs[j1.ID], reached)

	h.restart()
	h.run()
	done1 := h.waitState(j1.ID, Completed)
	done2 := h.waitState(j2.ID, Completed)
	if done1.UpstreamID != upID || done1.Impressions != 2 || done2.Impressions != 1 {
		t.Errorf("jobs after recovery: %+v\n%+v", done1, done2)
	}
	docs := p.WaitDocuments(t, 2, ippeveLimit)
	if len(docs) != 2 {
		t.Fatalf("printer kept %d documents, want 2: %+v", len(docs), docs)
	}
	for i, want := range [][]byte{reached, notReached} {
		if got, _ := keptDocument(t, docs[i]); !bytes.Equal(got, want) {
			t.Errorf("document %d differs", i)
		}
	}
	if evs := h.rec.waitEvents(t, 2); evs[0].Type != api.EventPrintCompleted || evs[1].Type != api.EventPrintCompleted {
		t.Errorf("events %+v", evs)
	}
}

// TestIPPEveOutOfPaper: ippeveprinter reports media-empty-report while
// idle (information, not a fault: a printer may say so of a tray it does
// not need), takes the job, and holds it with media-empty-warning: the
// queue raises the fault and the job waits on the printer until the paper
// is back. (A printer that reports media-empty-error keeps jobs in the
// queue instead: TestPrinterFaultsHoldJobs.)
func TestIPPEveOutOfPaper(t *testing.T) {
	t.Parallel()
	h, p := ippeveHarness(t, nil)
	p.SetMediaEmpty(t, true)
	h.run()
	doc := peertest.PDF(1)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "media-empty raised", func() bool {
		s, ok := h.faults.severity("media-empty")
		return ok && s == api.SeverityFault
	})
	if got, _ := h.q.Job(j.ID); got.State.Terminal() {
		t.Fatalf("job ended on a printer with no paper: %+v", got)
	}
	p.SetMediaEmpty(t, false)
	h.waitState(j.ID, Completed)
	eventually(t, "media-empty cleared", func() bool {
		_, open := h.faults.severity("media-empty")
		return !open
	})
	docs := p.WaitDocuments(t, 1, ippeveLimit)
	if got, _ := keptDocument(t, docs[0]); len(docs) != 1 || !bytes.Equal(got, doc) {
		t.Errorf("printer kept %+v", docs)
	}
	for _, l := range h.faults.log() {
		if strings.HasPrefix(l, "raise") && !strings.Contains(l, "media-") {
			t.Errorf("unexpected fault: %s", l)
		}
	}
}

func TestIPPEveJamWhilePrinting(t *testing.T) {
	t.Parallel()
	h, p := ippeveHarness(t, nil)
	p.SetJammed(t, true)
	h.run()
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, bytes.NewReader(peertest.PDF(2)))
	if err != nil {
		t.Fatal(err)
	}
	// The printer took the job and jammed on it.
	p.WaitStalled(t, ippeveLimit)
	eventually(t, "media-jam raised", func() bool {
		s, ok := h.faults.severity("media-jam")
		return ok && s == api.SeverityFault
	})
	if got, _ := h.q.Job(j.ID); got.State != Processing || got.UpstreamID <= 0 {
		t.Errorf("job on a jammed printer %+v", got)
	}
	p.SetJammed(t, false)
	if done := h.waitState(j.ID, Completed); done.Impressions != 2 {
		t.Errorf("job %+v", done)
	}
	eventually(t, "media-jam cleared", func() bool {
		_, open := h.faults.severity("media-jam")
		return !open
	})
	if docs := p.Documents(t); len(docs) != 1 {
		t.Errorf("printer kept %+v", docs)
	}
}

func TestIPPEveStoppedThenDrained(t *testing.T) {
	t.Parallel()
	h, p := ippeveHarness(t, nil)
	h.run()
	eventually(t, "the printer", func() bool { return h.q.Printer().Reachable })
	p.Stop(t)
	var docs [][]byte
	var ids []int
	for i := range 3 {
		doc := peertest.PDF(i + 1)
		j, err := h.q.Submit(Ticket{Format: "application/pdf", Source: api.SourcePhone}, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		docs, ids = append(docs, doc), append(ids, j.ID)
	}
	eventually(t, "printer-unreachable raised", func() bool {
		_, ok := h.faults.severity(FaultUnreachable)
		return ok
	})
	for _, id := range ids {
		if j, _ := h.q.Job(id); j.State.Terminal() {
			t.Errorf("job %+v ended while the printer is off", j)
		}
	}
	p.Restart(t)
	for _, id := range ids {
		h.waitState(id, Completed)
	}
	eventually(t, "printer-unreachable cleared", func() bool {
		_, ok := h.faults.severity(FaultUnreachable)
		return !ok
	})
	kept := p.WaitDocuments(t, 3, ippeveLimit)
	if len(kept) != 3 {
		t.Fatalf("printer kept %d documents", len(kept))
	}
	for i, d := range kept {
		if got, _ := keptDocument(t, d); !bytes.Equal(got, docs[i]) {
			t.Errorf("document %d differs or is out of order", i)
		}
	}
	evs := h.rec.waitEvents(t, 3)
	for i, ev := range evs {
		if ev.Type != api.EventPrintCompleted || *ev.Pages != i+1 {
			t.Errorf("event %d %+v", i, ev)
		}
	}
	for _, l := range h.faults.log() {
		if !strings.HasSuffix(l, "printer-unreachable fault") && !strings.HasSuffix(l, "printer-unreachable") {
			t.Errorf("unexpected fault: %s", l)
		}
	}
}
