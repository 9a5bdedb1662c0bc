package printq

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
)

// Files of the spool directory. Every file is written to a temporary file,
// fsynced, renamed into place, and the directory fsynced: a file either is
// whole or does not exist.
const (
	stateName   = "state.json"  // job-id counter, quota count, open faults
	printerName = "printer.ipp" // the printer's last full attribute set
	lockName    = "lock"        // flock: one queue per directory
	tmpPrefix   = ".tmp-"       // temporary files, removed by Open
	jobPrefix   = "job-"
	metaSuffix  = ".json"
	docSuffix   = ".doc"
)

func metaName(id int) string { return fmt.Sprintf("%s%08d%s", jobPrefix, id, metaSuffix) }
func docName(id int) string  { return fmt.Sprintf("%s%08d%s", jobPrefix, id, docSuffix) }

// parseJobFile returns the job id and suffix of a job file name.
func parseJobFile(name string) (id int, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(name, jobPrefix)
	if !ok {
		return 0, "", false
	}
	for _, s := range []string{metaSuffix, docSuffix} {
		if num, ok := strings.CutSuffix(rest, s); ok {
			id, err := strconv.Atoi(num)
			if err != nil || id <= 0 {
				return 0, "", false
			}
			return id, s, true
		}
	}
	return 0, "", false
}

// Limits of the files read back from the spool.
const (
	maxMetaBytes    = 1 << 20
	maxStateBytes   = 1 << 20
	maxPrinterBytes = upstream.MaxResponseBytes
	maxTemplate     = 64 << 10 // encoded job template
)

// phase tells how far the forwarding of a job went. It is what recovery
// after a crash relies on.
type phase string

const (
	// phaseNone: the printer never got the job.
	phaseNone phase = ""
	// phaseForwarding: Print-Job may have reached the printer; whether it
	// did is found out with Get-Jobs before anything else is sent.
	phaseForwarding phase = "forwarding"
	// phaseSent: the printer has the job as UpstreamID.
	phaseSent phase = "sent"
)

// record is the metadata file of a job.
type record struct {
	V        int        `json:"v"`
	ID       int        `json:"id"`
	UUID     string     `json:"uuid"`
	Name     string     `json:"name,omitempty"`
	User     string     `json:"user,omitempty"`
	Client   string     `json:"client,omitempty"`
	Format   string     `json:"format,omitempty"`
	Source   api.Source `json:"source,omitempty"`
	Template []byte     `json:"template,omitzero"` // IPP encoding of a message whose job group is Ticket.Template; absent when nil
	Hold     bool       `json:"hold,omitempty"`

	State       State     `json:"state"`
	Reasons     []string  `json:"reasons,omitempty"`
	Message     string    `json:"message,omitempty"`
	Size        int64     `json:"size"`
	HasDoc      bool      `json:"has_doc,omitempty"`
	Created     time.Time `json:"created"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	HoldUntil   time.Time `json:"hold_until,omitzero"`
	Impressions int       `json:"impressions,omitempty"`
	Sheets      int       `json:"sheets,omitempty"`
	UpstreamID  int       `json:"upstream_id,omitempty"`

	Phase       phase     `json:"phase,omitempty"`
	CancelAsked bool      `json:"cancel_asked,omitempty"` // Cancel while forwarding: Cancel-Job upstream is due
	Incoming    time.Time `json:"incoming,omitzero"`      // Create-Job: waiting for the document or Close-Job since
	Outcome     string    `json:"outcome,omitempty"`      // reason keyword of a failed or canceled job, for its event
	EventDue    bool      `json:"event_due,omitempty"`    // terminal, and its usage event not yet recorded
}

const recordVersion = 1

// state is the spool's state file.
type state struct {
	V      int                     `json:"v"`
	NextID int                     `json:"next_id"`
	Day    string                  `json:"day,omitempty"`         // local day of Pages, YYYY-MM-DD
	Pages  int                     `json:"impressions,omitempty"` // impressions completed that day
	Faults map[string]api.Severity `json:"faults,omitempty"`      // printer faults raised and not cleared
}

// encodeTemplate encodes job template attributes as the job group of an
// IPP message, which keeps every tag and value exactly. A nil template is
// encoded as nil and an empty one as empty, so that they stay apart.
func encodeTemplate(a goipp.Attributes) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	if len(a) == 0 {
		return []byte{}, nil
	}
	m := goipp.NewRequest(goipp.DefaultVersion, goipp.OpPrintJob, 1)
	m.Job = a
	b, err := m.EncodeBytes()
	if err != nil {
		return nil, err
	}
	if len(b) > maxTemplate {
		return nil, fmt.Errorf("job template of %d bytes, more than %d", len(b), maxTemplate)
	}
	return b, nil
}

func decodeTemplate(b []byte) (goipp.Attributes, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) == 0 {
		return goipp.Attributes{}, nil
	}
	var m goipp.Message
	if err := m.DecodeBytes(b); err != nil {
		return nil, err
	}
	return m.Job, nil
}

// writeAtomic durably replaces dir/name with data.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// storageError turns a full disk into ErrStorageFull.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrStorageFull, err)
	}
	return err
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// trackReader remembers the error of the reader it wraps, so that a failed
// upload is told from a failed write.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// spoolDocument streams doc into a new temporary file of dir, at most limit
// bytes, fsynced. On any error nothing is left behind.
func spoolDocument(dir string, doc io.Reader, limit int64) (tmp string, n int64, err error) {
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return "", 0, storageError(err)
	}
	tmp = f.Name()
	tr := &trackReader{r: io.LimitReader(doc, limit+1)}
	n, err = io.Copy(f, tr)
	switch {
	case tr.err != nil:
		err = fmt.Errorf("printq: reading the document: %w", tr.err)
	case err != nil:
		err = storageError(err)
	case n > limit:
		err = ErrTooLarge
	default:
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, storageError(err)
	}
	return tmp, n, nil
}

// toRecord is the metadata of e.
func (e *entry) toRecord() (record, error) {
	tmpl, err := encodeTemplate(e.Template)
	if err != nil {
		return record{}, err
	}
	return record{
		V: recordVersion, ID: e.ID, UUID: e.UUID,
		Name: e.Name, User: e.User, Client: e.Client, Format: e.Format, Source: e.Source,
		Template: tmpl, Hold: e.Ticket.Hold,
		State: e.State, Reasons: e.Reasons, Message: e.Message, Size: e.Size, HasDoc: e.HasDoc,
		Created: e.Created, Started: e.Started, Finished: e.Finished, HoldUntil: e.HoldUntil,
		Impressions: e.Impressions, Sheets: e.Sheets, UpstreamID: e.UpstreamID,
		Phase: e.phase, CancelAsked: e.cancelAsked, Incoming: e.incoming,
		Outcome: e.outcome, EventDue: e.eventDue,
	}, nil
}

// fromRecord rebuilds a job from its metadata.
func fromRecord(r record) (*entry, error) {
	if r.V != recordVersion {
		return nil, fmt.Errorf("metadata version %d, want %d", r.V, recordVersion)
	}
	if r.State < Pending || r.State > Completed {
		return nil, fmt.Errorf("job state %d", r.State)
	}
	tmpl, err := decodeTemplate(r.Template)
	if err != nil {
		return nil, fmt.Errorf("job template: %w", err)
	}
	e := &entry{
		Job: Job{
			ID: r.ID, UUID: r.UUID,
			Ticket: Ticket{Name: r.Name, User: r.User, Client: r.Client, Format: r.Format,
				Source: r.Source, Template: tmpl, Hold: r.Hold},
			State: r.State, Reasons: r.Reasons, Message: r.Message, Size: r.Size, HasDoc: r.HasDoc,
			Created: r.Created, Started: r.Started, Finished: r.Finished, HoldUntil: r.HoldUntil,
			Impressions: r.Impressions, Sheets: r.Sheets, UpstreamID: r.UpstreamID,
		},
		phase: r.Phase, cancelAsked: r.CancelAsked, incoming: r.Incoming,
		outcome: r.Outcome, eventDue: r.EventDue,
	}
	return e, nil
}

// saveJob durably writes the metadata of e.
func (q *Queue) saveJob(e *entry) error {
	r, err := e.toRecord()
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return storageError(writeAtomic(q.cfg.Dir, metaName(e.ID), b))
}

// saveState durably writes the state file.
func (q *Queue) saveState() error {
	b, err := json.Marshal(q.st)
	if err != nil {
		return err
	}
	return storageError(writeAtomic(q.cfg.Dir, stateName, b))
}

// removeDoc deletes the document of job id, if any.
func (q *Queue) removeDoc(id int) error {
	err := os.Remove(filepath.Join(q.cfg.Dir, docName(id)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeJobFiles deletes the files of job id, metadata last.
func (q *Queue) removeJobFiles(id int) error {
	if err := q.removeDoc(id); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(q.cfg.Dir, metaName(id)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
