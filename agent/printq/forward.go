package printq

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
)

// Forwarding timings and bounds.
const (
	minJobPoll      = 250 * time.Millisecond // a job just sent is polled this soon, then ever less often
	maxJobPoll      = 2 * time.Second        // a job on the printer is polled at most this far apart
	opTimeout       = 20 * time.Second       // Get-Jobs, Get-Job-Attributes, Cancel-Job
	maxServerErrors = 5                      // Print-Jobs failing with server-error-internal-error or -device-error
	maxResends      = 3                      // Print-Jobs cut short (the printer may have the job) before a job is given up
	maxJobReasons   = 8
)

// printTimeout bounds a Print-Job: two minutes, plus a second for every
// 64 KiB of document.
func printTimeout(size int64) time.Duration {
	return 2*time.Minute + time.Duration(size/(64<<10))*time.Second
}

// next says what the forwarder does after a step.
type next int

const (
	goOn        next = iota // take the next step at once
	pollLater               // the printer is printing the job: ask again later
	retryLater              // a failure: retry after the backoff delay
	waitPrinter             // the printer is not ready: wait for it to change
	stop                    // Run is ending
)

// forwarder sends jobs to the printer one at a time, in id order, a job
// found mid-forward (after a crash) first.
func (q *Queue) forwarder(ctx context.Context) {
	var bo backoff
	last := 0
	poll := minJobPoll
	for ctx.Err() == nil {
		id, kick, ok := q.head()
		if !ok {
			select {
			case <-ctx.Done():
			case <-q.wake:
			}
			continue
		}
		if id != last {
			bo.reset()
			last = id
			poll = minJobPoll
		}
		n, change := q.step(ctx, id)
		switch n {
		case pollLater:
			bo.reset()
			// Most jobs finish within a second or two: poll soon, then
			// less often, so that a short job does not hold the queue.
			q.sleep(ctx, min(q.cfg.PollInterval, poll), kick)
			poll = min(2*poll, maxJobPoll)
		case retryLater:
			q.sleep(ctx, bo.next(), kick)
		case waitPrinter:
			select {
			case <-ctx.Done():
			case <-change:
			case <-kick:
			case <-q.wake:
			}
		}
	}
}

// sleep waits for d on the queue's clock, or until the current job is
// canceled or Run ends.
func (q *Queue) sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) {
	t := q.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case <-kick:
	}
}

// head returns the job to work on: one already given to the printer (there
// is at most one), else the oldest pending job.
func (q *Queue) head() (int, <-chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id := 0
	for _, i := range q.sortedIDs() {
		e := q.jobs[i]
		if e.State.Terminal() {
			continue
		}
		if e.phase != phaseNone {
			id = i
			break
		}
		if id == 0 && e.State == Pending {
			id = i
		}
	}
	if id == 0 {
		q.cur = nil
		return 0, nil, false
	}
	if q.cur == nil || q.cur.id != id {
		q.cur = &current{id: id, kick: make(chan struct{}, 1)}
	}
	return id, q.cur.kick, true
}

// step takes one step of forwarding a job, by its phase.
func (q *Queue) step(ctx context.Context, id int) (next, <-chan struct{}) {
	q.mu.Lock()
	e := q.jobs[id]
	if e == nil || e.State.Terminal() {
		q.mu.Unlock()
		return goOn, nil
	}
	ph := e.phase
	q.mu.Unlock()
	switch ph {
	case phaseForwarding:
		return q.reconcile(ctx, id), nil
	case phaseSent:
		return q.follow(ctx, id), nil
	}
	return q.send(ctx, id)
}

// update sets a job's state, reasons and message, and saves it if they
// changed. Callers hold q.mu.
func (q *Queue) update(e *entry, st State, reasons []string, msg string) {
	if e.State == st && slices.Equal(e.Reasons, reasons) && e.Message == msg {
		return
	}
	e.State, e.Reasons, e.Message = st, reasons, msg
	if err := q.saveJob(e); err != nil {
		q.log.Error("saving a job", "job", e.ID, "err", err)
	}
}

// unsend puts a job the printer does not have back to pending.
// Callers hold q.mu.
func (q *Queue) unsend(e *entry, reasons []string, msg string) {
	e.phase, e.UpstreamID = phaseNone, 0
	e.State, e.Reasons, e.Message = Pending, reasons, msg
	if err := q.saveJob(e); err != nil {
		q.log.Error("saving a job", "job", e.ID, "err", err)
	}
}

var errNoDocument = errors.New("printq: the spooled document is missing")

// send gives a pending job to the printer (Print-Job). The job is marked
// forwarding on disk before a byte is sent: from then on, until the
// printer's answer is saved, a restart finds out from the printer whether
// it got the job instead of sending it again.
func (q *Queue) send(ctx context.Context, id int) (next, <-chan struct{}) {
	q.mu.Lock()
	e := q.jobs[id]
	if e == nil || e.State != Pending || e.phase != phaseNone {
		q.mu.Unlock()
		return goOn, nil
	}
	if reasons, msg, blocked := q.notReady(); blocked {
		q.update(e, Pending, reasons, msg)
		change := q.pchange
		q.mu.Unlock()
		return waitPrinter, change
	}
	saved := *e
	e.State, e.phase = Processing, phaseForwarding
	e.Reasons, e.Message = []string{"job-outgoing"}, "sending to the printer"
	if e.Started.IsZero() {
		e.Started = q.clock.Now()
	}
	if err := q.saveJob(e); err != nil {
		*e = saved
		q.mu.Unlock()
		q.log.Error("saving a job", "job", id, "err", err)
		return retryLater, nil
	}
	req := q.printJobRequest(e)
	opCtx, abort := context.WithTimeout(ctx, printTimeout(e.Size))
	defer abort()
	if q.cur != nil && q.cur.id == id {
		q.cur.abort = abort
	}
	q.mu.Unlock()

	resp, err := q.postDocument(opCtx, req, id)

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cur != nil && q.cur.id == id {
		q.cur.abort = nil
	}
	if err == nil {
		if up := parseJob(resp.Job); up.ID > 0 {
			e.UpstreamID, e.phase = up.ID, phaseSent
			e.Reasons, e.Message = []string{"job-printing"}, "sent to the printer"
			if err := q.saveJob(e); err != nil {
				q.log.Error("saving a job", "job", id, "err", err)
			}
			q.log.Info("job sent to the printer", "job", id, "upstream", up.ID)
			return goOn, nil
		}
		// Accepted, but with no job-id to follow it by: the printer has it.
		q.log.Warn("the printer took a job without a job-id: not followed", "job", id)
		q.mu.Unlock()
		n, ok := countPages(filepath.Join(q.cfg.Dir, docName(id)), e.Format)
		q.mu.Lock()
		if ok {
			e.Impressions = n * max(intAttr(e.Template, "copies"), 1)
		}
		q.finish(e, Completed, []string{"job-completed-successfully", "queued-in-device"}, "", "sent to the printer, which tells no more")
		return goOn, nil
	}
	if errors.Is(err, errNoDocument) {
		q.finish(e, Aborted, []string{"aborted-by-system"}, "document-access-error", "the spooled document is missing")
		return goOn, nil
	}
	var se *upstream.StatusError
	switch {
	case errors.As(err, &se):
		return q.refused(e, se, resp), nil
	case ctx.Err() != nil:
		// Run is ending: the job stays forwarding, reconciled at the next start.
		return stop, nil
	case !reachedPrinter(err) && e.cancelAsked:
		q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
		return goOn, nil
	case !reachedPrinter(err):
		q.log.Warn("printer unreachable", "job", id, "err", err)
		q.unsend(e, []string{"service-off-line"}, "the printer does not answer")
		return retryLater, nil
	}
	q.log.Warn("Print-Job interrupted: checking with the printer", "job", id, "err", err)
	if e.cancelAsked {
		return goOn, nil
	}
	e.Message = "contact lost while sending: checking with the printer"
	return retryLater, nil
}

// postDocument sends a Print-Job with the job's spooled document.
func (q *Queue) postDocument(ctx context.Context, req *goipp.Message, id int) (*goipp.Message, error) {
	f, err := os.Open(filepath.Join(q.cfg.Dir, docName(id)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoDocument
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	return q.ipp.Do(ctx, req, f)
}

// refused handles a Print-Job the printer answered with an error: the
// printer does not have the job. Callers hold q.mu.
func (q *Queue) refused(e *entry, se *upstream.StatusError, resp *goipp.Message) next {
	kw := statusKeyword(se.Status)
	q.log.Warn("printer refused a job", "job", e.ID, "status", se.Status.String())
	if e.cancelAsked {
		q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
		return goOn
	}
	switch se.Status {
	case goipp.StatusErrorBusy, goipp.StatusErrorServiceUnavailable, goipp.StatusErrorTemporary,
		goipp.StatusErrorTooManyJobs:
		q.unsend(e, []string{"resources-are-not-ready"}, "the printer is busy ("+kw+")")
		return retryLater
	case goipp.StatusErrorNotAcceptingJobs, goipp.StatusErrorPrinterIsDeactivated:
		q.unsend(e, []string{"printer-stopped"}, "the printer does not accept jobs ("+kw+")")
		return retryLater
	case goipp.StatusErrorInternal, goipp.StatusErrorDevice:
		if e.attempts++; e.attempts < maxServerErrors {
			q.unsend(e, []string{"resources-are-not-ready"}, "the printer failed ("+kw+")")
			return retryLater
		}
	case goipp.StatusErrorAttributesOrValues, goipp.StatusErrorConflicting,
		goipp.StatusErrorDocumentFormatNotSupported:
		if !e.reduced {
			e.reduced = true
			q.reduce(e, se.Status, resp)
			q.unsend(e, []string{"job-queued"}, "sending again without what the printer refused")
			return goOn
		}
	}
	reasons := []string{"aborted-by-system"}
	switch se.Status {
	case goipp.StatusErrorDocumentFormatNotSupported:
		reasons = append(reasons, "unsupported-document-format")
	case goipp.StatusErrorDocumentFormatError:
		reasons = append(reasons, "document-format-error")
	case goipp.StatusErrorCompressionNotSupported:
		reasons = append(reasons, "unsupported-compression")
	}
	q.finish(e, Aborted, reasons, kw, "the printer refused the job ("+kw+")")
	return goOn
}

// reduce leaves out of the next Print-Job what the printer refused: the
// attributes of its unsupported group (all the template's when it names
// none), and an unsupported document-format, sent as
// application/octet-stream (auto-sensed) instead.
func (q *Queue) reduce(e *entry, st goipp.Status, resp *goipp.Message) {
	e.drop = map[string]bool{}
	format := st == goipp.StatusErrorDocumentFormatNotSupported
	if resp != nil {
		for _, a := range resp.Unsupported {
			if a.Name == "document-format" {
				format = true
			} else {
				e.drop[a.Name] = true
			}
		}
	}
	if format {
		e.fwdFormat = "application/octet-stream"
	} else if len(e.drop) == 0 {
		for _, a := range e.Template {
			e.drop[a.Name] = true
		}
	}
}
