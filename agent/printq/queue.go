package printq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
)

// Queue is the durable print queue of one site. Its methods are safe for
// concurrent use; none of those called by the IPP server waits for the
// printer.
type Queue struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	ipp   *upstream.Client // nil without a printer
	lock  *os.File         // flock of the spool directory

	mu      sync.Mutex
	jobs    map[int]*entry
	st      state
	printer PrinterStatus
	health  health
	pchange chan struct{} // closed when the printer's readiness changes
	cur     *current      // the job the forwarder works on
	closed  bool
	running bool
	stopRun context.CancelFunc
	runDone chan struct{}

	wake   chan struct{} // cap 1: a job became ready to forward
	evKick chan struct{} // cap 1: usage events are due
	evMu   sync.Mutex    // serializes the recording of events
}

// entry is a job with what the queue keeps about it beyond Job.
type entry struct {
	Job
	phase       phase
	cancelAsked bool
	incoming    time.Time
	outcome     string
	eventDue    bool

	// Not persisted.
	receiving  bool            // a SendDocument is streaming the document
	reduced    bool            // the printer refused the job's attributes once
	drop       map[string]bool // template attributes no longer forwarded
	fwdFormat  string          // document-format forwarded instead of the job's
	attempts   int             // Print-Jobs failed with a server error
	resends    int             // Print-Jobs cut short and sent again
	cancelSent bool            // Cancel-Job reached the printer
}

// current is the job the forwarder works on, so that Cancel can reach it.
type current struct {
	id    int
	abort context.CancelFunc // aborts the Print-Job in flight; nil when none
	kick  chan struct{}      // cap 1: the job was canceled
}

// snapshot returns a copy of the job that shares nothing with the queue.
func (e *entry) snapshot() Job {
	j := e.Job
	j.Reasons = slices.Clone(e.Reasons)
	j.Template = e.Template.DeepCopy()
	return j
}

// Open opens the spool in cfg.Dir, creating it if needed, and recovers its
// jobs after a crash: temporary files and documents without metadata are
// removed, terminal jobs lose their document, and a job that was being
// forwarded is reconciled with the printer by Run before anything else.
func Open(cfg Config) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("printq: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     cfg.Logger.With("pkg", "printq"),
		lock:    lock,
		jobs:    make(map[int]*entry),
		pchange: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		evKick:  make(chan struct{}, 1),
	}
	if cfg.PrinterURI != "" {
		q.ipp = &upstream.Client{URI: cfg.PrinterURI, HTTP: cfg.HTTP}
	}
	if err := q.load(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("printq: loading %s: %w", cfg.Dir, err)
	}
	return q, nil
}

// lockDir takes an exclusive flock on dir/lock so that two queues never
// share a spool (they would print every job twice).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("printq: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("printq: spool %s is in use by another queue", dir)
		}
		return nil, fmt.Errorf("printq: locking %s: %w", dir, err)
	}
	return f, nil
}

// load reads the spool directory.
func (q *Queue) load() error {
	dir := q.cfg.Dir
	q.st = state{V: 1, NextID: 1}
	if b, err := readBounded(filepath.Join(dir, stateName), maxStateBytes); err == nil {
		if err := json.Unmarshal(b, &q.st); err != nil {
			return fmt.Errorf("%s: %w", stateName, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if q.st.NextID < 1 {
		q.st.NextID = 1
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	docs := map[int]bool{}
	removed := false
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// A write that a crash interrupted.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
			removed = true
			continue
		}
		id, suffix, ok := parseJobFile(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		if suffix == docSuffix {
			docs[id] = true
			continue
		}
		e, err := q.loadJob(name, id)
		if err != nil {
			// Never lose a job silently: keep the file aside for a human.
			q.log.Error("unreadable job metadata, set aside", "file", name, "err", err)
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".bad")); err != nil {
				return err
			}
			removed = true
			continue
		}
		q.jobs[id] = e
		q.st.NextID = max(q.st.NextID, id+1)
	}
	for id := range docs {
		e := q.jobs[id]
		if e != nil && e.HasDoc && !e.State.Terminal() {
			continue
		}
		// The document of a job whose metadata never became durable, or
		// of a terminal job whose document was not yet deleted.
		if err := os.Remove(filepath.Join(dir, docName(id))); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	for _, id := range q.sortedIDs() {
		e := q.jobs[id]
		switch {
		case e.HasDoc && !e.State.Terminal() && !docs[id]:
			q.log.Error("job document missing", "job", id)
			q.finish(e, Aborted, []string{"aborted-by-system"}, "document-access-error", "the spooled document is missing")
		case (e.State == Processing || e.State == Stopped) && e.phase == phaseNone:
			// Never written so; were it, the job would wait forever.
			q.unsend(e, []string{"job-queued"}, "queued")
		}
	}
	if b, err := readBounded(filepath.Join(dir, printerName), maxPrinterBytes); err == nil {
		var m goipp.Message
		if err := m.DecodeBytes(b); err != nil {
			q.log.Warn("unreadable saved printer attributes", "err", err)
		} else {
			q.printer.Attrs = m.Printer
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	q.prune()
	return nil
}

func (q *Queue) loadJob(name string, id int) (*entry, error) {
	b, err := readBounded(filepath.Join(q.cfg.Dir, name), maxMetaBytes)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("holds job %d", r.ID)
	}
	return fromRecord(r)
}

// sortedIDs returns the ids of the known jobs, oldest first. Callers hold q.mu.
func (q *Queue) sortedIDs() []int {
	return slices.Sorted(maps.Keys(q.jobs))
}

// Close stops Run if it is running, waits for it, and releases the spool.
// Every accepted job stays on disk.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	stop, done := q.stopRun, q.runDone
	q.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return q.lock.Close()
}

// Job returns the job with the given id.
func (q *Queue) Job(id int) (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[id]
	if !ok {
		return Job{}, false
	}
	return e.snapshot(), true
}

// Jobs returns every known job, oldest first, including the terminal jobs
// kept for Get-Jobs.
func (q *Queue) Jobs() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.sortedIDs()
	js := make([]Job, len(ids))
	for i, id := range ids {
		js[i] = q.jobs[id].snapshot()
	}
	return js
}

// Printer returns what the queue last learned of the site's printer. Attrs
// is shared with the queue and other callers: do not modify it.
func (q *Queue) Printer() PrinterStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.printer
	p.Attrs = p.Attrs.Clone()
	p.Reasons = slices.Clone(p.Reasons)
	p.Markers = slices.Clone(p.Markers)
	return p
}

// Document opens the spooled document of a job. Terminal jobs have none.
func (q *Queue) Document(id int) (io.ReadCloser, error) {
	q.mu.Lock()
	e, ok := q.jobs[id]
	has := ok && e.HasDoc && !e.State.Terminal()
	q.mu.Unlock()
	if !has {
		return nil, ErrNotFound
	}
	f, err := os.Open(filepath.Join(q.cfg.Dir, docName(id)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Run forwards jobs to the printer, polls the printer's state, expires held
// jobs and records usage events, until ctx ends or Close is called; it then
// returns nil. A job being forwarded when it returns stays on disk as such
// and is reconciled with the printer by the next Run, after Open. Run may
// be called once.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return ErrClosed
	case q.running:
		q.mu.Unlock()
		return errors.New("printq: Run called twice")
	}
	q.running = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q.stopRun, q.runDone = cancel, make(chan struct{})
	defer close(q.runDone)
	q.health.lastOK = q.clock.Now()
	q.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { q.monitor(ctx) })
	wg.Go(func() { q.recordLoop(ctx) })
	if q.ipp != nil {
		wg.Go(func() { q.forwarder(ctx) })
	}
	wg.Wait()
	return nil
}

// notify sends on a channel of capacity 1 without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// recordLoop records usage events as they become due.
func (q *Queue) recordLoop(ctx context.Context) {
	for {
		q.flushEvents()
		select {
		case <-ctx.Done():
			return
		case <-q.evKick:
		}
	}
}

// flushEvents records the events of terminal jobs not yet recorded, oldest
// job first. An event is recorded before the job's flag is cleared: a crash
// in between records it twice, never zero times.
func (q *Queue) flushEvents() {
	q.evMu.Lock()
	defer q.evMu.Unlock()
	q.mu.Lock()
	var ids []int
	var keys []string
	var evs []api.Event
	for _, id := range q.sortedIDs() {
		if e := q.jobs[id]; e.eventDue {
			ids = append(ids, id)
			keys = append(keys, "print-job/"+e.UUID)
			evs = append(evs, q.usageEvent(e))
		}
	}
	q.mu.Unlock()
	for i, ev := range evs {
		if err := q.cfg.Recorder.RecordOnce(keys[i], ev); err != nil {
			q.log.Error("recording a usage event", "job", ids[i], "type", ev.Type, "err", err)
			return // retried on the next poll
		}
		q.mu.Lock()
		if e := q.jobs[ids[i]]; e != nil {
			e.eventDue = false
			if err := q.saveJob(e); err != nil {
				q.log.Error("saving a job", "job", e.ID, "err", err)
			}
			q.prune()
		}
		q.mu.Unlock()
	}
}
