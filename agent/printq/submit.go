package printq

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
)

// ErrTicket is returned for a ticket the queue cannot keep: a field longer
// than IPP allows, an unknown source, or template attributes that do not
// encode.
var ErrTicket = errors.New("printq: invalid ticket")

// Bounds of a ticket's fields, in bytes (IPP's name, text and mimeMediaType
// limits).
const (
	maxNameBytes   = 255
	maxFormatBytes = 255
	maxClientBytes = 64
)

// checkTicket bounds the ticket and replaces its template with a copy that
// is exactly what is written to disk.
func checkTicket(t *Ticket) error {
	switch {
	case len(t.Name) > maxNameBytes, len(t.User) > maxNameBytes:
		return fmt.Errorf("%w: name longer than %d bytes", ErrTicket, maxNameBytes)
	case len(t.Format) > maxFormatBytes:
		return fmt.Errorf("%w: document-format longer than %d bytes", ErrTicket, maxFormatBytes)
	case len(t.Client) > maxClientBytes:
		return fmt.Errorf("%w: client address longer than %d bytes", ErrTicket, maxClientBytes)
	}
	switch t.Source {
	case "", api.SourcePC, api.SourcePhone, api.SourceCopy, api.SourceCentral:
	default:
		return fmt.Errorf("%w: source %q", ErrTicket, t.Source)
	}
	b, err := encodeTemplate(t.Template)
	if err != nil {
		return fmt.Errorf("%w: template: %v", ErrTicket, err)
	}
	if t.Template, err = decodeTemplate(b); err != nil {
		return fmt.Errorf("%w: template: %v", ErrTicket, err)
	}
	return nil
}

// admit refuses a new job when the queue is closed or the quota is reached.
// Callers hold q.mu.
func (q *Queue) admit(src api.Source) error {
	if q.closed {
		return ErrClosed
	}
	// Test pages asked by central are not the site's printing.
	if q.cfg.QuotaPagesPerDay > 0 && src != api.SourceCentral &&
		q.st.Day == q.today() && q.st.Pages >= q.cfg.QuotaPagesPerDay {
		return ErrQuota
	}
	return nil
}

// today is the site's local day.
func (q *Queue) today() string {
	return q.clock.Now().In(time.Local).Format(time.DateOnly)
}

// countPages adds impressions to today's count. Callers hold q.mu.
func (q *Queue) countPages(n int) {
	if n <= 0 {
		return
	}
	if d := q.today(); q.st.Day != d {
		q.st.Day, q.st.Pages = d, 0
	}
	q.st.Pages += n
	if err := q.saveState(); err != nil {
		q.log.Error("saving the page count", "err", err)
	}
}

// newEntry makes a job with a new id, the id counter durable first so that
// ids are never reused. Callers hold q.mu.
func (q *Queue) newEntry(t Ticket) (*entry, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	id := q.st.NextID
	q.st.NextID++
	if err := q.saveState(); err != nil {
		q.st.NextID--
		return nil, err
	}
	return &entry{Job: Job{ID: id, UUID: "urn:uuid:" + u.String(), Ticket: t, Created: q.clock.Now()}}, nil
}

// enqueue places a job whose document is complete: held when print release
// is on or the ticket asks for it, pending otherwise. Callers hold q.mu.
func (q *Queue) enqueue(e *entry) {
	e.incoming = time.Time{}
	if q.cfg.Hold || e.Ticket.Hold {
		e.State, e.Reasons, e.Message = Held, []string{"job-hold-until-specified"}, "waiting to be released"
		e.HoldUntil = q.clock.Now().Add(q.cfg.HoldExpiry)
		return
	}
	e.State, e.Reasons, e.Message = Pending, []string{"job-queued"}, "queued"
}

// Submit spools a job with its document (Print-Job). The document and the
// job's metadata are fsynced before it returns. A document larger than
// MaxJobBytes gives ErrTooLarge, a full disk ErrStorageFull, a failing
// reader its error; in each case nothing is left behind. Past the day's
// quota (QuotaPagesPerDay, test pages from central aside) it is ErrQuota, an
// out-of-bounds ticket ErrTicket, after Close ErrClosed.
func (q *Queue) Submit(t Ticket, doc io.Reader) (Job, error) {
	if err := checkTicket(&t); err != nil {
		return Job{}, err
	}
	q.mu.Lock()
	err := q.admit(t.Source)
	q.mu.Unlock()
	if err != nil {
		return Job{}, err
	}
	tmp, n, err := spoolDocument(q.cfg.Dir, doc, q.cfg.MaxJobBytes)
	if err != nil {
		return Job{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		os.Remove(tmp)
		return Job{}, ErrClosed
	}
	e, err := q.newEntry(t)
	if err != nil {
		os.Remove(tmp)
		return Job{}, err
	}
	e.Size, e.HasDoc = n, true
	q.enqueue(e)
	if err := q.install(e, tmp); err != nil {
		return Job{}, err
	}
	q.jobs[e.ID] = e
	notify(q.wake)
	return e.snapshot(), nil
}

// install renames a spooled document into place and writes the job's
// metadata; on error neither is left. Callers hold q.mu.
func (q *Queue) install(e *entry, tmp string) error {
	doc := filepath.Join(q.cfg.Dir, docName(e.ID))
	err := os.Rename(tmp, doc)
	if err == nil {
		err = syncDir(q.cfg.Dir)
	}
	if err == nil {
		err = q.saveJob(e)
	}
	if err != nil {
		os.Remove(tmp)
		os.Remove(doc)
		os.Remove(filepath.Join(q.cfg.Dir, metaName(e.ID)))
		return storageError(err)
	}
	return nil
}

// Create makes a job that waits for its document (Create-Job): held, with
// job-state-reasons job-incoming, as RFC 8011 has it, until SendDocument
// with last set or CloseJob. A job left waiting longer than
// MultipleOperationTimeout is processed with its document, or aborted if it
// has none. Past the day's quota it is ErrQuota.
func (q *Queue) Create(t Ticket) (Job, error) {
	if err := checkTicket(&t); err != nil {
		return Job{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.admit(t.Source); err != nil {
		return Job{}, err
	}
	e, err := q.newEntry(t)
	if err != nil {
		return Job{}, err
	}
	e.State, e.Reasons, e.Message = Held, []string{"job-incoming"}, "waiting for the document"
	e.incoming = e.Created
	if err := q.saveJob(e); err != nil {
		return Job{}, err
	}
	q.jobs[e.ID] = e
	return e.snapshot(), nil
}

// SendDocument spools the document of a job made by Create (Send-Document);
// format, if not empty, replaces the ticket's document-format. A job has one
// document: a second one is ErrState, except an empty one with last set,
// which closes the job as CloseJob does. If the document cannot be spooled
// (too large, a failing reader, a full disk) the job is aborted and the
// error returned.
func (q *Queue) SendDocument(id int, format string, doc io.Reader, last bool) (Job, error) {
	if len(format) > maxFormatBytes {
		return Job{}, fmt.Errorf("%w: document-format longer than %d bytes", ErrTicket, maxFormatBytes)
	}
	q.mu.Lock()
	e, ok := q.jobs[id]
	switch {
	case !ok:
		q.mu.Unlock()
		return Job{}, ErrNotFound
	case q.closed:
		q.mu.Unlock()
		return Job{}, ErrClosed
	case e.incoming.IsZero() || e.receiving:
		q.mu.Unlock()
		return Job{}, ErrState
	case e.HasDoc:
		q.mu.Unlock()
		var b [1]byte
		if n, err := io.ReadFull(doc, b[:]); last && n == 0 && errors.Is(err, io.EOF) {
			return q.CloseJob(id)
		}
		return Job{}, ErrState
	}
	e.receiving = true
	q.mu.Unlock()

	tmp, n, err := spoolDocument(q.cfg.Dir, doc, q.cfg.MaxJobBytes)

	q.mu.Lock()
	defer q.mu.Unlock()
	e.receiving = false
	if err != nil {
		if !e.incoming.IsZero() && !e.State.Terminal() {
			q.finish(e, Aborted, []string{"aborted-by-system", "submission-interrupted"}, "", "the document could not be received")
		}
		return Job{}, err
	}
	switch {
	case q.closed:
		os.Remove(tmp)
		return Job{}, ErrClosed
	case e.incoming.IsZero() || e.State.Terminal():
		// Canceled or timed out while the document was streaming.
		os.Remove(tmp)
		return Job{}, ErrState
	}
	saved := *e
	if format != "" {
		e.Format = format
	}
	e.Size, e.HasDoc = n, true
	e.incoming = q.clock.Now()
	if last {
		q.enqueue(e)
	}
	if err := q.install(e, tmp); err != nil {
		*e = saved
		return Job{}, err
	}
	notify(q.wake)
	return e.snapshot(), nil
}

// CloseJob ends the document list of a job made by Create (Close-Job, PWG
// 5100.7): the job goes on with the document it has; one with no document
// is aborted.
func (q *Queue) CloseJob(id int) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	switch {
	case !ok:
		return Job{}, ErrNotFound
	case e.incoming.IsZero() || e.receiving:
		return Job{}, ErrState
	case !e.HasDoc:
		err := q.finish(e, Aborted, []string{"aborted-by-system"}, "", "closed with no document")
		return e.snapshot(), err
	}
	saved := *e
	q.enqueue(e)
	if err := q.saveJob(e); err != nil {
		*e = saved
		return Job{}, err
	}
	notify(q.wake)
	return e.snapshot(), nil
}

// Cancel cancels a job that is not terminal. A pending or held job is
// canceled at once and its document deleted. A job the printer may already
// have stays processing, with job-state-reasons processing-to-stop-point,
// until Cancel-Job has reached the printer and the printer has ended it.
func (q *Queue) Cancel(id int) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	switch {
	case !ok:
		return Job{}, ErrNotFound
	case e.State.Terminal():
		return Job{}, ErrState
	case e.phase == phaseNone:
		err := q.finish(e, Canceled, []string{"job-canceled-by-user"}, "job-canceled-by-user", "canceled")
		return e.snapshot(), err
	}
	if !e.cancelAsked {
		saved := *e
		e.cancelAsked = true
		e.Reasons, e.Message = []string{"processing-to-stop-point"}, "canceling"
		if err := q.saveJob(e); err != nil {
			*e = saved
			return Job{}, err
		}
	}
	if c := q.cur; c != nil && c.id == id {
		if c.abort != nil {
			c.abort()
		}
		notify(c.kick)
	}
	return e.snapshot(), nil
}

// Release lets a held job print.
func (q *Queue) Release(id int) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	if err := q.release(e); err != nil {
		return Job{}, err
	}
	return e.snapshot(), nil
}

// ReleaseAll releases every held job and returns how many it released.
func (q *Queue) ReleaseAll() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, id := range q.sortedIDs() {
		e := q.jobs[id]
		if e.State != Held || !e.incoming.IsZero() {
			continue
		}
		if err := q.release(e); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// release moves a held job with its document to pending. Callers hold q.mu.
func (q *Queue) release(e *entry) error {
	if e.State != Held || !e.incoming.IsZero() {
		return ErrState
	}
	saved := *e
	e.State, e.Reasons, e.Message, e.HoldUntil = Pending, []string{"job-queued"}, "queued", time.Time{}
	if err := q.saveJob(e); err != nil {
		*e = saved
		return err
	}
	notify(q.wake)
	return nil
}

// finish ends a job: its terminal state is made durable (with its usage
// event marked due if it had a document), then its document is deleted and
// old terminal jobs pruned. Callers hold q.mu.
func (q *Queue) finish(e *entry, st State, reasons []string, outcome, msg string) error {
	e.State, e.Reasons, e.Message = st, reasons, msg
	e.Finished = q.clock.Now()
	e.HoldUntil, e.incoming = time.Time{}, time.Time{}
	e.phase, e.cancelAsked = phaseNone, false
	e.outcome = outcome
	e.eventDue = e.HasDoc
	q.countPages(e.Impressions)
	err := q.saveJob(e)
	if err != nil {
		q.log.Error("saving a terminal job", "job", e.ID, "err", err)
	}
	if err := q.removeDoc(e.ID); err != nil {
		q.log.Error("deleting a document", "job", e.ID, "err", err)
	}
	if e.eventDue {
		notify(q.evKick)
	}
	q.prune()
	return err
}

// prune forgets the oldest terminal jobs beyond KeepCompleted, except those
// whose event is not yet recorded. Callers hold q.mu.
func (q *Queue) prune() {
	var done []int
	for _, id := range q.sortedIDs() {
		if e := q.jobs[id]; e.State.Terminal() && !e.eventDue {
			done = append(done, id)
		}
	}
	for _, id := range done[:max(0, len(done)-q.cfg.KeepCompleted)] {
		if err := q.removeJobFiles(id); err != nil {
			q.log.Error("deleting an old job", "job", id, "err", err)
			return
		}
		delete(q.jobs, id)
	}
}
