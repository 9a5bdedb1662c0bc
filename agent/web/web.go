// Package web is the agent's local page for the aidant numérique, served on
// the site LAN: the visitors' scans waiting in the inbox (view, download as
// PDF, delete), the held prints (print, cancel, print all), and the state of
// the printer, the scanner and the Wi-Fi in plain words, in French unless the
// browser prefers English; /status is the technician's detail. The page works
// without JavaScript (a small same-origin script only reloads it every 30 s)
// and is answered only to clients whose connection comes from the [web] allow
// networks, by the connection's own address, never a header; others get 403.
// Requests must name the agent by an IP address, localhost or one of its host
// names (421 otherwise), which stops DNS rebinding. Every POST carries a
// per-page token (an HMAC of its expiry, under a key made at start) and is
// refused if the browser says it comes from another origin; actions redirect
// back with a message (POST, redirect, GET). Held prints show their job name:
// the aidant is on site, and it is how they pick the right one; the user name
// and the client address are never shown. Scans are sent with no-store
// caching and linked by their unguessable ID, which no-referrer keeps from
// leaking.
package web

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

// Bounds.
const (
	// maxFormBytes bounds a POST body.
	maxFormBytes = 4 << 10
	// tokenTTL is how long a page's token is accepted.
	tokenTTL = 24 * time.Hour
	// maxNameRunes bounds a job name as shown.
	maxNameRunes = 80
	// maxSiteRunes bounds the site name as shown.
	maxSiteRunes = 80
)

// Queue is what the page uses of the print queue (*printq.Queue).
type Queue interface {
	Jobs() []printq.Job
	Printer() printq.PrinterStatus
	Release(id int) (printq.Job, error)
	ReleaseAll() (int, error)
	Cancel(id int) (printq.Job, error)
}

// Inbox is what the page uses of the scan inbox (*inbox.Inbox).
type Inbox interface {
	List() []inbox.Scan
	Open(id string) (io.ReadCloser, inbox.Scan, error)
	Delete(id string) error
	Retention() time.Duration
	DeleteAfterDownload() bool
}

// Clock tells the time: inbox and printq clocks fit.
type Clock interface{ Now() time.Time }

// PageStatus is the state of the site beyond the print queue, which the
// agent fills at each request. The page turns it into plain words; nil
// pointers mean "not configured" or "not known yet".
type PageStatus struct {
	Version   string       // relais-agent version
	Started   time.Time    // when the agent started; zero: not shown
	NoPrinter bool         // [printer] uri is empty: no printer to speak of
	Hold      bool         // print release is on ([printer] hold)
	Scanner   *api.Scanner // nil: no scanner configured ([scanner] driver none)
	WiFi      *api.WiFi    // nil: Wi-Fi not watched; the line is left out
	Host      *api.Host    // nil: not measured yet
	// Faults are the open faults of every device, as reported to central;
	// scanner and Wi-Fi faults explain their lines, all show on /status.
	Faults []api.Fault
	Outbox *OutboxStatus // nil: no central configured
}

// OutboxStatus is the events waiting for central, for the technician.
type OutboxStatus struct {
	Depth   uint64 // events not yet acknowledged by central
	LastSeq uint64 // last event recorded
	LastAck uint64 // central acknowledged every event up to it
}

// Config configures the page.
type Config struct {
	// Allow are the networks whose clients may see the page ([web] allow).
	Allow []netip.Prefix
	// Hostnames are the names the page may be reached by, besides IP
	// addresses and localhost; nil: this machine's host name, with and
	// without .local.
	Hostnames []string
	SiteName  string // [site] name
	Inbox     Inbox
	Queue     Queue
	Status    func() PageStatus // nil: nothing beyond the queue and inbox
	Clock     Clock             // nil: the real clock
	Location  *time.Location    // times shown; nil: time.Local
	Logger    *slog.Logger      // nil: slog.Default()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

type handler struct {
	cfg   Config
	mux   *http.ServeMux
	key   []byte
	hosts map[string]bool
	log   *slog.Logger
}

// New returns the local page's handler.
func New(cfg Config) http.Handler {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Status == nil {
		cfg.Status = func() PageStatus { return PageStatus{} }
	}
	cfg.SiteName = truncate(cfg.SiteName, maxSiteRunes)
	h := &handler{cfg: cfg, mux: http.NewServeMux(), key: make([]byte, 32), hosts: map[string]bool{"localhost": true}, log: cfg.Logger}
	rand.Read(h.key)
	names := cfg.Hostnames
	if names == nil {
		if n, err := os.Hostname(); err == nil && n != "" {
			short, _, _ := strings.Cut(n, ".")
			names = []string{n, short, short + ".local"}
		}
	}
	for _, n := range names {
		h.hosts[strings.TrimSuffix(strings.ToLower(n), ".")] = true
	}
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /status", h.status)
	h.mux.HandleFunc("GET /scans/{id}", h.download)
	h.mux.HandleFunc("GET /scans/{id}/view", h.view)
	h.mux.HandleFunc("POST /scans/{id}/delete", h.deleteScan)
	h.mux.HandleFunc("POST /jobs/{id}/release", h.release)
	h.mux.HandleFunc("POST /jobs/{id}/cancel", h.cancel)
	h.mux.HandleFunc("POST /jobs/release-all", h.releaseAll)
	h.mux.HandleFunc("GET /static/{file}", h.static)
	h.mux.HandleFunc("/", h.notFound)
	return h
}

// ServeHTTP checks the client's address and the Host, sets the security
// headers, bounds the body and routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if !h.allowed(r.RemoteAddr) {
		h.log.Debug("web: refused a client outside [web] allow", "remote", r.RemoteAddr)
		h.message(w, r, http.StatusForbidden, "Access refused",
			"This page can only be opened from the computers of the reception desk.")
		return
	}
	if !h.knownHost(r.Host) {
		h.message(w, r, http.StatusMisdirectedRequest, "Unknown address",
			"Open this page with the address of the Relais box.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	h.mux.ServeHTTP(w, r)
}

// allowed reports whether a connection's remote address is in an allowed
// network.
func (h *handler) allowed(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range h.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// knownHost reports whether the Host header names this agent: an IP
// address, localhost, or one of its host names.
func (h *handler) knownHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return h.hosts[host]
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.message(w, r, http.StatusNotFound, "Page not found", "This page does not exist.")
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "�")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
