package printq

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
)

// upstreamUser is the requesting-user-name of every request to the printer:
// the users' names stay on the site.
const upstreamUser = "relais"

// jobTag is the job-name of a job on the printer: a tag of the queue's own,
// by which recovery finds the job again, never the user's job name.
func jobTag(e *entry) string {
	return "relais-" + strings.TrimPrefix(e.UUID, "urn:uuid:")
}

// private lists the template attributes never forwarded: they name people
// or documents, or ask the printer to hold the job (print release is the
// queue's).
var private = map[string]bool{
	"job-name": true, "document-name": true, "requesting-user-name": true,
	"requesting-user-uri": true, "job-originating-user-name": true,
	"job-originating-user-uri": true, "job-account-id": true,
	"job-accounting-user-id": true, "job-accounting-sheets": true,
	"job-message-to-operator": true, "document-message": true,
	"job-password": true, "job-password-encryption": true,
	"job-hold-until": true, "job-hold-until-time": true,
	"job-release-action": true, "job-sheets": true, "job-sheets-col": true,
}

// printJobRequest builds the Print-Job of a job. Callers hold q.mu.
func (q *Queue) printJobRequest(e *entry) *goipp.Message {
	req := q.ipp.NewRequest(goipp.OpPrintJob)
	format := e.Format
	if e.fwdFormat != "" {
		format = e.fwdFormat
	}
	if format == "" {
		format = "application/octet-stream"
	}
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(upstreamUser)))
	req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(jobTag(e))))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String(format)))
	for _, a := range e.Template {
		if !private[a.Name] && !e.drop[a.Name] {
			req.Job.Add(a.DeepCopy())
		}
	}
	return req
}

// jobAttrs are the job attributes the queue reads from the printer.
var jobAttrs = []string{
	"job-id", "job-name", "job-state", "job-state-reasons",
	"job-impressions-completed", "job-media-sheets-completed",
	"job-impressions", "job-pages-completed",
}

func keywords(name string, vals []string) goipp.Attribute {
	a := goipp.Attribute{Name: name}
	for _, v := range vals {
		a.Values.Add(goipp.TagKeyword, goipp.String(v))
	}
	return a
}

// jobRequest builds a request about job id on the printer.
func (q *Queue) jobRequest(op goipp.Op, id int) *goipp.Message {
	req := q.ipp.NewRequest(op)
	req.Operation.Add(goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(id)))
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(upstreamUser)))
	return req
}

// upstreamJob is what the printer says of a job.
type upstreamJob struct {
	ID          int
	Name        string
	HasName     bool
	State       State
	Reasons     []string
	Impressions int // job-impressions-completed
	Sheets      int // job-media-sheets-completed
	Total       int // job-impressions: what the job holds
	Pages       int // job-pages-completed
}

func parseJob(attrs goipp.Attributes) upstreamJob {
	var j upstreamJob
	j.ID = intAttr(attrs, "job-id")
	if v := upstream.Find(attrs, "job-name"); len(v) > 0 {
		j.Name, j.HasName = v[0].V.String(), true
	}
	j.State = State(intAttr(attrs, "job-state"))
	for _, v := range upstream.Find(attrs, "job-state-reasons") {
		j.Reasons = append(j.Reasons, v.V.String())
	}
	j.Impressions = intAttr(attrs, "job-impressions-completed")
	j.Sheets = intAttr(attrs, "job-media-sheets-completed")
	j.Total = intAttr(attrs, "job-impressions")
	j.Pages = intAttr(attrs, "job-pages-completed")
	return j
}

// intAttr returns the first integer or enum value of an attribute, or 0.
func intAttr(attrs goipp.Attributes, name string) int {
	v := upstream.Find(attrs, name)
	if len(v) == 0 {
		return 0
	}
	if i, ok := v[0].V.(goipp.Integer); ok {
		return int(i)
	}
	return 0
}

// jobAttributes asks the printer for a job (Get-Job-Attributes).
func (q *Queue) jobAttributes(ctx context.Context, id int) (upstreamJob, error) {
	req := q.jobRequest(goipp.OpGetJobAttributes, id)
	req.Operation.Add(keywords("requested-attributes", jobAttrs))
	resp, err := q.ipp.Do(ctx, req, nil)
	if err != nil {
		return upstreamJob{}, err
	}
	return parseJob(resp.Job), nil
}

// cancelUpstream cancels a job on the printer (Cancel-Job). A job the
// printer no longer has, or has already ended, counts as canceled.
func (q *Queue) cancelUpstream(ctx context.Context, id int) error {
	_, err := q.ipp.Do(ctx, q.jobRequest(goipp.OpCancelJob, id), nil)
	var se *upstream.StatusError
	if errors.As(err, &se) && (se.Status == goipp.StatusErrorNotFound ||
		se.Status == goipp.StatusErrorGone || se.Status == goipp.StatusErrorNotPossible) {
		return nil
	}
	return err
}

// findUpstream looks for the job named tag among the printer's jobs
// (Get-Jobs): with which-jobs all, or, from a printer that does not support
// all (by its which-jobs-supported, an error, or a substituted value),
// not-completed then completed.
func (q *Queue) findUpstream(ctx context.Context, tag string) (upstreamJob, bool, error) {
	q.mu.Lock()
	which := upstream.Find(q.printer.Attrs, "which-jobs-supported")
	q.mu.Unlock()
	all := len(which) == 0
	for _, v := range which {
		all = all || v.V.String() == "all"
	}
	if all {
		j, ok, substituted, err := q.getJobs(ctx, "all", tag)
		switch {
		case err == nil && (ok || !substituted):
			return j, ok, nil
		case err != nil && !isStatus(err, goipp.StatusErrorAttributesOrValues) && !isStatus(err, goipp.StatusErrorBadRequest):
			return upstreamJob{}, false, err
		}
	}
	// Jobs only move from not-completed to completed: asking in this order
	// cannot miss one.
	for _, which := range []string{"not-completed", "completed"} {
		if j, ok, _, err := q.getJobs(ctx, which, tag); err != nil || ok {
			return j, ok, err
		}
	}
	return upstreamJob{}, false, nil
}

// getJobs asks the printer for its jobs of a kind and looks for the one
// named tag; substituted reports that the printer answered for another
// which-jobs than asked.
func (q *Queue) getJobs(ctx context.Context, which, tag string) (j upstreamJob, found, substituted bool, err error) {
	req := q.ipp.NewRequest(goipp.OpGetJobs)
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(upstreamUser)))
	req.Operation.Add(goipp.MakeAttribute("which-jobs", goipp.TagKeyword, goipp.String(which)))
	req.Operation.Add(keywords("requested-attributes", jobAttrs))
	resp, err := q.ipp.Do(ctx, req, nil)
	if err != nil {
		return upstreamJob{}, false, false, err
	}
	substituted = len(upstream.Find(resp.Unsupported, "which-jobs")) > 0
	jobs, named := 0, false
	for _, g := range resp.Groups {
		if g.Tag != goipp.TagJobGroup {
			continue
		}
		j := parseJob(g.Attrs)
		if j.Name == tag && j.ID > 0 {
			return j, true, substituted, nil
		}
		jobs++
		named = named || j.HasName
	}
	if jobs > 0 && !named {
		return upstreamJob{}, false, substituted, errNamesHidden
	}
	return upstreamJob{}, false, substituted, nil
}

// errNamesHidden is a Get-Jobs answer whose jobs have no names: the printer
// keeps them private, and a job cannot be found by its tag.
var errNamesHidden = errors.New("printq: the printer hides job names")

func isStatus(err error, st goipp.Status) bool {
	var se *upstream.StatusError
	return errors.As(err, &se) && se.Status == st
}

// reachedPrinter reports whether a failed request may have been processed
// by the printer. Only a request that never got a connection surely was
// not; every other failure is ambiguous.
func reachedPrinter(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// statusKeyword is an IPP status as a reason keyword, without its class
// prefix: client-error-document-format-not-supported gives
// document-format-not-supported.
func statusKeyword(st goipp.Status) string {
	s := st.String()
	for _, p := range []string{"client-error-", "server-error-", "successful-"} {
		if k, ok := strings.CutPrefix(s, p); ok {
			return k
		}
	}
	return s
}
