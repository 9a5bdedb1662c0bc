package ippserver

import (
	"errors"
	"sort"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// creationAttrs is what Print-Job and Create-Job return of the new job.
var creationAttrs = []string{
	"job-id", "job-uri", "job-state", "job-state-reasons", "job-state-message", "number-of-intervening-jobs",
}

// newJob validates what Print-Job, Validate-Job and Create-Job share: the
// job's name and ticket, and the document format when given.
func (s *Server) newJob(c *call) (*capabilities, printq.Ticket, *response) {
	caps := s.capsFor(s.q.Printer())
	format, resp := c.declaredFormat(caps)
	if resp != nil {
		return nil, printq.Ticket{}, resp
	}
	if _, resp := c.compression(); resp != nil {
		return nil, printq.Ticket{}, resp
	}
	for _, name := range []string{"document-name", "job-name"} {
		if _, resp := c.name(name); resp != nil {
			return nil, printq.Ticket{}, resp
		}
	}
	// The size the client announces (RFC 8011 section 4.2.1.1).
	if k, resp := c.integer("job-k-octets", 0, 1<<31-1, 0); resp != nil {
		return nil, printq.Ticket{}, resp
	} else if int64(k) > (s.cfg.MaxJobBytes+1023)>>10 {
		c.unsupportedValue(c.attrs["job-k-octets"])
		return nil, printq.Ticket{}, c.tooLarge()
	}
	tmpl, hold, resp := c.template(caps)
	if resp != nil {
		return nil, printq.Ticket{}, resp
	}
	t, resp := c.ticket(format, tmpl, hold)
	return caps, t, resp
}

// rateLimited answers a client that creates jobs too fast. The status is
// client-error-not-possible, not server-error-busy: clients retry on busy,
// and the design promises that jobs are queued, never answered busy; this
// is a limit of the site, like the quota.
func (c *call) rateLimited() *response {
	if c.s.limit.allow(c.client) {
		return nil
	}
	return fail(goipp.StatusErrorNotPossible,
		"too many jobs from this device (more than %d a minute): wait a minute and print again", c.s.cfg.JobsPerClientPerMinute)
}

// printJob is Print-Job (RFC 8011 section 4.2.1).
func (s *Server) printJob(c *call) *response {
	caps, t, resp := s.newJob(c)
	if resp != nil {
		return resp
	}
	comp, _ := c.compression()
	doc, format, resp := c.document(caps, t.Format, comp)
	if resp != nil {
		return resp
	}
	t.Format = format
	if resp := c.rateLimited(); resp != nil {
		return resp
	}
	j, err := s.q.Submit(t, doc)
	if err != nil {
		return c.queueError(err, doc)
	}
	return c.jobResponse(j, creationAttrs)
}

// validateJob is Validate-Job (RFC 8011 section 4.2.3).
func (s *Server) validateJob(c *call) *response {
	if _, _, resp := s.newJob(c); resp != nil {
		return resp
	}
	return ok()
}

// createJob is Create-Job (RFC 8011 section 4.2.4). The document comes
// with Send-Document; the queue aborts a job whose document does not come
// in time (printq.MultipleOperationTimeout).
func (s *Server) createJob(c *call) *response {
	_, t, resp := s.newJob(c)
	if resp != nil {
		return resp
	}
	if t.Format == formatOctetStream {
		t.Format = ""
	}
	if resp := c.rateLimited(); resp != nil {
		return resp
	}
	j, err := s.q.Create(t)
	if err != nil {
		return c.queueError(err, nil)
	}
	return c.jobResponse(j, creationAttrs)
}

// target returns the job a request is about, checking that the requester
// may act on it.
func (s *Server) target(c *call) (printq.Job, *response) {
	id, resp := c.jobID()
	if resp != nil {
		return printq.Job{}, resp
	}
	j, found := s.q.Job(id)
	if !found {
		return printq.Job{}, fail(goipp.StatusErrorNotFound, "job %d does not exist", id)
	}
	if !c.owns(j) {
		return printq.Job{}, fail(goipp.StatusErrorNotAuthorized, "job %d belongs to someone else", id)
	}
	return j, nil
}

// owns tells whether the requester may act on a job: the same user name,
// or the same device.
func (c *call) owns(j printq.Job) bool {
	return (c.user != "" && c.user == j.User) || (c.client != "" && c.client == j.Client)
}

// mine tells whether a job is the requester's for my-jobs and
// Cancel-My-Jobs: the same user name when one is given, else the same
// device.
func (c *call) mine(j printq.Job) bool {
	if c.user != "" {
		return c.user == j.User
	}
	return c.client == j.Client
}

// sendDocument is Send-Document (RFC 8011 section 4.3.1). Jobs hold one
// document: with no data and last-document=true it closes the job.
func (s *Server) sendDocument(c *call) *response {
	last, found, resp := c.single("last-document", goipp.TagBoolean)
	switch {
	case resp != nil:
		return resp
	case !found:
		return fail(goipp.StatusErrorBadRequest, "last-document is missing")
	}
	j, resp := s.target(c)
	if resp != nil {
		return resp
	}
	if j.State.Terminal() {
		return fail(goipp.StatusErrorNotPossible, "job %d is finished", j.ID)
	}
	if !c.hasData() && bool(last.(goipp.Boolean)) {
		// The end of the job, as IPP/1.1 clients say it.
		j, err := s.q.CloseJob(j.ID)
		if err != nil {
			return c.queueError(err, nil)
		}
		return c.jobResponse(j, creationAttrs)
	}
	if j.HasDoc {
		return fail(goipp.StatusErrorMultipleJobsNotSupported, "a job holds one document")
	}
	caps := s.capsFor(s.q.Printer())
	format, resp := c.declaredFormat(caps)
	if resp != nil {
		return resp
	}
	if _, found := c.attrs["document-format"]; !found && j.Format != "" {
		format = j.Format
	}
	comp, resp := c.compression()
	if resp != nil {
		return resp
	}
	if _, resp := c.name("document-name"); resp != nil {
		return resp
	}
	doc, format, resp := c.document(caps, format, comp)
	if resp != nil {
		return resp
	}
	got, err := s.q.SendDocument(j.ID, format, doc, bool(last.(goipp.Boolean)))
	if err != nil {
		if now, found := s.q.Job(j.ID); errors.Is(err, printq.ErrState) && found && now.HasDoc {
			return fail(goipp.StatusErrorMultipleJobsNotSupported, "a job holds one document")
		}
		return c.queueError(err, doc)
	}
	return c.jobResponse(got, creationAttrs)
}

// closeJob is Close-Job (PWG 5100.11 section 7.1).
func (s *Server) closeJob(c *call) *response {
	j, resp := s.target(c)
	if resp != nil {
		return resp
	}
	j, err := s.q.CloseJob(j.ID)
	if err != nil {
		return c.queueError(err, nil)
	}
	return c.jobResponse(j, creationAttrs)
}

// cancelJob is Cancel-Job (RFC 8011 section 4.3.3).
func (s *Server) cancelJob(c *call) *response {
	j, resp := s.target(c)
	if resp != nil {
		return resp
	}
	if j.State.Terminal() {
		return fail(goipp.StatusErrorNotPossible, "job %d is already finished", j.ID)
	}
	if _, err := s.q.Cancel(j.ID); err != nil {
		return c.queueError(err, nil)
	}
	return ok()
}

// cancelMyJobs is Cancel-My-Jobs (PWG 5100.11 section 7.3): the
// requester's unfinished jobs, or those of job-ids. Jobs that cannot be
// canceled are returned in job-ids of the unsupported group.
func (s *Server) cancelMyJobs(c *call) *response {
	ids, resp := c.jobIDs()
	if resp != nil {
		return resp
	}
	var targets []printq.Job
	if ids == nil {
		for _, j := range s.q.Jobs() {
			if c.mine(j) && !j.State.Terminal() {
				targets = append(targets, j)
			}
		}
	} else {
		for _, id := range ids {
			j, found := s.q.Job(id)
			switch {
			case !found:
				return fail(goipp.StatusErrorNotFound, "job %d does not exist", id)
			case !c.owns(j):
				return fail(goipp.StatusErrorNotAuthorized, "job %d belongs to someone else", id)
			}
			targets = append(targets, j)
		}
	}
	var failed []goipp.Value
	for _, j := range targets {
		if j.State.Terminal() {
			failed = append(failed, goipp.Integer(j.ID))
			continue
		}
		if _, err := s.q.Cancel(j.ID); err != nil {
			failed = append(failed, goipp.Integer(j.ID))
		}
	}
	if len(failed) > 0 {
		c.addUnsupported(goipp.MakeAttr("job-ids", goipp.TagInteger, failed[0], failed[1:]...))
		return fail(goipp.StatusErrorNotPossible, "%d of the jobs could not be canceled", len(failed))
	}
	return ok()
}

// jobIDs returns the job-ids operation attribute, or nil.
func (c *call) jobIDs() ([]int, *response) {
	a, found := c.attrs["job-ids"]
	if !found {
		return nil, nil
	}
	if len(a.Values) == 0 || len(a.Values) > 1000 {
		return nil, c.badSyntax(a)
	}
	ids := make([]int, 0, len(a.Values))
	for _, v := range a.Values {
		if v.T != goipp.TagInteger || int(v.V.(goipp.Integer)) < 1 {
			return nil, c.badSyntax(a)
		}
		ids = append(ids, int(v.V.(goipp.Integer)))
	}
	return ids, nil
}

// getJobAttributes is Get-Job-Attributes (RFC 8011 section 4.3.4). Any
// client may ask; names are shown to the job's owner only.
func (s *Server) getJobAttributes(c *call) *response {
	req, resp := c.requested()
	if resp != nil {
		return resp
	}
	id, resp := c.jobID()
	if resp != nil {
		return resp
	}
	j, found := s.q.Job(id)
	if !found {
		return fail(goipp.StatusErrorNotFound, "job %d does not exist", id)
	}
	if req == nil {
		req = []string{"all"}
	}
	return ok(goipp.Group{Tag: goipp.TagJobGroup, Attrs: c.jobAttrs(j, s.q.Jobs(), newSelection(req))})
}

// whichJobs maps which-jobs values to the job states they select.
var whichJobs = map[string]func(printq.State) bool{
	"not-completed":      func(st printq.State) bool { return !st.Terminal() },
	"completed":          func(st printq.State) bool { return st.Terminal() },
	"all":                func(printq.State) bool { return true },
	"aborted":            func(st printq.State) bool { return st == printq.Aborted },
	"canceled":           func(st printq.State) bool { return st == printq.Canceled },
	"pending":            func(st printq.State) bool { return st == printq.Pending },
	"pending-held":       func(st printq.State) bool { return st == printq.Held },
	"processing":         func(st printq.State) bool { return st == printq.Processing },
	"processing-stopped": func(st printq.State) bool { return st == printq.Stopped },
}

// whichJobsSupported is which-jobs-supported.
var whichJobsSupported = []string{
	"completed", "not-completed", "all", "aborted", "canceled", "pending", "pending-held", "processing", "processing-stopped",
}

// getJobs is Get-Jobs (RFC 8011 section 4.2.6, PWG 5100.7 first-index and
// job-ids): not-completed jobs in queue order, completed ones most recent
// first.
func (s *Server) getJobs(c *call) *response {
	req, resp := c.requested()
	if resp != nil {
		return resp
	}
	which, resp := c.keyword("which-jobs", "not-completed")
	if resp != nil {
		return resp
	}
	selected, known := whichJobs[which]
	if !known {
		c.unsupportedValue(c.attrs["which-jobs"])
		return fail(goipp.StatusErrorAttributesOrValues, "which-jobs %q is not supported", truncate(which, 32))
	}
	my, resp := c.boolean("my-jobs", false)
	if resp != nil {
		return resp
	}
	limit, resp := c.integer("limit", 1, 1<<31-1, 1<<31-1)
	if resp != nil {
		return resp
	}
	first, resp := c.integer("first-index", 1, 1<<31-1, 1)
	if resp != nil {
		return resp
	}
	ids, resp := c.jobIDs()
	if resp != nil {
		return resp
	}
	if req == nil {
		req = []string{"job-id", "job-uri"}
	}
	all := s.q.Jobs()
	var list []printq.Job
	for _, j := range all {
		switch {
		case ids != nil && !containsInt(ids, j.ID):
		case ids == nil && !selected(j.State):
		case my && !c.mine(j):
		default:
			list = append(list, j)
		}
	}
	sort.SliceStable(list, func(a, b int) bool {
		ja, jb := list[a], list[b]
		if ta, tb := ja.State.Terminal(), jb.State.Terminal(); ta != tb {
			return tb
		} else if ta {
			if !ja.Finished.Equal(jb.Finished) {
				return ja.Finished.After(jb.Finished)
			}
			return ja.ID > jb.ID
		}
		return ja.ID < jb.ID
	})
	if first > len(list) {
		list = nil
	} else {
		list = list[first-1:]
	}
	if len(list) > limit {
		list = list[:limit]
	}
	sel := newSelection(req)
	r := ok()
	for _, j := range list {
		r.groups = append(r.groups, goipp.Group{Tag: goipp.TagJobGroup, Attrs: c.jobAttrs(j, all, sel)})
	}
	return r
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// jobResponse is the answer of operations that return a job's state.
func (c *call) jobResponse(j printq.Job, names []string) *response {
	return ok(goipp.Group{Tag: goipp.TagJobGroup, Attrs: c.jobAttrs(j, c.s.q.Jobs(), newSelection(names))})
}
