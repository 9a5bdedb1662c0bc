package printq

import (
	"context"
	"errors"
	"path/filepath"
	"slices"

	"github.com/OpenPrinting/goipp"
)

// reconcile finds out whether the printer got a job whose Print-Job was
// interrupted (by a crash or a lost connection): it looks for the job's tag
// among the printer's jobs. Found, the job is followed there; not found, it
// is sent again. While the printer cannot be asked, nothing is sent.
func (q *Queue) reconcile(ctx context.Context, id int) next {
	q.mu.Lock()
	e := q.jobs[id]
	if e == nil || e.phase != phaseForwarding {
		q.mu.Unlock()
		return goOn
	}
	tag := jobTag(e)
	q.mu.Unlock()

	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	up, found, err := q.findUpstream(opCtx, tag)

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		return stop
	case errors.Is(err, errNamesHidden):
		// Whether the printer has the job cannot be told: sending it again
		// could print it twice.
		q.log.Warn("the printer hides job names: an interrupted job is given up", "job", id)
		q.finish(e, Aborted, []string{"aborted-by-system"}, "job-lost", "the printer cannot tell whether it got the job")
	case err != nil:
		q.log.Warn("cannot check whether the printer has a job", "job", id, "err", err)
		q.update(e, e.State, []string{"job-outgoing", "service-off-line"}, "waiting for the printer to tell whether it has the job")
		return retryLater
	case found:
		q.log.Info("interrupted job found on the printer", "job", id, "upstream", up.ID)
		e.UpstreamID, e.phase = up.ID, phaseSent
		e.Reasons, e.Message = []string{"job-printing"}, "sent to the printer"
		if err := q.saveJob(e); err != nil {
			q.log.Error("saving a job", "job", id, "err", err)
		}
	case e.cancelAsked:
		q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
	case e.resends >= maxResends:
		// Every Print-Job of it was cut short: something is wrong with the
		// printer or the way to it, and it may yet print one of them.
		q.log.Warn("interrupted too often: job given up", "job", id)
		q.finish(e, Aborted, []string{"aborted-by-system"}, "job-lost", "sending to the printer failed")
	default:
		e.resends++
		q.log.Info("interrupted job not on the printer: sending it again", "job", id)
		q.unsend(e, []string{"job-queued"}, "queued")
	}
	return goOn
}

// follow asks the printer how a job it has is doing, cancels it there if
// asked to, and ends it when the printer has.
func (q *Queue) follow(ctx context.Context, id int) next {
	q.mu.Lock()
	e := q.jobs[id]
	if e == nil || e.phase != phaseSent {
		q.mu.Unlock()
		return goOn
	}
	upID, tag, format := e.UpstreamID, jobTag(e), e.Format
	cancelDue := e.cancelAsked && !e.cancelSent
	copies := intAttr(e.Template, "copies")
	q.mu.Unlock()

	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if cancelDue {
		if err := q.cancelUpstream(opCtx, upID); err != nil {
			if ctx.Err() != nil {
				return stop
			}
			q.log.Warn("Cancel-Job failed", "job", id, "upstream", upID, "err", err)
			return retryLater
		}
		q.mu.Lock()
		e.cancelSent = true
		q.mu.Unlock()
	}
	j, err := q.jobAttributes(opCtx, upID)
	counted := 0
	if err == nil && j.State == Completed && j.Impressions <= 0 && j.Total <= 0 && j.Pages <= 0 {
		// The printer counts nothing: count the document's pages.
		if n, ok := countPages(filepath.Join(q.cfg.Dir, docName(id)), format); ok {
			counted = n * max(copies, 1)
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	lost := isStatus(err, goipp.StatusErrorNotFound) || isStatus(err, goipp.StatusErrorGone) ||
		err == nil && j.HasName && j.Name != tag
	switch {
	case ctx.Err() != nil:
		return stop
	case lost && e.cancelAsked:
		q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
		return goOn
	case lost:
		// The printer restarted or forgot the job: whether it printed is
		// unknown, and sending it again could print it twice.
		q.log.Warn("the printer lost a job", "job", id, "upstream", upID)
		q.finish(e, Aborted, []string{"aborted-by-system"}, "job-lost", "the printer lost the job")
		return goOn
	case err != nil:
		q.log.Warn("Get-Job-Attributes failed", "job", id, "upstream", upID, "err", err)
		q.update(e, e.State, e.Reasons, "lost contact with the printer")
		return retryLater
	}
	e.Impressions, e.Sheets = max(j.Impressions, 0), max(j.Sheets, 0)
	switch j.State {
	case Completed:
		switch {
		case j.Impressions > 0:
		case j.Total > 0:
			e.Impressions = j.Total * max(copies, 1)
		case j.Pages > 0:
			e.Impressions = j.Pages
		default:
			e.Impressions = counted
		}
		q.finish(e, Completed, []string{"job-completed-successfully"}, "", "printed")
	case Canceled:
		if e.cancelAsked {
			q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
		} else {
			kw := specificReason(j.Reasons, "job-canceled-at-device")
			q.finish(e, Canceled, []string{kw}, kw, "canceled at the printer")
		}
	case Aborted:
		kw := specificReason(j.Reasons, "aborted-by-system")
		q.finish(e, Aborted, compactReasons("aborted-by-system", kw), kw, "the printer aborted the job")
	default:
		st, msg := Processing, "printing"
		if j.State == Stopped {
			st, msg = Stopped, "stopped at the printer"
		}
		reasons := upstreamReasons(j.Reasons)
		if e.cancelAsked {
			reasons, msg = []string{"processing-to-stop-point"}, "canceling"
		}
		q.update(e, st, reasons, msg)
		return pollLater
	}
	return goOn
}

// generic are job-state-reasons that say nothing of why a job ended.
var generic = map[string]bool{
	"none": true, "aborted-by-system": true, "job-completed-with-errors": true,
	"job-completed-with-warnings": true, "job-completed-successfully": true,
	"processing-to-stop-point": true, "job-printing": true, "queued-in-device": true,
}

// specificReason returns the first reason of an ended job that says why, or
// def.
func specificReason(reasons []string, def string) string {
	for _, r := range reasons {
		if !generic[r] && keywordRe.MatchString(r) {
			return r
		}
	}
	return def
}

func compactReasons(rs ...string) []string {
	return slices.Compact(rs)
}

// upstreamReasons are the printer's reasons for a job it is printing,
// mirrored on the queue's job.
func upstreamReasons(rs []string) []string {
	var out []string
	for _, r := range rs {
		if r != "none" && keywordRe.MatchString(r) && len(out) < maxJobReasons {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return []string{"job-printing"}
	}
	return out
}
