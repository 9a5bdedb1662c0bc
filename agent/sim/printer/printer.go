// Package printer is relais-sim's simulated printer: a small IPP/2.0
// printer over HTTP (Get-Printer-Attributes, Validate-Job, Print-Job,
// Create-Job, Send-Document, Get-Job-Attributes, Get-Jobs, Cancel-Job)
// that replays a real device's attributes or a built-in IPP Everywhere
// set, counts the pages of what it prints (PDF page objects, Apple and PWG
// raster pages, or the client's job-impressions), keeps or discards the
// documents, and injects faults at run time: out of paper (media-empty:
// jobs wait with the printer stopped until refilled), paper jam
// (media-jam, likewise), offline (the printer stops listening, so
// connections are refused), busy (job submissions answer
// server-error-busy) and slow (each job takes a given time, measured on an
// injectable clock). Faults are set with Command, which takes the lines of
// the control language that the control HTTP endpoint (ControlHandler)
// accepts: see Command.
package printer

import (
	"github.com/relais-fr/relais/agent/sim/control"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/OpenPrinting/goipp"
)

// Clock tells the time and makes timers. Tests inject a clock they
// advance themselves.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Limits.
const (
	// DefaultMaxDocumentBytes bounds a document when Config sets no limit.
	DefaultMaxDocumentBytes = 256 << 20
	// MaxRequestBytes bounds an IPP request's attributes (the message
	// before the document).
	MaxRequestBytes = 1 << 20
	// MaxActiveJobs bounds the jobs not yet finished; beyond it job
	// submissions answer server-error-too-many-jobs.
	MaxActiveJobs = 500
	// MaxFinishedJobs is how many finished jobs the printer remembers.
	MaxFinishedJobs = 1000
)

// Config configures a Printer.
type Config struct {
	// Name is printer-name; if empty, the replayed device's, or
	// "Relais Sim".
	Name string
	// Attributes are a device's printer attributes to replay (see
	// LoadAttributes); nil means the built-in set.
	Attributes goipp.Attributes
	// Clock times jobs; nil means the real clock.
	Clock Clock
	// KeepDir, if set, receives each job's document as START-JOBID.EXT,
	// START being when the printer started (UTC, 20060102T150405Z): job
	// ids start at 1 again when a printer restarts. Otherwise documents
	// are read and discarded.
	KeepDir string
	// MaxDocumentBytes bounds a document (after decompression);
	// 0 means DefaultMaxDocumentBytes.
	MaxDocumentBytes int64
	// Log receives one line per job event and fault; nil discards.
	Log *slog.Logger
}

// Faults are the faults a printer simulates.
type Faults struct {
	MediaEmpty bool          // out of paper: jobs wait, printer stopped
	MediaJam   bool          // paper jam: jobs wait, printer stopped
	Offline    bool          // not listening: connections refused
	Busy       bool          // job submissions answer server-error-busy
	Slow       time.Duration // each job takes this long to print
}

// stops reports whether the faults stop printing.
func (f Faults) stops() bool { return f.MediaEmpty || f.MediaJam }

// Job states, as IPP numbers them.
const (
	statePending    = 3
	stateHeld       = 4
	stateProcessing = 5
	stateStopped    = 6
	stateCanceled   = 7
	stateAborted    = 8
	stateCompleted  = 9
)

// A job is a job the printer knows.
type job struct {
	id         int
	uuid       string
	name, user string
	format     string // document-format, as supplied or detected
	state      int
	reasons    []string
	template   goipp.Attributes // job template attributes as the client sent them
	created    time.Time
	processing time.Time // zero until the job starts
	completed  time.Time // zero until the job is finished
	hasDoc     bool
	bytes      int64
	// impressions and sheets are counted when the document arrives; the
	// -completed counts are set when the job completes.
	impressions, sheets                   int
	impressionsCompleted, sheetsCompleted int
	remaining                             time.Duration // printing time left
	resumed                               time.Time     // when printing last (re)started
}

func (j *job) terminal() bool { return j.state >= stateCanceled }

// Printer is a simulated IPP printer. Its methods are safe for concurrent
// use.
type Printer struct {
	cfg     Config
	clock   Clock
	log     *slog.Logger
	started time.Time
	static  goipp.Attributes // capabilities, without the attributes computed per request
	formats map[string]bool  // document-format-supported

	mu           sync.Mutex
	faults       Faults
	jobs         []*job // oldest first
	nextID       int
	stateChanged time.Time
	wake         chan struct{}

	// Listening, when Listen was called.
	addr    string        // the address listened on, kept across offline periods
	srv     *http.Server  // nil while offline
	served  chan struct{} // closed when srv's Serve has returned
	serving sync.WaitGroup

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a printer, with its job processing started; Close stops it.
func New(cfg Config) (*Printer, error) {
	if cfg.Name == "" {
		cfg.Name = "Relais Sim"
		if v := find(cfg.Attributes, "printer-name"); len(v) > 0 {
			cfg.Name = v[0].V.String()
		}
	}
	if len(cfg.Name) > 127 {
		return nil, errors.New("printer name longer than 127 bytes")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxDocumentBytes <= 0 {
		cfg.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if cfg.KeepDir != "" {
		if fi, err := os.Stat(cfg.KeepDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("keep directory %s: not a directory (%v)", cfg.KeepDir, err)
		}
	}
	p := &Printer{
		cfg:    cfg,
		clock:  cfg.Clock,
		log:    cfg.Log,
		nextID: 1,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	p.started = p.clock.Now()
	p.stateChanged = p.started
	if cfg.Attributes != nil {
		p.static = replayed(cfg.Attributes, cfg.Name)
	} else {
		p.static = builtin(cfg.Name)
	}
	p.formats = map[string]bool{}
	for _, v := range find(p.static, "document-format-supported") {
		p.formats[v.V.String()] = true
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p, nil
}

// Listen serves IPP on addr (host:port; port 0 picks one) at /ipp/print,
// until Close. The address is kept: after "offline on" then "offline
// off", the printer listens on the same port again.
func (p *Printer) Listen(addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addr != "" {
		return errors.New("printer already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.addr = ln.Addr().String()
	p.serveLocked(ln)
	return nil
}

func (p *Printer) serveLocked(ln net.Listener) {
	srv := control.NewServer(p, p.log)
	served := make(chan struct{})
	p.srv, p.served = srv, served
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		defer close(served)
		srv.Serve(ln)
	}()
}

// URI returns the printer's URI, ipp://HOST:PORT/ipp/print, or "" before
// Listen. A wildcard listening address is given as the loopback address.
func (p *Printer) URI() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addr == "" {
		return ""
	}
	return "ipp://" + control.HostPort(p.addr) + "/ipp/print"
}

// Close stops listening and processing jobs.
func (p *Printer) Close() error {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	p.serving.Wait()
	p.cancel()
	<-p.done
	return err
}

// Faults returns the faults in effect.
func (p *Printer) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// SetFaults replaces the faults in effect. Going offline closes the
// listener and every open connection; coming back listens on the same
// address again, which fails if another program took the port meanwhile.
func (p *Printer) SetFaults(f Faults) error {
	if f.Slow < 0 {
		return errors.New("slow: negative duration")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.Offline != p.faults.Offline {
		if p.addr == "" {
			return errors.New("offline: the printer is not listening on a port of its own")
		}
		if f.Offline {
			// Once Serve has returned, its Accept no longer holds the
			// listening socket, which is then closed for good: new
			// connections are refused, not reset.
			p.srv.Close()
			<-p.served
			p.srv = nil
		} else {
			ln, err := net.Listen("tcp", p.addr)
			if err != nil {
				return fmt.Errorf("back online: %w", err)
			}
			p.serveLocked(ln)
		}
	}
	if f.stops() != p.faults.stops() {
		p.stateChanged = p.clock.Now()
	}
	if f != p.faults {
		p.log.Info("faults", "media-empty", f.MediaEmpty, "media-jam", f.MediaJam,
			"offline", f.Offline, "busy", f.Busy, "slow", f.Slow)
	}
	p.faults = f
	p.signal()
	return nil
}

// signal wakes the job processor; the caller holds p.mu or not.
func (p *Printer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run processes jobs one at a time, oldest first, until Close.
func (p *Printer) run() {
	defer close(p.done)
	var cur *job
	var timer <-chan time.Time
	for {
		p.mu.Lock()
		now := p.clock.Now()
		if cur != nil && cur.terminal() { // canceled meanwhile
			cur, timer = nil, nil
		}
		if cur == nil {
			cur = p.nextLocked()
		}
		if cur != nil {
			switch {
			case p.faults.stops() && cur.state == stateProcessing:
				cur.remaining -= now.Sub(cur.resumed)
				cur.state, cur.reasons = stateStopped, []string{"printer-stopped"}
				timer = nil
				p.stateChanged = now
				p.log.Info("job stopped", "job", cur.id)
			case p.faults.stops():
				if cur.state == statePending {
					cur.reasons = []string{"printer-stopped"}
				}
			case cur.state != stateProcessing:
				if cur.processing.IsZero() {
					cur.processing = now
					cur.remaining = p.faults.Slow
				}
				cur.state, cur.reasons = stateProcessing, []string{"job-printing"}
				cur.resumed = now
				timer = p.clock.After(max(cur.remaining, 0))
				p.stateChanged = now
				p.log.Info("job printing", "job", cur.id, "for", cur.remaining)
			}
		}
		p.mu.Unlock()
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-timer:
			p.mu.Lock()
			if !cur.terminal() {
				p.finishLocked(cur, stateCompleted, "job-completed-successfully")
			}
			p.mu.Unlock()
			cur, timer = nil, nil
		}
	}
}

// nextLocked returns the oldest job ready to print, or nil.
func (p *Printer) nextLocked() *job {
	for _, j := range p.jobs {
		if j.state == statePending && j.hasDoc {
			return j
		}
	}
	return nil
}

// finishLocked ends a job and forgets the oldest finished jobs beyond
// MaxFinishedJobs.
func (p *Printer) finishLocked(j *job, state int, reason string) {
	now := p.clock.Now()
	j.state, j.reasons, j.completed = state, []string{reason}, now
	if state == stateCompleted {
		j.impressionsCompleted, j.sheetsCompleted = j.impressions, j.sheets
	}
	p.stateChanged = now
	p.log.Info("job finished", "job", j.id, "state", state, "impressions", j.impressionsCompleted)
	finished := 0
	for _, j := range p.jobs {
		if j.terminal() {
			finished++
		}
	}
	if finished > MaxFinishedJobs {
		kept := p.jobs[:0]
		for _, j := range p.jobs {
			if j.terminal() && finished > MaxFinishedJobs {
				finished--
				continue
			}
			kept = append(kept, j)
		}
		clear(p.jobs[len(kept):])
		p.jobs = kept
	}
}

// jobLocked returns the job with the id, or nil.
func (p *Printer) jobLocked(id int) *job {
	for _, j := range p.jobs {
		if j.id == id {
			return j
		}
	}
	return nil
}

// activeLocked counts the jobs not finished.
func (p *Printer) activeLocked() int {
	n := 0
	for _, j := range p.jobs {
		if !j.terminal() {
			n++
		}
	}
	return n
}

// printerStateLocked returns printer-state, printer-state-reasons and
// printer-state-message.
func (p *Printer) printerStateLocked() (int, []string, string) {
	var reasons []string
	waiting := false
	printing := false
	for _, j := range p.jobs {
		switch j.state {
		case statePending, stateStopped:
			waiting = waiting || j.hasDoc
		case stateProcessing:
			printing = true
		}
	}
	if p.faults.MediaEmpty {
		reasons = append(reasons, "media-empty-error")
		if waiting {
			reasons = append(reasons, "media-needed-error")
		}
	}
	if p.faults.MediaJam {
		reasons = append(reasons, "media-jam-error")
	}
	switch {
	case p.faults.MediaEmpty:
		return 5, reasons, "Out of paper."
	case p.faults.MediaJam:
		return 5, reasons, "Paper jam."
	case printing:
		return 4, []string{"none"}, "Printing."
	}
	return 3, []string{"none"}, "Ready."
}

// Status is a summary of the printer's state, as the control endpoint
// reports it.
type Status struct {
	URI       string   `json:"uri,omitempty"`
	State     string   `json:"state"` // idle, processing or stopped
	Reasons   []string `json:"reasons"`
	Faults    []string `json:"faults"` // media-empty, media-jam, offline, busy, "slow 5s"
	Pending   int      `json:"pending"`
	Completed int      `json:"completed"`
	Canceled  int      `json:"canceled"`
}

// Status returns the printer's state.
func (p *Printer) Status() Status {
	uri := p.URI()
	p.mu.Lock()
	defer p.mu.Unlock()
	state, reasons, _ := p.printerStateLocked()
	s := Status{URI: uri, State: [...]string{3: "idle", 4: "processing", 5: "stopped"}[state], Reasons: reasons, Faults: []string{}}
	f := p.faults
	for _, x := range []struct {
		on   bool
		name string
	}{{f.MediaEmpty, "media-empty"}, {f.MediaJam, "media-jam"}, {f.Offline, "offline"}, {f.Busy, "busy"}} {
		if x.on {
			s.Faults = append(s.Faults, x.name)
		}
	}
	if f.Slow > 0 {
		s.Faults = append(s.Faults, "slow "+f.Slow.String())
	}
	for _, j := range p.jobs {
		switch {
		case j.state == stateCompleted:
			s.Completed++
		case j.terminal():
			s.Canceled++
		default:
			s.Pending++
		}
	}
	return s
}

// keep opens the file that keeps job id's document, or returns a writer
// that discards.
func (p *Printer) keep(id int, format string) (io.WriteCloser, string, error) {
	if p.cfg.KeepDir == "" {
		return nopCloser{io.Discard}, "", nil
	}
	name := fmt.Sprintf("%s-%d%s", p.started.UTC().Format("20060102T150405Z"), id, extension(format))
	path := filepath.Join(p.cfg.KeepDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	return f, path, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// extension returns a file name extension for a document format.
func extension(format string) string {
	switch format {
	case "application/pdf":
		return ".pdf"
	case "image/pwg-raster":
		return ".pwg"
	case "image/urf":
		return ".urf"
	case "image/jpeg":
		return ".jpg"
	case "application/postscript":
		return ".ps"
	}
	return ".prn"
}
