// Package printq is the agent's durable print queue. A job's document and
// ticket are written and fsynced before the IPP server answers; jobs survive
// restarts and kill -9; one at a time they are forwarded to the site's real
// printer, retried with backoff while it is busy, offline or out of paper,
// reconciled with the printer after a crash so that none is printed twice or
// lost, held for release when print release is on, and reported as counts
// (never names) through a Recorder.
//
// # Spool
//
// The spool directory holds, per job, job-NNNNNNNN.doc (the document) and
// job-NNNNNNNN.json (its metadata, the job template encoded as IPP), plus
// state.json (the job-id counter, the day's page count, the open printer
// faults) and printer.ipp (the printer's last full attribute set). Each
// file is written to a temporary file, fsynced, renamed and the directory
// fsynced; a job exists once its metadata is durable, so an interrupted
// upload or a crash mid-write leaves no half job, and Open removes what such
// a crash left.
//
// # Forwarding and recovery
//
// Before a job's Print-Job is sent, the job is saved as "forwarding"; once
// the printer answers with its job-id, as "sent". The printer knows the job
// by the name relais-<job uuid>, never by the user's job name. A job found
// forwarding by Open (a crash) or after a failed Print-Job whose request
// may have reached the printer (a timeout, a lost connection) is looked for
// among the printer's jobs (Get-Jobs, which-jobs all) by that name before
// anything else is sent: found, the queue follows it there; not found, it
// sends it again; while the printer cannot be asked, it waits. A job the
// printer no longer knows while the queue follows it (the printer restarted)
// is aborted, not sent again.
//
// The residual risk is a printer that forgets jobs: one that keeps no
// history of completed jobs, or clears it on power-off. If the queue
// crashes, or loses the connection in the middle of a Print-Job, after such a
// printer got the job and finished it, the queue finds no trace of it and
// prints it a second time. ippeveprinter, for one, forgets a completed job
// after about a minute, and every job when it restarts. A printer that hides
// job names from Get-Jobs cannot be asked at all: an interrupted job is then
// given up (print.failed, reason job-lost) rather than risk a second copy, as
// is a job whose Print-Job was cut short four times.
package printq

import (
	"errors"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/central/api"
)

// State is a job's state, numbered as IPP's job-state.
type State int

// Job states.
const (
	Pending    State = 3
	Held       State = 4
	Processing State = 5
	Stopped    State = 6
	Canceled   State = 7
	Aborted    State = 8
	Completed  State = 9
)

// Terminal reports whether a job in state s is finished.
func (s State) Terminal() bool { return s >= Canceled }

// Ticket is what a client asked for. Name and User stay on the site: they
// are never reported to central, nor sent upstream (the upstream job is
// named by a tag of the agent's own).
type Ticket struct {
	Name   string     // job-name
	User   string     // requesting-user-name
	Client string     // IP address of the submitting client, without port
	Format string     // document-format
	Source api.Source // pc, phone, copy or central
	// Template holds the job template attributes the client sent (copies,
	// sides, media, media-col, print-color-mode, print-quality, ...), as
	// they are forwarded upstream.
	Template goipp.Attributes
	// Hold asks for the job to wait for release (job-hold-until), even
	// when print release is off.
	Hold bool
}

// Job is a job as the queue knows it.
type Job struct {
	ID   int    // job-id, increasing, never reused
	UUID string // job-uuid, urn:uuid:...
	Ticket
	State    State
	Reasons  []string // job-state-reasons
	Message  string   // job-state-message, in English
	Size     int64    // document bytes; 0 until the document arrives
	HasDoc   bool     // the document has arrived (Create-Job then Send-Document)
	Created  time.Time
	Started  time.Time // when forwarding began; zero before
	Finished time.Time // zero until terminal
	// HoldUntil is when a held job expires and is deleted; zero if not held.
	HoldUntil time.Time
	// Impressions and Sheets are what the printer reported on completion.
	Impressions, Sheets int
	UpstreamID          int // the job's id on the site's printer; 0 before
}

// Marker is one supply of the printer (IPP marker-* attributes).
type Marker struct {
	Name  string // marker-names
	Kind  string // marker-types, such as toner
	Color string // marker-colors, such as #000000
	Level int    // marker-levels: 0-100, or -1, -2, -3 (IPP's unknown values)
}

// PrinterStatus is what the queue last learned of the site's printer.
type PrinterStatus struct {
	// Attrs are the printer's attributes from its last full
	// Get-Printer-Attributes: the capabilities the agent mirrors. Nil until
	// the printer has answered once (and then kept across restarts).
	Attrs     goipp.Attributes
	Reachable bool
	State     int      // printer-state: 3 idle, 4 processing, 5 stopped
	Reasons   []string // printer-state-reasons keywords, suffixes -report/-warning/-error stripped; "none" omitted
	Markers   []Marker
	Updated   time.Time // last successful contact
}

// Recorder receives the queue's usage and fault events. It assigns Seq, ID
// and Time, and must have made the event durable when it returns nil.
type Recorder interface {
	Record(e api.Event) error
	// RecordOnce records e unless an event with the same key was
	// recorded before (then it returns nil): a job's usage event is
	// recorded under its job UUID, so that a crash between recording it
	// and saving the job does not record it twice.
	RecordOnce(key string, e api.Event) error
}

// Faults tracks the open faults of the site's devices, each raised once and
// cleared once (with fault.raised and fault.cleared events): raising an open
// fault again, or clearing one that is not open, does nothing.
type Faults interface {
	Raise(device api.Device, code string, severity api.Severity) error
	Clear(device api.Device, code string) error
}

// Errors returned by the queue; the IPP server maps each to a status code.
var (
	ErrTooLarge    = errors.New("printq: document larger than the limit")
	ErrQuota       = errors.New("printq: daily page quota reached")
	ErrNotFound    = errors.New("printq: no such job")
	ErrState       = errors.New("printq: not possible in the job's state")
	ErrStorageFull = errors.New("printq: no room left to spool the job")
	ErrClosed      = errors.New("printq: queue closed")
)
