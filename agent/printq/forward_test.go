package printq

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/central/api"
)

func TestForward(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.impress, p.sheets = 6, 3 })
	h := newHarness(t, p.uri(), nil)
	doc := []byte("%PDF-1.7 Dossier de Jean-Baptiste Poquelin")
	tk := Ticket{Name: "Dossier_RSA_Poquelin.pdf", User: "jbpoquelin", Client: "192.0.2.9",
		Format: "application/pdf", Source: api.SourcePhone, Template: richTemplate()}
	j, err := h.q.Submit(tk, bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	done := h.waitState(j.ID, Completed)
	if done.Impressions != 6 || done.Sheets != 3 || done.UpstreamID != 1 || done.HasDoc != true ||
		!slices.Equal(done.Reasons, []string{"job-completed-successfully"}) || done.Finished.IsZero() || done.Started.IsZero() {
		t.Errorf("completed job %+v", done)
	}
	if _, err := h.q.Document(j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("document of a completed job: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, docName(j.ID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("document file of a completed job: %v", err)
	}

	jobs := p.printJobs()
	if len(jobs) != 1 {
		t.Fatalf("printer got %d jobs", len(jobs))
	}
	got := jobs[0]
	if !bytes.Equal(got.doc, doc) {
		t.Error("the printer got another document")
	}
	if got.name != "relais-"+strings.TrimPrefix(j.UUID, "urn:uuid:") || got.user != "relais" || got.format != "application/pdf" {
		t.Errorf("printer job name %q user %q format %q", got.name, got.user, got.format)
	}
	// The template goes upstream but for what names people or holds jobs.
	var want goipp.Attributes
	for _, a := range richTemplate() {
		if a.Name != "job-hold-until" && a.Name != "job-message-to-operator" {
			want = append(want, a)
		}
	}
	if !got.template.Equal(want) {
		t.Errorf("printer job template\n%v\nwant\n%v", got.template, want)
	}
	// Nothing that names the user, the document or a message reaches the
	// printer.
	all := p.allBodies()
	for _, private := range []string{tk.Name, tk.User, "Élodie", tk.Client} {
		if bytes.Contains(all, []byte(private)) {
			t.Errorf("%q was sent to the printer", private)
		}
	}

	evs := h.rec.waitEvents(t, 1)
	ev := evs[0]
	if ev.Type != api.EventPrintCompleted || *ev.Pages != 6 || *ev.Sheets != 3 || *ev.Color || !*ev.Duplex ||
		*ev.Bytes != int64(len(doc)) || ev.Format != "application/pdf" || ev.Source != api.SourcePhone {
		t.Errorf("event %+v", ev)
	}
	// The printer answers: no fault; its state is known.
	ps := h.q.Printer()
	if !ps.Reachable || ps.State != 3 || len(ps.Markers) != 2 || ps.Markers[1] != (Marker{"Cyan Toner", "toner", "#00FFFF", 15}) || ps.Attrs == nil {
		t.Errorf("printer status %+v", ps)
	}
	if log := h.faults.log(); len(log) != 0 {
		t.Errorf("faults %v", log)
	}
}

func TestForwardInIDOrderOneAtATime(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.holdJobs = true })
	h := newHarness(t, p.uri(), nil)
	var ids []int
	for i := range 3 {
		j, err := h.q.Submit(Ticket{Format: "text/plain"}, strings.NewReader(fmt.Sprint("doc ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	h.run()
	for i, id := range ids {
		h.waitReason(id, "job-printing")
		h.clock.waitTimer(t, "the job poll", func(d time.Duration) bool { return d >= minJobPoll && d <= maxJobPoll })
		if n := len(p.printJobs()); n != i+1 {
			t.Fatalf("printer has %d jobs while job %d prints, want %d", n, id, i+1)
		}
		for _, later := range ids[i+1:] {
			if j, _ := h.q.Job(later); j.State != Pending {
				t.Errorf("job %d is %d while %d prints", later, j.State, id)
			}
		}
		p.finish(Completed)
		h.clock.Advance(maxJobPoll)
		h.waitState(id, Completed)
	}
	for i, j := range p.printJobs() {
		if string(j.doc) != fmt.Sprint("doc ", i) {
			t.Errorf("printer job %d holds %q", i, j.doc)
		}
	}
}

func TestRetryWhileBusy(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) {
		p.printErr = []goipp.Status{goipp.StatusErrorBusy, goipp.StatusErrorServiceUnavailable, goipp.StatusErrorNotAcceptingJobs}
	})
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	var delays []time.Duration
	for _, reason := range []string{"resources-are-not-ready", "resources-are-not-ready", "printer-stopped"} {
		got := h.waitReason(j.ID, reason)
		if got.State != Pending {
			t.Fatalf("job while the printer refuses: %+v", got)
		}
		d := h.clock.waitTimer(t, "the backoff", func(d time.Duration) bool { return d < h.cfg.PollInterval })
		delays = append(delays, d)
		h.clock.Advance(d)
	}
	h.waitState(j.ID, Completed)
	for i, d := range delays {
		if d < backoffMin || d > backoffMax || i > 0 && d > backoffMin<<i {
			t.Errorf("retry %d after %v", i, d)
		}
	}
	if n := len(p.printJobs()); n != 1 {
		t.Errorf("printer has %d jobs, want 1", n)
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	prevCeil := time.Duration(0)
	for i := range 40 {
		d := b.next()
		ceil := min(backoffMin<<min(i, 16), backoffMax)
		if d < backoffMin || d > ceil || d < ceil/2 {
			t.Fatalf("delay %d: %v, want in [%v, %v]", i, d, max(backoffMin, ceil/2), ceil)
		}
		prevCeil = ceil
	}
	if prevCeil != backoffMax {
		t.Errorf("delays never reach %v", backoffMax)
	}
	b.reset()
	if d := b.next(); d != backoffMin {
		t.Errorf("first delay after reset %v", d)
	}
}

func TestUnsupportedAttributesRetriedOnce(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.refuse = map[string]bool{"print-scaling": true} })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf", Template: richTemplate()}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.waitState(j.ID, Completed)
	jobs := p.printJobs()
	if len(jobs) != 1 || keyword(jobs[0].template, "print-scaling") != "" || keyword(jobs[0].template, "sides") == "" {
		t.Fatalf("printer jobs %+v", jobs)
	}

	// A printer that refuses even the bare job: the job fails.
	p.set(func(p *fakePrinter) {
		p.printErr = []goipp.Status{goipp.StatusErrorAttributesOrValues, goipp.StatusErrorAttributesOrValues}
	})
	j, err = h.q.Submit(Ticket{Format: "application/pdf", Template: richTemplate(), Source: api.SourceCopy}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	failed := h.waitState(j.ID, Aborted)
	if !slices.Contains(failed.Reasons, "aborted-by-system") {
		t.Errorf("failed job %+v", failed)
	}
	evs := h.rec.waitEvents(t, 2)
	if evs[1].Type != api.EventPrintFailed || evs[1].Reason != "attributes-or-values-not-supported" || evs[1].Source != api.SourceCopy || *evs[1].Pages != 0 {
		t.Errorf("event %+v", evs[1])
	}
	if evs[0].Type != api.EventPrintCompleted {
		t.Errorf("first event %+v", evs[0])
	}
}

func TestFormatNotSupported(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.printErr = []goipp.Status{goipp.StatusErrorDocumentFormatNotSupported} })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "image/urf"}, strings.NewReader("UNIRAST"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.waitState(j.ID, Completed)
	if jobs := p.printJobs(); len(jobs) != 1 || jobs[0].format != "application/octet-stream" {
		t.Errorf("printer jobs %+v", jobs)
	}
}

func TestUnreachableThenBack(t *testing.T) {
	p := newFakePrinter(t)
	p.down()
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	// First failed poll: the job waits; a second one a second later raises
	// the fault.
	h.waitReason(j.ID, "service-off-line")
	if _, open := h.faults.severity(FaultUnreachable); open {
		t.Error("unreachable after a single failed poll")
	}
	h.clock.waitTimer(t, "the quick repoll", func(d time.Duration) bool { return d == failRepoll })
	h.clock.Advance(failRepoll)
	eventually(t, "printer-unreachable raised", func() bool {
		s, ok := h.faults.severity(FaultUnreachable)
		return ok && s == api.SeverityFault
	})
	if j, _ := h.q.Job(j.ID); j.State != Pending || len(p.printJobs()) != 0 {
		t.Fatalf("job while the printer is away: %+v", j)
	}
	// The printer comes back: fault cleared, job printed once.
	p.up()
	h.clock.waitTimer(t, "the quick repoll", func(d time.Duration) bool { return d == failRepoll })
	h.clock.Advance(failRepoll)
	h.waitState(j.ID, Completed)
	eventually(t, "printer-unreachable cleared", func() bool {
		_, open := h.faults.severity(FaultUnreachable)
		return !open
	})
	if log := h.faults.log(); !slices.Equal(log, []string{"raise printer printer-unreachable fault", "clear printer printer-unreachable"}) {
		t.Errorf("faults %v", log)
	}
	if n := len(p.printJobs()); n != 1 {
		t.Errorf("printer has %d jobs", n)
	}
}

func TestUnreachableAfterTime(t *testing.T) {
	// With a poll interval of 5 s, a printer that stops answering right
	// after a poll is a fault 5 s later at most... plus a quick repoll.
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), func(c *Config) { c.PollInterval = 5 * time.Second })
	h.run()
	eventually(t, "the first poll", func() bool { return h.q.Printer().Reachable })
	p.down()
	start := h.clock.Now()
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == 5*time.Second })
	h.clock.Advance(5 * time.Second)
	h.clock.waitTimer(t, "the quick repoll", func(d time.Duration) bool { return d == failRepoll })
	h.clock.Advance(failRepoll)
	eventually(t, "printer-unreachable raised", func() bool {
		_, ok := h.faults.severity(FaultUnreachable)
		return ok
	})
	if took := h.clock.Now().Sub(start); took > 10*time.Second {
		t.Errorf("fault raised %v after the printer failed", took)
	}
}

func TestPrinterFaultsHoldJobs(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) {
		p.reasons = []string{"media-empty-error", "toner-low-warning", "cover-open-report"}
	})
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	got := h.waitReason(j.ID, "resources-are-not-ready")
	if got.State != Pending || !strings.Contains(got.Message, "media-empty") {
		t.Errorf("job %+v", got)
	}
	eventually(t, "faults raised", func() bool {
		m, ok1 := h.faults.severity("media-empty")
		w, ok2 := h.faults.severity("toner-low")
		return ok1 && ok2 && m == api.SeverityFault && w == api.SeverityWarn
	})
	if _, open := h.faults.severity("cover-open"); open {
		t.Error("a -report reason raised a fault")
	}
	if ps := h.q.Printer(); !slices.Equal(ps.Reasons, []string{"media-empty", "toner-low", "cover-open"}) {
		t.Errorf("printer reasons %v", ps.Reasons)
	}
	if n := len(p.printJobs()); n != 0 {
		t.Fatalf("a job was sent to a printer with no paper")
	}
	// Paper again: the next poll sends the job; the fault is cleared.
	p.set(func(p *fakePrinter) { p.reasons = []string{"toner-low-warning"} })
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == h.cfg.PollInterval })
	h.clock.Advance(h.cfg.PollInterval)
	h.waitState(j.ID, Completed)
	eventually(t, "media-empty cleared", func() bool {
		_, open := h.faults.severity("media-empty")
		return !open
	})
	if _, open := h.faults.severity("toner-low"); !open {
		t.Error("toner-low cleared while still reported")
	}
	// Faults are kept across restarts: one that went away meanwhile is
	// cleared by the first poll.
	p.set(func(p *fakePrinter) { p.reasons = nil })
	h.restart()
	h.run()
	eventually(t, "toner-low cleared after restart", func() bool {
		_, open := h.faults.severity("toner-low")
		return !open
	})
}

func TestClassifyReason(t *testing.T) {
	for raw, want := range map[string]string{
		"media-empty-error": "media-empty fault", "media-empty": "media-empty fault",
		"toner-low": "toner-low warn", "toner-low-warning": "toner-low warn", "media-low-report": "",
		"marker-waste-almost-full": "marker-waste-almost-full warn", "door-open-warning": "door-open fault",
		"media-empty-report": "", "developer-low-warning": "developer-low warn",
		"none": "", "moving-to-paused": "", "com.hp.jam-error": "", "cups-waiting-for-job-completed": "",
		"offline-error": "offline fault", "printer-unreachable": "",
	} {
		code, sev, ok := classifyReason(raw)
		got := ""
		if ok {
			got = code + " " + string(sev)
		}
		if got != want {
			t.Errorf("classifyReason(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.holdJobs = true; p.impress, p.sheets = 2, 1 })
	h := newHarness(t, p.uri(), nil)
	printing, err := h.q.Submit(Ticket{Format: "application/pdf", Source: api.SourcePC}, strings.NewReader("%PDF one"))
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF two"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.waitReason(printing.ID, "job-printing")

	// A pending job is canceled at once, its document deleted.
	j, err := h.q.Cancel(waiting.ID)
	if err != nil || j.State != Canceled || !slices.Equal(j.Reasons, []string{"job-canceled-by-user"}) {
		t.Fatalf("Cancel pending: %+v %v", j, err)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, docName(waiting.ID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("document of a canceled job: %v", err)
	}
	if _, err := h.q.Cancel(waiting.ID); !errors.Is(err, ErrState) {
		t.Errorf("second Cancel: %v", err)
	}
	if _, err := h.q.Cancel(99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Cancel of no job: %v", err)
	}

	// A job on the printer is canceled there, then here.
	j, err = h.q.Cancel(printing.ID)
	if err != nil || j.State != Processing || !slices.Equal(j.Reasons, []string{"processing-to-stop-point"}) {
		t.Fatalf("Cancel printing: %+v %v", j, err)
	}
	done := h.waitState(printing.ID, Canceled)
	if done.Impressions != 2 {
		t.Errorf("canceled job %+v", done)
	}
	if jobs := p.printJobs(); len(jobs) != 1 || jobs[0].state != Canceled {
		t.Errorf("printer jobs %+v", jobs)
	}
	evs := h.rec.waitEvents(t, 2)
	for _, ev := range evs {
		if ev.Type != api.EventPrintCanceled || ev.Reason != "job-canceled-by-user" {
			t.Errorf("event %+v", ev)
		}
	}
}

func TestCancelDuringUpload(t *testing.T) {
	p := newFakePrinter(t)
	block := make(chan struct{})
	p.set(func(p *fakePrinter) { p.block = block; p.holdJobs = true })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	<-p.blocked
	// The printer has the job but has not answered: the cancel aborts the
	// request, the queue finds the job on the printer and cancels it there.
	if _, err := h.q.Cancel(j.ID); err != nil {
		t.Fatal(err)
	}
	h.waitState(j.ID, Canceled)
	close(block)
	if jobs := p.printJobs(); len(jobs) != 1 || jobs[0].state != Canceled {
		t.Errorf("printer jobs %+v", jobs)
	}
}

// TestCrashMidForward stops Run while the printer holds a Print-Job
// without answering, as a kill -9 would: the job was on the printer, so the
// restarted queue finds it there instead of printing it again.
func TestCrashMidForward(t *testing.T) {
	p := newFakePrinter(t)
	block := make(chan struct{})
	p.set(func(p *fakePrinter) { p.block = block; p.noAll = true })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	<-p.blocked
	h.restart()
	close(block)
	if got, _ := h.q.Job(j.ID); got.State != Processing {
		t.Fatalf("after the crash the job is %+v", got)
	}
	p.set(func(p *fakePrinter) { p.block = nil })
	h.run()
	done := h.waitState(j.ID, Completed)
	if n := len(p.printJobs()); n != 1 || done.UpstreamID != 1 {
		t.Errorf("printer has %d jobs, job %+v; want it printed once", n, done)
	}
	if evs := h.rec.waitEvents(t, 1); evs[0].Type != api.EventPrintCompleted {
		t.Errorf("event %+v", evs[0])
	}
}

// markForwarding rewrites a job's metadata as a crash right after it was
// marked forwarding leaves it.
func markForwarding(t *testing.T, h *harness, id int) {
	t.Helper()
	h.q.mu.Lock()
	defer h.q.mu.Unlock()
	e := h.q.jobs[id]
	e.State, e.phase, e.Reasons, e.Started = Processing, phaseForwarding, []string{"job-outgoing"}, h.clock.Now()
	if err := h.q.saveJob(e); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryForwardingNotOnPrinter(t *testing.T) {
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	markForwarding(t, h, j.ID)
	// The printer has someone else's jobs, none of ours.
	p.addJob("relais-00000000-0000-7000-8000-000000000000", []byte("other"), Completed)
	h.restart()
	h.run()
	h.waitState(j.ID, Completed)
	if jobs := p.printJobs(); len(jobs) != 2 || string(jobs[1].doc) != "%PDF" {
		t.Errorf("printer jobs %+v, want ours printed once", jobs)
	}
}

func TestRecoveryWaitsForPrinter(t *testing.T) {
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	markForwarding(t, h, j.ID)
	p.addJob(jobTag(h.q.jobs[j.ID]), []byte("%PDF"), Processing)
	p.down()
	h.restart()
	h.run()
	got := h.waitReason(j.ID, "service-off-line")
	if got.State != Processing {
		t.Errorf("job %+v", got)
	}
	// Back: found on the printer, followed there, never sent again.
	p.up()
	d := h.clock.waitTimer(t, "the backoff", func(d time.Duration) bool { return d >= backoffMin && d <= backoffMax })
	h.clock.Advance(d)
	h.waitReason(j.ID, "job-printing")
	d = h.clock.waitTimer(t, "the job poll", func(d time.Duration) bool { return d >= minJobPoll && d <= maxJobPoll })
	p.finish(Completed)
	h.clock.Advance(d)
	h.waitState(j.ID, Completed)
	if n := len(p.printJobs()); n != 1 {
		t.Errorf("printer has %d jobs, want 1", n)
	}
}

func TestPrinterLostJob(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.holdJobs = true })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.waitReason(j.ID, "job-printing")
	h.clock.waitTimer(t, "the job poll", func(d time.Duration) bool { return d >= minJobPoll && d <= maxJobPoll })
	p.set(func(p *fakePrinter) { p.jobs = nil }) // the printer restarted
	h.clock.Advance(maxJobPoll)
	h.waitState(j.ID, Aborted)
	if evs := h.rec.waitEvents(t, 1); evs[0].Type != api.EventPrintFailed || evs[0].Reason != "job-lost" {
		t.Errorf("event %+v", evs[0])
	}
	if n := len(p.printJobs()); n != 0 {
		t.Errorf("the lost job was sent again")
	}
}

func TestSubmitNotBlockedBySlowPrinter(t *testing.T) {
	p := newFakePrinter(t)
	block := make(chan struct{})
	p.set(func(p *fakePrinter) { p.block = block })
	h := newHarness(t, p.uri(), nil)
	if _, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF first")); err != nil {
		t.Fatal(err)
	}
	h.run()
	<-p.blocked
	// The printer hangs on the first job; clients keep submitting.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader(fmt.Sprint("%PDF ", i)))
			errs <- err
			_ = h.q.Jobs()
			_ = h.q.Printer()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.q.Jobs()); n != 21 {
		t.Errorf("%d jobs", n)
	}
	ids := map[int]bool{}
	for _, j := range h.q.Jobs() {
		if ids[j.ID] {
			t.Errorf("id %d twice", j.ID)
		}
		ids[j.ID] = true
	}
	close(block)
}

func TestPrinterAttributesKept(t *testing.T) {
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), func(c *Config) { c.RefreshInterval = time.Hour })
	if h.q.Printer().Attrs != nil {
		t.Fatal("attributes before the printer ever answered")
	}
	h.run()
	eventually(t, "the full attributes", func() bool { return h.q.Printer().Attrs != nil })
	want := h.q.Printer().Attrs
	if keyword(want, "sides-default") != "one-sided" {
		t.Fatalf("attributes %v", want)
	}
	// The printer is off when the agent starts again: its capabilities are
	// still known, its state is not.
	p.down()
	h.restart()
	ps := h.q.Printer()
	if !ps.Attrs.Equal(want) || ps.Reachable {
		t.Errorf("after restart: %+v", ps)
	}
	// A refresh every RefreshInterval; a poll between refreshes asks only
	// for the state.
	p.up()
	h.run()
	eventually(t, "the printer", func() bool { return h.q.Printer().Reachable })
	p.set(func(p *fakePrinter) { p.bodies = nil })
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == h.cfg.PollInterval })
	h.clock.Advance(h.cfg.PollInterval)
	eventually(t, "a poll", func() bool { return len(p.allBodies()) > 0 })
	if !bytes.Contains(p.allBodies(), []byte("marker-levels")) || bytes.Contains(p.allBodies(), []byte("all")) {
		t.Error("the poll between refreshes did not ask for the state only")
	}
	p.set(func(p *fakePrinter) { p.bodies = nil })
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == h.cfg.PollInterval })
	h.clock.Advance(time.Hour)
	eventually(t, "a refresh", func() bool { return bytes.Contains(p.allBodies(), []byte("all")) })
}

// A printer that does not support which-jobs all, and does not say so,
// answers with its default (not-completed) instead: the queue notices and
// asks for the completed jobs too.
func TestFindUpstreamWhichJobs(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.noAll, p.hideWhich = true, true })
	h := newHarness(t, p.uri(), nil)
	p.addJob("relais-other", nil, Processing)
	id := p.addJob("relais-ours", nil, Completed)
	j, ok, err := h.q.findUpstream(t.Context(), "relais-ours")
	if err != nil || !ok || j.ID != id || j.State != Completed {
		t.Fatalf("findUpstream: %+v %v %v", j, ok, err)
	}
	if _, ok, err := h.q.findUpstream(t.Context(), "relais-none"); ok || err != nil {
		t.Fatalf("findUpstream of no job: %v %v", ok, err)
	}
}

// A printer that hides job names cannot tell whether it got an interrupted
// job: the job is given up, not sent a second time.
func TestRecoveryNamesHidden(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.hideNames = true })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	markForwarding(t, h, j.ID)
	p.addJob(jobTag(h.q.jobs[j.ID]), []byte("%PDF"), Completed)
	h.restart()
	h.run()
	h.waitState(j.ID, Aborted)
	if n := p.count(goipp.OpPrintJob); n != 0 {
		t.Errorf("%d Print-Jobs, want none", n)
	}
	if ev := h.rec.waitEvents(t, 1)[0]; ev.Type != api.EventPrintFailed || ev.Reason != "job-lost" {
		t.Errorf("event %+v", ev)
	}
}

// Print-Jobs that never get an answer, while the printer lists no such
// job: sent again a bounded number of times, then given up.
func TestResendsBounded(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.drop = true })
	h := newHarness(t, p.uri(), nil)
	j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	for range maxResends + 1 {
		d := h.clock.waitTimer(t, "the backoff", func(d time.Duration) bool { return d < h.cfg.PollInterval })
		if got, _ := h.q.Job(j.ID); got.State != Processing || !slices.Contains(got.Reasons, "job-outgoing") {
			t.Fatalf("job after a Print-Job cut short: %+v", got)
		}
		h.clock.Advance(d)
	}
	h.waitState(j.ID, Aborted)
	if n := p.count(goipp.OpPrintJob); n != maxResends+1 {
		t.Errorf("%d Print-Jobs, want %d", n, maxResends+1)
	}
}
