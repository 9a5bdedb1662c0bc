// Package scanner is relais-sim's simulated eSCL (AirScan) scanner: the
// device sane-airscan and Relais's escl driver talk to. It serves, under
// /eSCL/:
//
//	GET    ScannerCapabilities          built-in, or a real device's replayed
//	GET    ScannerStatus                State, AdfState, the last jobs
//	POST   ScanJobs                     ScanSettings → 201 Created, Location
//	GET    ScanJobs/{id}/NextDocument   a page, then 404 when the job is done
//	DELETE ScanJobs/{id}                cancels the job
//
// A job from the glass gives one page. A job from the feeder gives one page
// per sheet loaded (two in duplex) until the feeder is empty. Pages are
// generated JPEGs (see PageCode), or one-page PDFs when PDF is asked for
// and offered. Faults are set at run time with Command, in the language the
// control endpoint (ControlHandler) accepts: an empty feeder, a jam now or
// at the Nth sheet, the feeder's door open, busy (503 while another user
// holds the scanner), down (State Down, 503), offline (connections
// refused) and pages not ready yet (503 on NextDocument). Job ages and the
// expiry of abandoned jobs follow an injectable clock.
package scanner

import (
	"github.com/relais-fr/relais/agent/sim/control"

	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relais-fr/relais/agent/scan"
)

// Clock tells the time. Tests inject a clock they advance themselves.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Limits.
const (
	// MaxSettingsBytes bounds a ScanSettings request.
	MaxSettingsBytes = 64 << 10
	// MaxPixels bounds a page the simulator draws (A4 at 600 dpi is 35 M).
	MaxPixels = 40_000_000
	// MaxFeeder bounds the sheets loaded in the feeder.
	MaxFeeder = 500
	// MaxFinishedJobs is how many finished jobs ScannerStatus lists.
	MaxFinishedJobs = 16
	// JobIdleTimeout aborts a job that no client has asked a page of for
	// that long, as devices do with an abandoned job.
	JobIdleTimeout = 2 * time.Minute
)

// Config configures a Scanner.
type Config struct {
	// Capabilities is a ScannerCapabilities document to replay (see
	// LoadCapabilities); nil means the built-in one.
	Capabilities []byte
	// ADF is the number of sheets loaded in the feeder at start.
	ADF int
	// AbsoluteLocation makes ScanJobs answer an absolute Location naming
	// the host "localhost", as some devices do; otherwise a path.
	AbsoluteLocation bool
	// TrailingSlash makes job locations end with a slash, as some devices'
	// do.
	TrailingSlash bool
	// Clock dates jobs; nil means the real clock.
	Clock Clock
	// Log receives a line per job event and fault; nil discards.
	Log *slog.Logger
}

// Faults are the faults the scanner simulates.
type Faults struct {
	Jam      bool // the feeder is jammed: feeder jobs are aborted
	JamAt    int  // if > 0, the JamAt-th next sheet fed jams
	Open     bool // the feeder's door is open: feeder jobs are aborted
	Busy     bool // another user holds the scanner: ScanJobs answers 503
	Down     bool // the scanner is down: State Down, ScanJobs and NextDocument answer 503
	Offline  bool // not listening: connections refused
	NotReady int  // the next NotReady NextDocument requests answer 503
}

// Job states, as eSCL names them.
const (
	jobProcessing = "Processing"
	jobCompleted  = "Completed"
	jobCanceled   = "Canceled"
	jobAborted    = "Aborted"
)

type job struct {
	id        int
	uuid      string
	settings  scan.Settings
	feeder    bool
	duplex    bool
	state     string
	reason    string
	created   time.Time
	touched   time.Time // last request about it
	delivered int       // pages sent
	backSide  bool      // duplex: the back of the last sheet is still to send
	width     int       // pixels
	height    int
}

func (j *job) finished() bool { return j.state != jobProcessing }

// Scanner is a simulated eSCL scanner. Its methods are safe for concurrent
// use.
type Scanner struct {
	cfg   Config
	caps  *scan.Capabilities
	raw   []byte // the capabilities document served
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	faults Faults
	adf    int
	jobs   []*job
	nextID int
	pages  int // pages delivered since start

	// Listening, when Listen was called.
	addr    string
	srv     *http.Server
	served  chan struct{}
	serving sync.WaitGroup
}

// New returns a scanner; Listen serves it, or use it as an http.Handler.
func New(cfg Config) (*Scanner, error) {
	raw := cfg.Capabilities
	if raw == nil {
		raw = BuiltinCapabilities()
	}
	caps, err := scan.ParseCapabilities(raw)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if cfg.ADF < 0 || cfg.ADF > MaxFeeder {
		return nil, fmt.Errorf("feeder: %d sheets, want 0 to %d", cfg.ADF, MaxFeeder)
	}
	if cfg.ADF > 0 && caps.ADF == nil {
		return nil, errors.New("feeder: the device has no document feeder")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{cfg: cfg, caps: caps, raw: raw, clock: cfg.Clock, log: cfg.Log, adf: cfg.ADF, nextID: 1}, nil
}

// Capabilities returns the capabilities the scanner serves, parsed.
func (s *Scanner) Capabilities() *scan.Capabilities { return s.caps }

// Listen serves eSCL on addr (host:port; port 0 picks one) until Close.
// The address is kept across offline periods.
func (s *Scanner) Listen(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr != "" {
		return errors.New("scanner already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.serveLocked(ln)
	return nil
}

func (s *Scanner) serveLocked(ln net.Listener) {
	srv := control.NewServer(s, s.log)
	served := make(chan struct{})
	s.srv, s.served = srv, served
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		defer close(served)
		srv.Serve(ln)
	}()
}

// URL returns the eSCL root, http://HOST:PORT/eSCL, or "" before Listen. A
// wildcard listening address is given as the loopback address.
func (s *Scanner) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return ""
	}
	return "http://" + control.HostPort(s.addr) + "/eSCL"
}

// Close stops listening.
func (s *Scanner) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.serving.Wait()
	return err
}

// Faults returns the faults in effect.
func (s *Scanner) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetFaults replaces the faults in effect. Going offline closes the
// listener and every connection; coming back listens on the same address.
func (s *Scanner) SetFaults(f Faults) error {
	if f.JamAt < 0 || f.NotReady < 0 {
		return errors.New("negative count")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Offline != s.faults.Offline {
		if s.addr == "" {
			return errors.New("offline: the scanner is not listening on a port of its own")
		}
		if f.Offline {
			s.srv.Close()
			<-s.served
			s.srv = nil
		} else {
			ln, err := net.Listen("tcp", s.addr)
			if err != nil {
				return fmt.Errorf("back online: %w", err)
			}
			s.serveLocked(ln)
		}
	}
	if f != s.faults {
		s.log.Info("faults", "jam", f.Jam, "jam-at", f.JamAt, "open", f.Open, "busy", f.Busy,
			"down", f.Down, "offline", f.Offline, "not-ready", f.NotReady)
	}
	s.faults = f
	return nil
}

// LoadADF puts n sheets in the feeder, replacing what it held.
func (s *Scanner) LoadADF(n int) error {
	if n < 0 || n > MaxFeeder {
		return fmt.Errorf("feeder: %d sheets, want 0 to %d", n, MaxFeeder)
	}
	if n > 0 && s.caps.ADF == nil {
		return errors.New("feeder: the device has no document feeder")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adf = n
	s.log.Info("feeder loaded", "sheets", n)
	return nil
}

// expireLocked aborts the jobs abandoned for JobIdleTimeout, and forgets
// the oldest finished jobs beyond MaxFinishedJobs.
func (s *Scanner) expireLocked() {
	now := s.clock.Now()
	finished := 0
	for _, j := range s.jobs {
		if !j.finished() && now.Sub(j.touched) >= JobIdleTimeout {
			s.finishLocked(j, jobAborted, "AbortedBySystem")
		}
		if j.finished() {
			finished++
		}
	}
	kept := s.jobs[:0]
	for _, j := range s.jobs {
		if j.finished() && finished > MaxFinishedJobs {
			finished--
			continue
		}
		kept = append(kept, j)
	}
	clear(s.jobs[len(kept):])
	s.jobs = kept
}

func (s *Scanner) finishLocked(j *job, state, reason string) {
	j.state, j.reason = state, reason
	s.log.Info("job finished", "job", j.id, "state", state, "reason", reason, "pages", j.delivered)
}

// activeLocked returns the job in progress, or nil.
func (s *Scanner) activeLocked() *job {
	for _, j := range s.jobs {
		if !j.finished() {
			return j
		}
	}
	return nil
}

// stateLocked returns pwg:State and scan:AdfState ("" without a feeder).
func (s *Scanner) stateLocked() (string, string) {
	state := "Idle"
	switch {
	case s.faults.Down:
		state = "Down"
	case s.faults.Busy || s.activeLocked() != nil:
		state = "Processing"
	}
	if s.caps.ADF == nil {
		return state, ""
	}
	adf := "ScannerAdfEmpty"
	switch {
	case s.faults.Jam:
		adf = "ScannerAdfJam"
	case s.faults.Open:
		adf = "ScannerAdfDoorOpen"
	case s.adf > 0:
		adf = "ScannerAdfLoaded"
	}
	return state, adf
}

// ServeHTTP serves eSCL under /eSCL/.
func (s *Scanner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/eSCL/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	path = strings.TrimSuffix(path, "/")
	switch {
	case path == "ScannerCapabilities" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/xml")
		w.Write(s.raw)
	case path == "ScannerStatus" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/xml")
		w.Write(s.statusXML())
	case path == "ScanJobs" && r.Method == http.MethodPost:
		s.createJob(w, r)
	case strings.HasPrefix(path, "ScanJobs/"):
		rest := strings.TrimPrefix(path, "ScanJobs/")
		idText, sub, _ := strings.Cut(rest, "/")
		id, err := strconv.Atoi(idText)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		switch {
		case sub == "NextDocument" && r.Method == http.MethodGet:
			s.nextDocument(w, id)
		case sub == "" && r.Method == http.MethodDelete:
			s.deleteJob(w, id)
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	case path == "ScannerCapabilities", path == "ScannerStatus", path == "ScanJobs":
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

// statusXML writes ScannerStatus.
func (s *Scanner) statusXML() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	state, adf := s.stateLocked()
	now := s.clock.Now()
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<scan:ScannerStatus xmlns:scan="%s" xmlns:pwg="%s">`+
		`<pwg:Version>%s</pwg:Version><pwg:State>%s</pwg:State>`, scan.NSScan, scan.NSPWG, xmlText(s.caps.Version), state)
	if adf != "" {
		fmt.Fprintf(&b, `<scan:AdfState>%s</scan:AdfState>`, adf)
	}
	b.WriteString(`<scan:Jobs>`)
	for i := len(s.jobs) - 1; i >= 0; i-- { // newest first, as devices list them
		j := s.jobs[i]
		toTransfer := 0
		if !j.finished() {
			toTransfer = 1
		}
		reason := j.reason
		if reason == "" {
			reason = "JobScanning"
		}
		fmt.Fprintf(&b, `<scan:JobInfo><pwg:JobUri>%s</pwg:JobUri><pwg:JobUuid>%s</pwg:JobUuid>`+
			`<scan:Age>%d</scan:Age><pwg:ImagesCompleted>%d</pwg:ImagesCompleted>`+
			`<pwg:ImagesToTransfer>%d</pwg:ImagesToTransfer><pwg:JobState>%s</pwg:JobState>`+
			`<pwg:JobStateReasons><pwg:JobStateReason>%s</pwg:JobStateReason></pwg:JobStateReasons></scan:JobInfo>`,
			jobPath(j.id), j.uuid, int(now.Sub(j.created)/time.Second), j.delivered, toTransfer, j.state, reason)
	}
	b.WriteString(`</scan:Jobs></scan:ScannerStatus>` + "\n")
	return []byte(b.String())
}

func xmlText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func jobPath(id int) string { return "/eSCL/ScanJobs/" + strconv.Itoa(id) }

// createJob handles POST ScanJobs.
func (s *Scanner) createJob(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSettingsBytes))
	if err != nil {
		http.Error(w, "ScanSettings too large", http.StatusRequestEntityTooLarge)
		return
	}
	set, err := scan.ParseSettings(body)
	if err != nil {
		http.Error(w, "bad ScanSettings: "+err.Error(), http.StatusBadRequest)
		return
	}
	j, code, msg := s.newJob(set)
	if j == nil {
		s.log.Info("job refused", "status", code, "why", msg)
		http.Error(w, msg, code)
		return
	}
	loc := jobPath(j.id)
	if s.cfg.AbsoluteLocation {
		_, port, _ := net.SplitHostPort(r.Host)
		host := "localhost"
		if port != "" {
			host = net.JoinHostPort(host, port)
		}
		loc = "http://" + host + loc
	}
	if s.cfg.TrailingSlash {
		loc += "/"
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusCreated)
}

// newJob checks the settings against the capabilities and the scanner's
// state, and creates the job; or it returns the HTTP status and why not.
func (s *Scanner) newJob(set scan.Settings) (*job, int, string) {
	var ic *scan.InputCaps
	feeder := false
	switch set.Source {
	case "Platen", "":
		ic = s.caps.Platen
	case "Feeder", "ADF", "Adf":
		ic, feeder = s.caps.ADF, true
		if set.Duplex {
			ic = s.caps.ADFDuplex
		}
	default:
		return nil, http.StatusConflict, fmt.Sprintf("unknown InputSource %q", set.Source)
	}
	if ic == nil {
		return nil, http.StatusConflict, fmt.Sprintf("no such source: %s (duplex %t)", set.Source, set.Duplex)
	}
	switch {
	case !ic.HasColorMode(set.ColorMode):
		return nil, http.StatusConflict, fmt.Sprintf("ColorMode %q not offered", set.ColorMode)
	case set.ColorMode != "RGB24" && set.ColorMode != "Grayscale8":
		return nil, http.StatusConflict, fmt.Sprintf("ColorMode %q not simulated", set.ColorMode)
	case !ic.HasFormat(set.Format):
		return nil, http.StatusConflict, fmt.Sprintf("DocumentFormat %q not offered", set.Format)
	case set.Format != scan.FormatJPEG && set.Format != scan.FormatPDF:
		return nil, http.StatusConflict, fmt.Sprintf("DocumentFormat %q not simulated", set.Format)
	case set.XResolution != set.YResolution || !ic.SupportsResolution(set.XResolution):
		return nil, http.StatusConflict, fmt.Sprintf("resolution %d×%d not offered", set.XResolution, set.YResolution)
	}
	wu, hu := set.Width, set.Height
	if wu == 0 {
		wu = ic.MaxWidth
	}
	if hu == 0 {
		hu = ic.MaxHeight
	}
	if ic.MaxWidth > 0 {
		wu = min(wu, ic.MaxWidth-min(set.XOffset, ic.MaxWidth))
	}
	if ic.MaxHeight > 0 {
		hu = min(hu, ic.MaxHeight-min(set.YOffset, ic.MaxHeight))
	}
	wpx, hpx := wu*set.XResolution/300, hu*set.YResolution/300
	if wpx <= 0 || hpx <= 0 {
		return nil, http.StatusConflict, "empty scan region"
	}
	if int64(wpx)*int64(hpx) > MaxPixels {
		return nil, http.StatusConflict, fmt.Sprintf("page of %d×%d pixels: more than the simulator draws", wpx, hpx)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	switch {
	case s.faults.Down:
		return nil, http.StatusServiceUnavailable, "scanner down"
	case s.faults.Busy:
		return nil, http.StatusServiceUnavailable, "scanner busy"
	case s.activeLocked() != nil:
		return nil, http.StatusServiceUnavailable, "another job is in progress"
	}
	now := s.clock.Now()
	j := &job{
		id: s.nextID, settings: set, feeder: feeder, duplex: feeder && set.Duplex,
		state: jobProcessing, created: now, touched: now, width: wpx, height: hpx,
	}
	j.uuid = fmt.Sprintf("00000000-0000-4000-8000-%012d", j.id)
	s.nextID++
	s.jobs = append(s.jobs, j)
	s.log.Info("job created", "job", j.id, "source", set.Source, "duplex", j.duplex, "format", set.Format,
		"mode", set.ColorMode, "dpi", set.XResolution, "width", wpx, "height", hpx)
	return j, http.StatusCreated, ""
}

// nextDocument handles GET ScanJobs/{id}/NextDocument.
func (s *Scanner) nextDocument(w http.ResponseWriter, id int) {
	j, n, code, msg := s.takePage(id)
	if j == nil {
		http.Error(w, msg, code)
		return
	}
	set := j.settings
	img := renderPage(j.width, j.height, set.XResolution, set.ColorMode == "RGB24", n)
	data, err := encodeJPEG(img)
	ctype := scan.FormatJPEG
	if err == nil && set.Format == scan.FormatPDF {
		data, err = pagePDF(data, j.width, j.height, set.XResolution)
		ctype = scan.FormatPDF
	}
	if err != nil {
		s.log.Error("drawing a page", "job", id, "err", err)
		http.Error(w, "cannot draw the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// takePage decides what NextDocument answers: the job and the number of
// the page to send, or an HTTP status and why there is none.
func (s *Scanner) takePage(id int) (*job, int, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	var j *job
	for _, x := range s.jobs {
		if x.id == id {
			j = x
		}
	}
	if j == nil {
		return nil, 0, http.StatusNotFound, "no such job"
	}
	if j.finished() {
		return nil, 0, http.StatusNotFound, "job " + strings.ToLower(j.state)
	}
	j.touched = s.clock.Now()
	switch {
	case s.faults.Down:
		return nil, 0, http.StatusServiceUnavailable, "scanner down"
	case s.faults.NotReady > 0:
		s.faults.NotReady--
		return nil, 0, http.StatusServiceUnavailable, "page not ready"
	}
	if !j.feeder {
		if j.delivered > 0 {
			s.finishLocked(j, jobCompleted, "JobCompletedSuccessfully")
			return nil, 0, http.StatusNotFound, "job completed"
		}
		return s.deliverLocked(j)
	}
	if j.backSide {
		j.backSide = false
		return s.deliverLocked(j)
	}
	switch {
	case s.faults.Jam:
		s.finishLocked(j, jobAborted, "AbortedBySystem")
		return nil, 0, http.StatusNotFound, "feeder jammed"
	case s.faults.Open:
		s.finishLocked(j, jobAborted, "AbortedBySystem")
		return nil, 0, http.StatusNotFound, "feeder door open"
	case s.adf == 0 && j.delivered == 0:
		s.finishLocked(j, jobAborted, "AbortedBySystem")
		return nil, 0, http.StatusNotFound, "feeder empty"
	case s.adf == 0:
		s.finishLocked(j, jobCompleted, "JobCompletedSuccessfully")
		return nil, 0, http.StatusNotFound, "job completed"
	}
	if s.faults.JamAt > 0 {
		s.faults.JamAt--
		if s.faults.JamAt == 0 {
			s.faults.Jam = true
			s.log.Info("feeder jammed", "job", j.id, "after", j.delivered)
			s.finishLocked(j, jobAborted, "AbortedBySystem")
			return nil, 0, http.StatusNotFound, "feeder jammed"
		}
	}
	s.adf--
	j.backSide = j.duplex
	return s.deliverLocked(j)
}

func (s *Scanner) deliverLocked(j *job) (*job, int, int, string) {
	j.delivered++
	s.pages++
	s.log.Info("page", "job", j.id, "page", j.delivered, "feeder", s.adf)
	return j, j.delivered, http.StatusOK, ""
}

// deleteJob handles DELETE ScanJobs/{id}.
func (s *Scanner) deleteJob(w http.ResponseWriter, id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		if j.id == id {
			if !j.finished() {
				s.finishLocked(j, jobCanceled, "JobCanceledByUser")
			}
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	http.Error(w, "no such job", http.StatusNotFound)
}

// Status is a summary of the scanner's state, as the control endpoint
// reports it.
type Status struct {
	URL       string   `json:"url,omitempty"`
	State     string   `json:"state"`               // eSCL pwg:State
	ADFState  string   `json:"adf_state,omitempty"` // eSCL scan:AdfState
	ADF       int      `json:"adf"`                 // sheets in the feeder
	Faults    []string `json:"faults"`              // jam, "jam-at 2", open, busy, down, offline, "not-ready 3"
	Active    int      `json:"active"`              // jobs in progress
	Completed int      `json:"completed"`           // among the jobs listed
	Aborted   int      `json:"aborted"`             // aborted or canceled, among the jobs listed
	Pages     int      `json:"pages"`               // pages sent since start
}

// Status returns the scanner's state.
func (s *Scanner) Status() Status {
	url := s.URL()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	state, adf := s.stateLocked()
	st := Status{URL: url, State: state, ADFState: adf, ADF: s.adf, Faults: []string{}, Pages: s.pages}
	f := s.faults
	for _, x := range []struct {
		on   bool
		name string
	}{{f.Jam, "jam"}, {f.Open, "open"}, {f.Busy, "busy"}, {f.Down, "down"}, {f.Offline, "offline"}} {
		if x.on {
			st.Faults = append(st.Faults, x.name)
		}
	}
	if f.JamAt > 0 {
		st.Faults = append(st.Faults, "jam-at "+strconv.Itoa(f.JamAt))
	}
	if f.NotReady > 0 {
		st.Faults = append(st.Faults, "not-ready "+strconv.Itoa(f.NotReady))
	}
	for _, j := range s.jobs {
		switch j.state {
		case jobProcessing:
			st.Active++
		case jobCompleted:
			st.Completed++
		default:
			st.Aborted++
		}
	}
	return st
}
