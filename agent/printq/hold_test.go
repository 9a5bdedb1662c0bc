package printq

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
)

func TestHoldReleaseExpiry(t *testing.T) {
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), func(c *Config) { c.Hold = true })
	release, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF released"))
	if err != nil {
		t.Fatal(err)
	}
	if release.State != Held || !slices.Equal(release.Reasons, []string{"job-hold-until-specified"}) ||
		!release.HoldUntil.Equal(h.clock.Now().Add(DefaultHoldExpiry)) {
		t.Fatalf("held job %+v", release)
	}
	forgotten, err := h.q.Submit(Ticket{Format: "application/pdf", Source: api.SourcePhone}, strings.NewReader("%PDF forgotten"))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	eventually(t, "the first poll", func() bool { return h.q.Printer().Reachable })
	if n := len(p.printJobs()); n != 0 {
		t.Fatalf("a held job was printed")
	}
	if _, err := h.q.Release(release.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Release(release.ID); !errors.Is(err, ErrState) {
		t.Errorf("second Release: %v", err)
	}
	h.waitState(release.ID, Completed)

	// Not released in time: canceled, its document deleted.
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == h.cfg.PollInterval })
	h.clock.Advance(DefaultHoldExpiry)
	got := h.waitState(forgotten.ID, Canceled)
	if !slices.Equal(got.Reasons, []string{"job-canceled-after-timeout"}) || !got.HoldUntil.IsZero() {
		t.Errorf("expired job %+v", got)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, docName(forgotten.ID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("document of an expired job: %v", err)
	}
	evs := h.rec.waitEvents(t, 2)
	if evs[1].Type != api.EventPrintCanceled || evs[1].Reason != "hold-expired" || *evs[1].Pages != 0 || evs[1].Source != api.SourcePhone {
		t.Errorf("event %+v", evs[1])
	}
	if n := len(p.printJobs()); n != 1 {
		t.Errorf("printer has %d jobs", n)
	}
}

func TestTicketHoldAndReleaseAll(t *testing.T) {
	h := newHarness(t, "", nil)
	var held []int
	for i := range 3 {
		j, err := h.q.Submit(Ticket{Hold: i != 1}, strings.NewReader("doc"))
		if err != nil {
			t.Fatal(err)
		}
		if j.Hold != (i != 1) || (j.State == Held) != j.Hold {
			t.Fatalf("job %+v", j)
		}
		if j.Hold {
			held = append(held, j.ID)
		}
	}
	// The hold survives a restart.
	h.restart()
	n, err := h.q.ReleaseAll()
	if err != nil || n != 2 {
		t.Fatalf("ReleaseAll: %d %v", n, err)
	}
	for _, id := range held {
		if j, _ := h.q.Job(id); j.State != Pending || !j.HoldUntil.IsZero() {
			t.Errorf("released job %+v", j)
		}
	}
	if n, _ := h.q.ReleaseAll(); n != 0 {
		t.Errorf("second ReleaseAll released %d", n)
	}
}

func TestQuota(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.impress = 2 })
	h := newHarness(t, p.uri(), func(c *Config) { c.QuotaPagesPerDay = 3 })
	h.run()
	for i := range 2 {
		j, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF"))
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		h.waitState(j.ID, Completed)
	}
	if _, err := h.q.Submit(Ticket{Format: "application/pdf"}, strings.NewReader("%PDF")); !errors.Is(err, ErrQuota) {
		t.Fatalf("Submit past the quota: %v", err)
	}
	if _, err := h.q.Create(Ticket{}); !errors.Is(err, ErrQuota) {
		t.Fatalf("Create past the quota: %v", err)
	}
	// Central's test page is not the site's printing.
	if _, err := h.q.Submit(Ticket{Source: api.SourceCentral}, strings.NewReader("%PDF")); err != nil {
		t.Fatalf("test page: %v", err)
	}
	// The count survives a restart, and ends with the day.
	h.restart()
	if _, err := h.q.Submit(Ticket{}, strings.NewReader("%PDF")); !errors.Is(err, ErrQuota) {
		t.Fatalf("after restart: %v", err)
	}
	h.clock.Advance(24 * time.Hour)
	if _, err := h.q.Submit(Ticket{}, strings.NewReader("%PDF")); err != nil {
		t.Fatalf("the next day: %v", err)
	}
}

func TestCreateSendClose(t *testing.T) {
	p := newFakePrinter(t)
	h := newHarness(t, p.uri(), nil)
	h.run()
	j, err := h.q.Create(Ticket{Name: "scan.pdf", Format: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != Held || !slices.Equal(j.Reasons, []string{"job-incoming"}) || j.HasDoc {
		t.Fatalf("created job %+v", j)
	}
	if _, err := h.q.Release(j.ID); !errors.Is(err, ErrState) {
		t.Errorf("Release of an incoming job: %v", err)
	}
	if _, err := h.q.Document(j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Document before Send-Document: %v", err)
	}
	got, err := h.q.SendDocument(j.ID, "application/pdf", strings.NewReader("%PDF sent"), false)
	if err != nil || got.State != Held || !got.HasDoc || got.Format != "application/pdf" {
		t.Fatalf("SendDocument: %+v %v", got, err)
	}
	if _, err := h.q.SendDocument(j.ID, "", strings.NewReader("another"), true); !errors.Is(err, ErrState) {
		t.Errorf("a second document: %v", err)
	}
	// An empty last Send-Document closes the job, as Close-Job does.
	got, err = h.q.SendDocument(j.ID, "", strings.NewReader(""), true)
	if err != nil || got.State != Pending {
		t.Fatalf("empty last SendDocument: %+v %v", got, err)
	}
	h.waitState(j.ID, Completed)
	if jobs := p.printJobs(); len(jobs) != 1 || string(jobs[0].doc) != "%PDF sent" || jobs[0].format != "application/pdf" {
		t.Errorf("printer jobs %+v", jobs)
	}
	if _, err := h.q.CloseJob(j.ID); !errors.Is(err, ErrState) {
		t.Errorf("CloseJob of a completed job: %v", err)
	}

	// Close-Job with no document aborts the job, without an event.
	j, err = h.q.Create(Ticket{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h.q.CloseJob(j.ID); err != nil || got.State != Aborted {
		t.Fatalf("CloseJob with no document: %+v %v", got, err)
	}
	h.q.flushEvents()
	if evs := h.rec.all(); len(evs) != 1 {
		t.Errorf("events %+v", evs)
	}
}

func TestIncomingTimeout(t *testing.T) {
	h := newHarness(t, "", nil)
	empty, err := h.q.Create(Ticket{})
	if err != nil {
		t.Fatal(err)
	}
	open, err := h.q.Create(Ticket{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.SendDocument(open.ID, "", strings.NewReader("%PDF"), false); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.clock.waitTimer(t, "the poll", func(d time.Duration) bool { return d == h.cfg.PollInterval })
	h.clock.Advance(h.cfg.PollInterval) // more than MultipleOperationTimeout
	h.waitState(empty.ID, Aborted)
	got := h.waitState(open.ID, Held)
	if !slices.Equal(got.Reasons, []string{"job-hold-until-specified"}) {
		t.Errorf("job closed by the timeout %+v", got)
	}
}

func TestEventRecordingRetried(t *testing.T) {
	h := newHarness(t, "", nil)
	h.rec.fail = 1
	j, err := h.q.Submit(Ticket{}, strings.NewReader("doc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Cancel(j.ID); err != nil {
		t.Fatal(err)
	}
	h.run()
	// The outbox failed once; the event stays due, across a restart.
	eventually(t, "the failed attempt", func() bool {
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		return h.rec.fail == 0
	})
	h.restart()
	h.run()
	evs := h.rec.waitEvents(t, 1)
	if evs[0].Type != api.EventPrintCanceled {
		t.Errorf("event %+v", evs[0])
	}
	h.restart()
	h.run()
	h.q.flushEvents()
	if n := len(h.rec.all()); n != 1 {
		t.Errorf("%d events after a second restart, want 1", n)
	}
}
