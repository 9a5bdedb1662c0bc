package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SANE scans with Debian's scanimage (package sane-utils), for a USB
// scanner. It reads the device's options once (scanimage -A) to choose the
// mode, source and resolution names the backend uses, then runs scanimage
// in batch mode with JPEG output into a private temporary directory, one
// file a page, bounded in time (the context and Options.Timeout), pages,
// bytes and pixels. scanimage runs with LC_ALL=C so that its messages,
// which tell a jam from an empty feeder, are the English ones whatever the
// system's language. Pages are assembled into one PDF here: scanimage's
// own PDF output (sane-backends 1.1.1 in bookworm) writes a file without
// its trailer, which readers reject.
//
// The source SourceAuto takes the feeder first when the device has one, and
// the glass when the feeder reports it is empty.
type SANE struct {
	device string
	opt    Options
	lock   chan struct{}
	busy   atomic.Bool // a scan is under way

	mu      sync.Mutex
	options *saneOptions // from scanimage -A; nil until read
}

var _ Scanner = (*SANE)(nil)

// NewSANE returns a driver for a SANE device, as scanimage -L names it
// (such as "pixma:04A91234" or "test").
func NewSANE(device string, opt Options) (*SANE, error) {
	device = strings.TrimSpace(device)
	if device == "" || strings.HasPrefix(device, "-") || strings.ContainsAny(device, "\x00\n") {
		return nil, fmt.Errorf("SANE device %q: want a name as scanimage -L lists it", device)
	}
	return &SANE{device: device, opt: opt.withDefaults(), lock: make(chan struct{}, 1)}, nil
}

// Device returns the SANE device name.
func (s *SANE) Device() string { return s.device }

// saneOptions are what a device's option list tells.
type saneOptions struct {
	modes   []string // --mode values
	sources []string // --source values
	// Resolutions: a list, or a range.
	resolutions            []int
	resMin, resMax, resStp int
	hasResolution          bool
	// Width and height of the scan area, in millimetres, when the backend
	// offers -x and -y in mm.
	maxX, maxY float64
}

// parseOptions reads scanimage -A's listing. Inactive options are left
// out.
func parseOptions(out string) *saneOptions {
	o := &saneOptions{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '['); i > 0 {
			name = name[:i]
		}
		rest = strings.TrimSpace(rest)
		value := ""
		if strings.HasSuffix(rest, "]") {
			if i := strings.LastIndex(rest, " ["); i >= 0 {
				value = rest[i+2 : len(rest)-1]
				rest = strings.TrimSpace(rest[:i])
			} else if strings.HasPrefix(rest, "[") {
				value, rest = rest[1:len(rest)-1], ""
			}
		}
		if value == "inactive" {
			continue
		}
		if i := strings.Index(rest, " (in steps of "); i >= 0 {
			rest = rest[:i]
		}
		switch name {
		case "--mode":
			o.modes = strings.Split(rest, "|")
		case "--source":
			o.sources = strings.Split(rest, "|")
		case "--resolution":
			o.hasResolution = true
			spec := strings.TrimRight(rest, "dpi")
			if lo, hi, ok := strings.Cut(spec, ".."); ok {
				o.resMin, o.resMax = atoiFloor(lo), atoiFloor(hi)
				if m := stepRe(line); m > 0 {
					o.resStp = m
				}
			} else {
				for _, v := range strings.Split(spec, "|") {
					if n := atoiFloor(v); n > 0 {
						o.resolutions = append(o.resolutions, n)
					}
				}
				sort.Ints(o.resolutions)
			}
		case "-x", "-y":
			if !strings.HasSuffix(rest, "mm") {
				continue
			}
			if _, hi, ok := strings.Cut(strings.TrimSuffix(rest, "mm"), ".."); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(hi), 64); err == nil && f > 0 {
					if name == "-x" {
						o.maxX = f
					} else {
						o.maxY = f
					}
				}
			}
		}
	}
	return o
}

// stepRe reads "(in steps of N)" from an option line.
func stepRe(line string) int {
	_, after, ok := strings.Cut(line, "(in steps of ")
	if !ok {
		return 0
	}
	v, _, _ := strings.Cut(after, ")")
	return atoiFloor(v)
}

// atoiFloor reads an integer or the integer part of a decimal.
func atoiFloor(s string) int {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// resolution returns the offered resolution nearest to want, or want when
// the device does not say.
func (o *saneOptions) resolution(want int) int {
	switch {
	case len(o.resolutions) > 0:
		best := o.resolutions[0]
		for _, r := range o.resolutions {
			if abs(r-want) < abs(best-want) || abs(r-want) == abs(best-want) && r > best {
				best = r
			}
		}
		return best
	case o.resMax > 0:
		r := min(max(want, o.resMin), o.resMax)
		if o.resStp > 1 {
			r = o.resMin + (r-o.resMin+o.resStp/2)/o.resStp*o.resStp
			if r > o.resMax {
				r -= o.resStp
			}
		}
		return r
	}
	return want
}

// mode returns the --mode value for colour or greyscale, or "" when the
// device has no such option or value.
func (o *saneOptions) mode(colour bool) string {
	words := []string{"gray", "grey"}
	if colour {
		words = []string{"color", "colour"}
	}
	for _, m := range o.modes {
		l := strings.ToLower(m)
		for _, w := range words {
			if strings.Contains(l, w) {
				return m
			}
		}
	}
	return ""
}

// source returns the --source value for the glass, the feeder, or the
// feeder on both sides; "" when there is none.
func (o *saneOptions) source(which string) string {
	isFeeder := func(l string) bool {
		return strings.Contains(l, "adf") || strings.Contains(l, "feeder") || strings.Contains(l, "duplex")
	}
	var fallback string
	for _, v := range o.sources {
		l := strings.ToLower(v)
		switch which {
		case "platen":
			if strings.Contains(l, "flatbed") || strings.Contains(l, "platen") || strings.Contains(l, "glass") {
				return v
			}
			if fallback == "" && !isFeeder(l) && !strings.Contains(l, "transparen") && !strings.Contains(l, "film") {
				fallback = v
			}
		case "feeder":
			if isFeeder(l) && !strings.Contains(l, "duplex") && !strings.Contains(l, "back") && !strings.Contains(l, "rear") {
				return v
			}
		case "duplex":
			if strings.Contains(l, "duplex") {
				return v
			}
		}
	}
	return fallback
}

// run runs scanimage with args, and returns its standard output and the
// end of its standard error.
func (s *SANE) run(ctx context.Context, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, s.opt.Program, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "LANGUAGE=C")
	cmd.Env = append(cmd.Env, s.opt.Env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr tailBuffer
	stdout.max, stderr.max = 1<<20, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	s.opt.Log.Debug("sane: running", "program", s.opt.Program, "args", args)
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// deviceOptions returns the device's options, reading them with
// scanimage -A the first time. Listing opens the device: it also tells
// that the scanner answers.
func (s *SANE) deviceOptions(ctx context.Context, fresh bool) (*saneOptions, error) {
	s.mu.Lock()
	o := s.options
	s.mu.Unlock()
	if o != nil && !fresh {
		return o, nil
	}
	lctx, cancel := context.WithTimeout(ctx, s.opt.RequestTimeout)
	defer cancel()
	out, errOut, err := s.run(lctx, "-d", s.device, "-A")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, 0)
		}
		if lctx.Err() != nil {
			return nil, fail(Unreachable, "scanimage -A: no answer in %v", s.opt.RequestTimeout)
		}
		e := saneFailure(err, errOut, 0)
		if e.Reason == IOError {
			// The device could not even be opened.
			e.Reason = Unreachable
		}
		return nil, e
	}
	o = parseOptions(out)
	s.mu.Lock()
	s.options = o
	s.mu.Unlock()
	return o, nil
}

// Status implements Scanner: "processing" while this driver scans, else
// "idle" when the device opens (scanimage -A).
func (s *SANE) Status(ctx context.Context) (Status, error) {
	processing := Status{State: "processing", Model: s.device}
	if s.busy.Load() {
		return processing, nil
	}
	// Opening the device while a scan has it would make the scan fail
	// with "Device busy": hold the scan lock meanwhile.
	select {
	case s.lock <- struct{}{}:
		defer func() { <-s.lock }()
	default:
		return processing, nil
	}
	if _, err := s.deviceOptions(ctx, true); err != nil {
		return Status{}, err
	}
	return Status{State: "idle", Model: s.device}, nil
}

// saneFailure maps scanimage's failure to a reason, by its message first
// (LC_ALL=C) and its exit status, which is the SANE status, next.
func saneFailure(err error, stderr string, pages int) *Error {
	msg := lastLines(stderr, 3)
	e := &Error{Reason: IOError, Pages: pages, Err: fmt.Errorf("scanimage: %v: %s", err, msg)}
	l := strings.ToLower(stderr)
	switch {
	case strings.Contains(l, "document feeder jammed"):
		e.Reason = Jammed
	case strings.Contains(l, "scanner cover is open"):
		e.Reason = CoverOpen
	case strings.Contains(l, "document feeder out of documents"):
		e.Reason = NoDocuments
	case strings.Contains(l, "device busy"):
		e.Reason = Busy
	case strings.Contains(l, "open of device") || strings.Contains(l, "no sane devices found"):
		e.Reason = Unreachable
	case strings.Contains(l, "error during device i/o"):
		e.Reason = IOError
	default:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			switch ee.ExitCode() {
			case 3:
				e.Reason = Busy
			case 6:
				e.Reason = Jammed
			case 7:
				e.Reason = NoDocuments
			case 8:
				e.Reason = CoverOpen
			}
		} else if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			e.Reason = Unreachable
		}
	}
	return e
}

// lastLines returns the last n non-empty lines of s, joined by "; ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// Scan implements Scanner.
func (s *SANE) Scan(ctx context.Context, req Request, w io.Writer) (Result, error) {
	req, err := req.normalize()
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctxError(ctx, 0)
	}
	defer func() { <-s.lock }()
	s.busy.Store(true)
	defer s.busy.Store(false)

	o, err := s.deviceOptions(ctx, false)
	if err != nil {
		return Result{}, err
	}
	platen, feeder := o.source("platen"), o.source("feeder")
	type try struct {
		source Source
		value  string // --source, or "" to leave it as it is
		duplex bool
	}
	var tries []try
	switch req.Source {
	case SourcePlaten:
		if len(o.sources) > 0 && platen == "" {
			return Result{}, fail(Unsupported, "%s has no flatbed (sources: %s)", s.device, strings.Join(o.sources, ", "))
		}
		tries = []try{{SourcePlaten, platen, false}}
	case SourceFeeder:
		if feeder == "" {
			return Result{}, fail(Unsupported, "%s has no document feeder (sources: %s)", s.device, strings.Join(o.sources, ", "))
		}
		tries = []try{{SourceFeeder, feeder, false}}
	default:
		if feeder != "" {
			tries = append(tries, try{SourceFeeder, feeder, false})
		}
		if platen != "" || len(o.sources) == 0 {
			tries = append(tries, try{SourcePlaten, platen, false})
		}
	}
	if tries[0].source == SourceFeeder && req.Duplex {
		if d := o.source("duplex"); d != "" {
			tries[0].value, tries[0].duplex = d, true
		}
	}
	for i, t := range tries {
		pages, res, err := s.scan(ctx, o, req, t.value, t.source == SourceFeeder)
		if err != nil {
			var se *Error
			if errors.As(err, &se) && se.Reason == NoDocuments && se.Pages == 0 && i+1 < len(tries) {
				s.opt.Log.Info("sane: feeder empty, scanning from the glass", "device", s.device)
				continue
			}
			return Result{}, err
		}
		r := Result{Pages: len(pages), Source: t.source, Duplex: t.duplex, Resolution: res}
		for _, p := range pages {
			r.Color = r.Color || p.color
		}
		docs := make([]page, len(pages))
		for i, p := range pages {
			docs[i] = p.page
		}
		format, n, err := writeDocument(w, docs, req.Format, res)
		if err != nil {
			return Result{}, &Error{Reason: IOError, Pages: len(pages), Err: err}
		}
		r.Format, r.Bytes = format, n
		s.opt.Log.Info("sane: scanned", "device", s.device, "pages", r.Pages, "format", r.Format,
			"source", r.Source, "dpi", r.Resolution, "color", r.Color, "bytes", r.Bytes)
		return r, nil
	}
	return Result{}, fail(Unsupported, "%s: no source to scan from", s.device)
}

type sanePage struct {
	page
	color bool
}

// scan runs one scanimage batch and reads its pages.
func (s *SANE) scan(ctx context.Context, o *saneOptions, req Request, source string, feeder bool) ([]sanePage, int, error) {
	dir, err := os.MkdirTemp(s.opt.TempDir, "relais-scan-")
	if err != nil {
		return nil, 0, fail(IOError, "spool directory: %v", err)
	}
	defer os.RemoveAll(dir)
	res := req.Resolution
	count := 1
	if feeder {
		count = s.opt.MaxPages + 1 // one more tells that there were too many
	}
	args := []string{"-d", s.device, "--format=jpeg",
		"--batch=" + filepath.Join(dir, "page-%04d.jpg"), "--batch-count=" + strconv.Itoa(count)}
	if o.hasResolution {
		res = o.resolution(req.Resolution)
		args = append(args, "--resolution", strconv.Itoa(res))
	}
	if m := o.mode(req.Color); m != "" {
		args = append(args, "--mode", m)
	}
	if source != "" {
		args = append(args, "--source", source)
	}
	if o.maxX > 0 && o.maxY > 0 {
		args = append(args, "-x", formatMM(min(A4WidthMM, o.maxX)), "-y", formatMM(min(A4HeightMM, o.maxY)))
	}
	_, errOut, runErr := s.run(ctx, args...)

	files, _ := filepath.Glob(filepath.Join(dir, "page-*.jpg"))
	slices.Sort(files)
	if ctx.Err() != nil {
		return nil, res, ctxError(ctx, len(files))
	}
	if runErr != nil {
		// With a batch count, an emptied feeder ends the batch with
		// SANE_STATUS_NO_DOCS: the pages scanned are the document.
		if e := saneFailure(runErr, errOut, len(files)); e.Reason != NoDocuments || len(files) == 0 {
			return nil, res, e
		}
	}
	if len(files) == 0 {
		if strings.Contains(strings.ToLower(errOut), "out of documents") {
			return nil, res, &Error{Reason: NoDocuments, Err: fmt.Errorf("scanimage: %s", lastLines(errOut, 2))}
		}
		return nil, res, fail(IOError, "scanimage wrote no page: %s", lastLines(errOut, 2))
	}
	if len(files) > s.opt.MaxPages {
		return nil, res, &Error{Reason: TooLarge, Pages: len(files), Err: fmt.Errorf("more than %d pages", s.opt.MaxPages)}
	}
	var pages []sanePage
	var total int64
	for i, f := range files {
		data, err := readBounded(f, s.opt.MaxPageBytes)
		if err != nil {
			return nil, res, &Error{Reason: ReasonOf(err), Pages: i, Err: err}
		}
		total += int64(len(data))
		if total > s.opt.MaxBytes {
			return nil, res, &Error{Reason: TooLarge, Pages: i, Err: fmt.Errorf("pages larger than %d bytes", s.opt.MaxBytes)}
		}
		p, err := sniff(data, s.opt.MaxPixels)
		if err == nil && p.format != FormatJPEG {
			err = fmt.Errorf("scanimage wrote %s, not JPEG", p.format)
		}
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Pages = i
				return nil, res, se
			}
			return nil, res, &Error{Reason: IOError, Pages: i, Err: fmt.Errorf("page %d: %w", i+1, err)}
		}
		pages = append(pages, sanePage{page: p, color: jpegColor(data)})
	}
	return pages, res, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fail(IOError, "%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fail(IOError, "%v", err)
	}
	if int64(len(data)) > limit {
		return nil, fail(TooLarge, "a page larger than %d bytes", limit)
	}
	return data, nil
}

// jpegColor reports whether a JPEG has colour components.
func jpegColor(data []byte) bool {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	return err == nil && cfg.ColorModel != color.GrayModel
}

func formatMM(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
