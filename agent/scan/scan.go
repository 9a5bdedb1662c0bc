// Package scan acquires documents from the site's scanner, for a copy (scan
// then print) or for the local inbox. Two drivers share one interface:
//
//   - ESCL talks eSCL (AirScan) to a network multifunction device:
//     ScannerCapabilities, ScannerStatus, ScanJobs, NextDocument until 404,
//     DELETE of the job, with the quirks real devices show (see NewESCL).
//   - SANE runs Debian's scanimage for a USB scanner (see NewSANE).
//
// A scan is A4 at 300 dpi unless asked otherwise, from the document feeder
// when it is loaded and from the glass otherwise. A multi-page scan is
// always one PDF; a single page may be a JPEG when the request says so.
// Every input is bounded: XML answers, page bytes, image dimensions, pages,
// and time. A failure is an *Error whose Reason is the keyword that
// scan.failed events carry (media-jam, no-documents, busy, cover-open,
// io-error, unreachable, ...).
package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Document formats.
const (
	FormatPDF  = "application/pdf"
	FormatJPEG = "image/jpeg"
)

// Source is where the paper is taken from.
type Source string

// Sources.
const (
	SourceAuto   Source = ""       // the feeder when it holds paper, else the glass
	SourcePlaten Source = "platen" // the glass
	SourceFeeder Source = "feeder" // the automatic document feeder
)

// A4 in the eSCL unit, 1/300 inch, and in millimetres.
const (
	A4Width    = 2480
	A4Height   = 3508
	A4WidthMM  = 210
	A4HeightMM = 297
)

// DefaultResolution is the resolution of a request that names none.
const DefaultResolution = 300

// Request says what to scan.
type Request struct {
	Resolution int    // dpi; 0 means 300. The nearest the scanner offers is used.
	Color      bool   // colour, or else greyscale
	Duplex     bool   // both sides, when scanning from a feeder that can
	Source     Source // SourceAuto, SourcePlaten or SourceFeeder
	// Format is FormatPDF (the default) or FormatJPEG. A JPEG is written
	// only for a single page: a scan of several pages is one PDF whatever
	// Format says. Result.Format tells what was written.
	Format string
}

// Result describes what Scan wrote.
type Result struct {
	Pages      int    // page images (a duplex sheet counts two)
	Format     string // FormatPDF or FormatJPEG
	Color      bool   // scanned in colour
	Duplex     bool   // scanned on both sides
	Source     Source // SourcePlaten or SourceFeeder
	Resolution int    // dpi
	Bytes      int64  // written to the writer
}

// Status is the scanner's state, for health reports.
type Status struct {
	// State is "idle", "processing", "testing", "stopped" or "down" (the
	// eSCL pwg:State, lower case), "idle" for a SANE device that opens,
	// or "processing" while this driver scans.
	State string
	// ADF is the document feeder's state when the scanner tells it:
	// "loaded", "empty", "jam", "door-open", "processing", or the eSCL
	// keyword lower-cased without its ScannerAdf prefix; "" when unknown
	// or without a feeder.
	ADF string
	// Fault is the reason a scan would fail now (media-jam, cover-open,
	// unreachable), or "" when none is known.
	Fault Reason
	// Model is the scanner's make and model, when it tells it.
	Model string
}

// Scanner scans. Implementations are safe for concurrent use; scans are
// done one at a time.
type Scanner interface {
	// Scan scans as req says and writes the document to w. On error,
	// nothing or part of a document may have been written, and the error
	// is an *Error.
	Scan(ctx context.Context, req Request, w io.Writer) (Result, error)
	// Status asks the scanner for its state. An unreachable scanner is an
	// *Error with Reason Unreachable.
	Status(ctx context.Context) (Status, error)
}

// Reason is why a scan failed: the reason keyword of a scan.failed event.
// It is an error, so that errors.Is(err, scan.Jammed) tells an *Error's
// reason.
type Reason string

// Reasons.
const (
	Jammed      Reason = "media-jam"    // paper jam in the feeder
	NoDocuments Reason = "no-documents" // the feeder is empty
	Busy        Reason = "busy"         // the scanner is in use, still after retries
	CoverOpen   Reason = "cover-open"   // a cover or the feeder's door is open
	IOError     Reason = "io-error"     // the scanner failed or answered nonsense
	Unreachable Reason = "unreachable"  // no answer, refused, or the scanner is down
	Unsupported Reason = "unsupported"  // the scanner cannot do what was asked
	TooLarge    Reason = "too-large"    // more pages, bytes or pixels than the limits
	Canceled    Reason = "canceled"     // the context ended the scan
	Timeout     Reason = "timeout"      // the scan took longer than allowed
)

func (r Reason) Error() string { return string(r) }

// Error is a failed scan or status request.
type Error struct {
	Reason Reason
	Pages  int   // pages received before the failure
	Err    error // what happened, in detail
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "scan: " + string(e.Reason)
	}
	return "scan: " + string(e.Reason) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the Reason, so that errors.Is(err, scan.Jammed) works.
func (e *Error) Is(target error) bool {
	r, ok := target.(Reason)
	return ok && r == e.Reason
}

// ReasonOf returns the reason of an *Error in err's chain, IOError for any
// other non-nil error, and "" for nil.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return IOError
}

func fail(r Reason, format string, a ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, a...)}
}

// Defaults and bounds of Options.
const (
	DefaultTimeout      = 10 * time.Minute
	DefaultMaxPages     = 100
	DefaultMaxPageBytes = 64 << 20
	DefaultMaxBytes     = 256 << 20
	// DefaultMaxPixels bounds a page image: A4 at 1200 dpi is 139 Mpx.
	DefaultMaxPixels = 150_000_000
	DefaultRetries   = 10
	DefaultBackoff   = time.Second
	MaxBackoff       = 8 * time.Second
	// DefaultRequestTimeout bounds one eSCL request; a NextDocument may
	// wait for the page to be scanned.
	DefaultRequestTimeout = 2 * time.Minute
	// MaxXMLBytes bounds an eSCL capabilities or status document.
	MaxXMLBytes = 1 << 20
)

// Options tune a driver. Zero values take the defaults.
type Options struct {
	Clock   Clock         // retries wait on it; nil: the real clock
	Log     *slog.Logger  // nil: discard
	Timeout time.Duration // a whole scan; default 10 min

	MaxPages     int   // pages of one scan; default 100
	MaxPageBytes int64 // one page as the scanner sends it; default 64 MiB
	MaxBytes     int64 // all pages of one scan; default 256 MiB
	MaxPixels    int64 // width × height of one page image; default 150 M

	// eSCL.
	HTTPClient     *http.Client  // nil: a client of its own
	RequestTimeout time.Duration // one request; default 2 min
	Retries        int           // attempts while the scanner is busy (503, 409); default 10
	Backoff        time.Duration // first pause between them, doubling up to 8 s; default 1 s

	// SANE.
	Program string   // scanimage's path; default "scanimage" on PATH
	Env     []string // extra environment of scanimage (such as SANE_CONFIG_DIR=...)
	TempDir string   // where pages are spooled; default os.TempDir()
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = DefaultMaxPageBytes
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Program == "" {
		o.Program = "scanimage"
	}
	return o
}

// normalize fills a request's defaults and checks it.
func (r Request) normalize() (Request, error) {
	if r.Resolution == 0 {
		r.Resolution = DefaultResolution
	}
	if r.Resolution < 0 || r.Resolution > 4800 {
		return r, fail(Unsupported, "resolution %d dpi", r.Resolution)
	}
	switch r.Format {
	case "":
		r.Format = FormatPDF
	case FormatPDF, FormatJPEG:
	default:
		return r, fail(Unsupported, "format %q (want %s or %s)", r.Format, FormatPDF, FormatJPEG)
	}
	switch r.Source {
	case SourceAuto, SourcePlaten, SourceFeeder:
	default:
		return r, fail(Unsupported, "source %q", r.Source)
	}
	return r, nil
}

// Clock is a driver's time source; retries wait only through it, so that a
// test drives them with a clock of its own. It has the shape of
// printq.Clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once, when
	// d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a single-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// sleep waits d on the clock, or until ctx ends.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ctxError maps the end of a context to a reason.
func ctxError(ctx context.Context, pages int) *Error {
	err := context.Cause(ctx)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Reason: Timeout, Pages: pages, Err: err}
	}
	return &Error{Reason: Canceled, Pages: pages, Err: err}
}
