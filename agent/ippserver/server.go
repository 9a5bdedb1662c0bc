package ippserver

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/agent/printq"
)

// Path is where the printer lives: its URI is ipp://HOST:PORT/ipp/print.
const Path = "/ipp/print"

// Defaults and limits.
const (
	// DefaultJobsPerClientPerMinute is the job creation rate allowed to one
	// client when Config.JobsPerClientPerMinute is 0.
	DefaultJobsPerClientPerMinute = 30
	// MaxHeaderBytes bounds the IPP message (operation and job attributes)
	// that comes before the document.
	MaxHeaderBytes = 64 << 10
)

// Queue is what the server needs of the print queue; *printq.Queue has it.
type Queue interface {
	Submit(t printq.Ticket, doc io.Reader) (printq.Job, error)
	Create(t printq.Ticket) (printq.Job, error)
	SendDocument(id int, format string, doc io.Reader, last bool) (printq.Job, error)
	CloseJob(id int) (printq.Job, error)
	Cancel(id int) (printq.Job, error)
	Job(id int) (printq.Job, bool)
	Jobs() []printq.Job
	Printer() printq.PrinterStatus
}

// Config configures a Server.
type Config struct {
	Name     string // printer-name and printer-info: the site's name; empty: "Relais"
	Location string // printer-location
	// MakeAndModel is printer-make-and-model; empty: the site printer's,
	// followed by " (Relais)" so that people know where their job goes.
	MakeAndModel string
	// UUID is printer-uuid (urn:uuid:...), stable for the agent: use
	// PrinterUUID(site, agent). Empty: derived from Name.
	UUID string
	// MaxJobBytes bounds a document; 0: printq.DefaultMaxJobBytes. Keep it
	// equal to the queue's.
	MaxJobBytes int64
	// JobsPerClientPerMinute bounds the jobs one client (an IPv4 address or
	// an IPv6 /64) may create; 0: DefaultJobsPerClientPerMinute.
	JobsPerClientPerMinute int
	// AdminURL is the agent's local page (printer-more-info,
	// printer-supply-info-uri, job-more-info); empty: http://HOST/ with the
	// host the client used.
	AdminURL string
	// Identify is called by Identify-Printer with the requested actions
	// (only "flash" is supported) and message; it must not block. Nil: the
	// request is answered and nothing blinks.
	Identify func(actions []string, message string)
	// Now is the clock of the rate limiter and of the printer's times;
	// nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
}

// PrinterUUID returns the printer-uuid of an agent: a name-based (SHA-1)
// UUID of its site and agent ids, the same on every start.
func PrinterUUID(site, agent string) string {
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://relais.invalid/"+site+"/"+agent+Path)).String()
}

// Server is the IPP printer. It is an http.Handler.
type Server struct {
	q       Queue
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	limit   *limiter
	started time.Time
	icons   map[string][]byte // path → PNG

	mu          sync.Mutex
	caps        *capabilities // mirrored from the site's printer, rebuilt when its attributes change
	stateKey    string        // printer-state and reasons last reported
	stateChange time.Time
}

// New returns a server that queues jobs into q.
func New(q Queue, cfg Config) *Server {
	if cfg.Name == "" {
		cfg.Name = "Relais"
	}
	if cfg.UUID == "" {
		cfg.UUID = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://relais.invalid/name/"+cfg.Name)).String()
	}
	if cfg.MaxJobBytes <= 0 {
		cfg.MaxJobBytes = printq.DefaultMaxJobBytes
	}
	if cfg.JobsPerClientPerMinute <= 0 {
		cfg.JobsPerClientPerMinute = DefaultJobsPerClientPerMinute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		q:     q,
		cfg:   cfg,
		log:   cfg.Logger,
		now:   cfg.Now,
		limit: newLimiter(cfg.JobsPerClientPerMinute, time.Minute, cfg.Now),
		icons: makeIcons(),
	}
	s.started = s.now()
	s.stateChange = s.started
	return s
}

// ServeHTTP answers IPP requests posted to /ipp/print (or /), serves the
// printer's icons, and answers other GET requests with a short page that
// points to the local page.
//
// The handler reads at most MaxHeaderBytes of IPP attributes, then streams
// the document to the queue. It expects the http.Server to bound time:
// ReadHeaderTimeout (about 10 s), ReadTimeout long enough for the largest
// document on a slow link (a few minutes), WriteTimeout and IdleTimeout; a
// request cut short by a timeout leaves no job.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && isIPPPath(r.URL.Path):
		s.serveIPP(w, r)
	case r.Method == http.MethodPost:
		http.NotFound(w, r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		if png, ok := s.icons[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Cache-Control", "max-age=86400")
			w.Write(png)
			return
		}
		s.servePage(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// isIPPPath reports whether IPP requests are accepted at path: the printer,
// its jobs (some clients post to a job's URI) and the root.
func isIPPPath(path string) bool {
	return path == "/" || path == Path || strings.HasPrefix(path, Path+"/")
}

// servePage tells a browser where the local page is.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	admin := s.adminURL(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, `<!DOCTYPE html><html lang="fr"><meta charset="utf-8"><title>Relais</title>`+
		`<p>Ceci est l’imprimante du point d’accès (IPP). `+
		`Pour l’état de l’imprimante et les impressions en attente, ouvrez <a href="`+
		htmlEscape(admin)+`">la page locale</a>.</p></html>`+"\n")
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// host returns the host[:port] by which the client reached the server, from
// the Host header when it is a plain host name or address, else from the
// local address of the connection.
func host(r *http.Request) (hostname, port string) {
	if h, p, ok := splitHost(r.Host); ok {
		hostname, port = h, p
	}
	if port == "" || hostname == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if h, p, err := net.SplitHostPort(a.String()); err == nil {
				if hostname == "" {
					hostname = h
				}
				if port == "" {
					port = p
				}
			}
		}
	}
	if hostname == "" {
		hostname = "localhost"
	}
	return hostname, port
}

// splitHost splits a Host header value, accepting only host names, IPv4
// addresses and bracketed IPv6 addresses (with a zone), and a numeric port.
func splitHost(h string) (hostname, port string, ok bool) {
	if h == "" || len(h) > 255 {
		return "", "", false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		hostname, rest := h[1:end], h[end+1:]
		if !validChars(hostname, hostChars+":%") || !strings.Contains(hostname, ":") {
			return "", "", false
		}
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || !digits(rest[1:]) {
				return "", "", false
			}
			port = rest[1:]
		}
		return "[" + hostname + "]", port, true
	}
	hostname, port, found := strings.Cut(h, ":")
	if found && !digits(port) {
		return "", "", false
	}
	if hostname == "" || !validChars(hostname, hostChars) {
		return "", "", false
	}
	return hostname, port, true
}

// hostChars are the characters of host names and IPv4 addresses.
const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

func validChars(s, allowed string) bool {
	for _, c := range s {
		if !strings.ContainsRune(allowed, c) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	return s != "" && len(s) <= 5 && validChars(s, "0123456789")
}

// printerURI is the printer's URI as seen by the client: ipp://host:port/ipp/print.
func printerURI(r *http.Request) string {
	h, p := host(r)
	if p == "" {
		p = "631"
	}
	return "ipp://" + h + ":" + p + Path
}

// httpBase is http://host:port, the server itself over HTTP (for icons).
func httpBase(r *http.Request) string {
	h, p := host(r)
	if p == "" {
		return "http://" + h
	}
	return "http://" + h + ":" + p
}

// adminURL is the local page: Config.AdminURL, or http://host/.
func (s *Server) adminURL(r *http.Request) string {
	if s.cfg.AdminURL != "" {
		return s.cfg.AdminURL
	}
	h, _ := host(r)
	return "http://" + h + "/"
}

// clientIP returns the address of the client, without port or zone.
func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		h = r.RemoteAddr
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i]
	}
	return h
}
