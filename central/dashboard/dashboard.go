// Package dashboard is relais-central's web dashboard for people, rendered
// on the server with html/template: the fleet's health worst first, each
// fault in plain words with the time it started, updated live over
// Server-Sent Events (GET /events); one agent's detail (printer, supplies,
// queue, scanner, Wi-Fi, host, fault timeline) with its remote actions;
// usage compared between sites with SVG charts drawn on the server and a
// CSV export; and the faults, open and closed, which technicians
// acknowledge. Every page needs a session (central/auth); remote actions
// and acknowledgements need the admin or technician role, and managers do
// not see their buttons. Pages are in French unless the browser prefers
// English or the reader chose it (cookie "lang"). They work without
// JavaScript; one small same-origin script only reloads the live parts on
// an update. The Content-Security-Policy allows no inline script or style:
// the charts' style attributes are rewritten into SVG presentation
// attributes through an allow-list of elements and attributes.
//
// Routes: GET /login, POST /login, POST /logout, GET /lang/{fr|en}?next=,
// GET /static/{file}; GET / (fleet) and /fleet/live (its live part), GET
// /events (the stream), GET /sites/{site}/{agent} and .../live, POST
// /sites/{site}/{agent}/commands; GET /usage and /usage.csv; GET /faults,
// POST /faults/{id}/ack.
//
// The login form carries its own CSRF token, since there is no session yet
// to hold one: a random nonce in an HttpOnly, SameSite=Strict cookie and,
// in the form, its HMAC under a key made at start; cross-origin posts are
// also refused by the browser's Sec-Fetch-Site and Origin headers. So a
// third-party page cannot log a victim into an attacker's account.
//
// The CSV export (GET /usage.csv) has two formats. "excel", the default, is
// for a spreadsheet opened by double click in a French locale: semicolon
// separators (French Excel's list separator, since the comma is its decimal
// sign), a UTF-8 byte order mark (without it Excel reads the file as
// Windows-1252), column titles in the reader's language, and fields that
// a spreadsheet would take for a formula prefixed with an apostrophe.
// "standard" is RFC 4180 for tools: commas, no BOM, stable English column
// names, values untouched. Both end lines with CRLF and quote as RFC 4180
// says; dates are ISO 8601 (YYYY-MM-DD), which both read as dates.
package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// Bounds of requests.
const (
	// maxQueryBytes bounds a request's query string; maxPathBytes its path.
	maxQueryBytes = 4 << 10
	maxPathBytes  = 512
	// maxFormBytes bounds a POST body.
	maxFormBytes = 16 << 10
	// storeTimeout bounds the store queries of one request.
	storeTimeout = 15 * time.Second
	// sendTimeout bounds the sending of a remote command.
	sendTimeout = 10 * time.Second
)

// contentSecurityPolicy allows only the dashboard's own script, style and
// connections: no inline script or style, no framing, forms to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Commander sends a remote command to an agent; the broker implements it.
// SendCommand returns once the command is handed to MQTT (QoS 1), not when
// the agent answers: the answer arrives later as a cmd-result, which ingest
// records with store.CommandDone.
type Commander interface {
	SendCommand(ctx context.Context, site, agent string, c api.Command) error
}

// Options configure a Dashboard.
type Options struct {
	// Store holds everything shown; required.
	Store store.Store
	// Auth authenticates requests; required.
	Auth *auth.Auth
	// Commander sends remote actions; required.
	Commander Commander
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OfflineAfter is how long an agent may be silent before it shows
	// offline ([alerts] offline_after); 10 minutes when zero.
	OfflineAfter time.Duration
	// Version is relais-central's version, shown in the footer.
	Version string
	// Logger receives errors; slog.Default() when nil.
	Logger *slog.Logger
	// Location is the time zone of the times shown; time.Local when nil.
	Location *time.Location
	// MaxSubscribers bounds the live streams open at once; 256 when zero.
	MaxSubscribers int
}

// Dashboard serves the dashboard's pages. Create it with New.
type Dashboard struct {
	o        Options
	log      *slog.Logger
	pages    map[string]*template.Template
	static   map[string]staticFile
	hub      *hub
	loginKey []byte
	handler  http.Handler

	fleetCache fragmentCache
}

// staticFile is one embedded file of static/.
type staticFile struct {
	body []byte
	etag string
	mime string
}

// New returns a Dashboard; it fails when a required option is missing.
func New(o Options) (*Dashboard, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("dashboard: Options.Store is required")
	case o.Auth == nil:
		return nil, errors.New("dashboard: Options.Auth is required")
	case o.Commander == nil:
		return nil, errors.New("dashboard: Options.Commander is required")
	case o.OfflineAfter < 0:
		return nil, fmt.Errorf("dashboard: Options.OfflineAfter %v is negative", o.OfflineAfter)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OfflineAfter == 0 {
		o.OfflineAfter = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.MaxSubscribers <= 0 {
		o.MaxSubscribers = defaultMaxSubscribers
	}
	d := &Dashboard{
		o:        o,
		log:      o.Logger,
		hub:      newHub(o.MaxSubscribers),
		loginKey: make([]byte, 32),
		static:   map[string]staticFile{},
	}
	rand.Read(d.loginKey)
	if err := d.loadStatic(); err != nil {
		return nil, err
	}
	if err := d.loadTemplates(); err != nil {
		return nil, err
	}
	d.handler = d.routes()
	return d, nil
}

// Handler returns the dashboard's handler. It serves every path but
// /api/v1/, /metrics and /healthz, which the caller routes elsewhere. It
// resolves sessions with Options.Auth's Middleware itself.
func (d *Dashboard) Handler() http.Handler { return d.handler }

func (d *Dashboard) routes() http.Handler {
	mux := http.NewServeMux()
	// view: any logged-in user; act: admins and technicians.
	logged := d.o.Auth.Require()
	acting := d.o.Auth.Require(store.Admin, store.Technician)
	view := func(h http.HandlerFunc) http.Handler { return logged(h) }
	act := func(h http.HandlerFunc) http.Handler { return acting(h) }

	mux.HandleFunc("GET /login", d.loginForm)
	mux.HandleFunc("POST /login", d.login)
	mux.Handle("POST /logout", view(d.logout))
	mux.HandleFunc("GET /lang/{lang}", d.setLang)
	mux.HandleFunc("GET /static/{file}", d.serveStatic)

	mux.Handle("GET /{$}", view(d.fleet))
	mux.Handle("GET /fleet/live", view(d.fleetLive))
	mux.Handle("GET /events", view(d.events))
	mux.Handle("GET /sites/{site}/{agent}", view(d.site))
	mux.Handle("GET /sites/{site}/{agent}/live", view(d.siteLive))
	mux.Handle("POST /sites/{site}/{agent}/commands", act(d.command))
	mux.Handle("GET /usage", view(d.usage))
	mux.Handle("GET /usage.csv", view(d.usageCSV))
	mux.Handle("GET /faults", view(d.faults))
	mux.Handle("POST /faults/{id}/ack", act(d.ackFault))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, http.StatusNotFound, d.words(r).T("error.notfound"))
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, http.StatusForbidden, d.words(r).T("error.crossorigin"))
	}))
	return d.secure(cop.Handler(d.o.Auth.Middleware(mux)))
}

// secure sets the security headers, bounds the request and routes it.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.Set("Cache-Control", "no-store")
		h.Set("Vary", "Cookie, Accept-Language")
		if len(r.URL.RawQuery) > maxQueryBytes || len(r.URL.Path) > maxPathBytes {
			http.Error(w, d.words(r).T("error.toolong"), http.StatusRequestURITooLong)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		next.ServeHTTP(w, r)
	})
}

// words returns the texts in the request's language.
func (d *Dashboard) words(r *http.Request) words {
	return words{lang: pickLang(r), loc: d.o.Location}
}

// storeCtx bounds the store queries of a request.
func storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), storeTimeout)
}

// page is what every template gets.
type page struct {
	words
	Title     string
	Nav       string // the menu entry of the page: fleet, usage, faults
	User      *auth.Principal
	CanAct    bool
	Now       time.Time
	Path      string // the page's path and query, for the language link
	OtherLang string
	Version   string
	Live      string // URL of the live fragment, when the page is live
	LiveKey   string // the "site/agent" the live page follows; empty: all
	Flash     string
	Error     string
	Data      any
}

// CSRF returns the session's CSRF token for the forms.
func (p *page) CSRF() string {
	if p.User == nil {
		return ""
	}
	return p.User.CSRF
}

// Ago says how long ago t was: "il y a 5 min".
func (p *page) Ago(t time.Time) string {
	if t.IsZero() {
		return p.T("time.never")
	}
	return p.T("time.ago", p.Dur(p.Now.Sub(t)))
}

// Since says for how long something lasts since t: "depuis 2 h 10".
func (p *page) Since(t time.Time) string {
	return p.T("time.since", p.Dur(p.Now.Sub(t)))
}

// Elapsed says how long since t: "2 h 10".
func (p *page) Elapsed(t time.Time) string {
	return p.Dur(p.Now.Sub(t))
}

// rowCtx gives a template both the page and one agent's row.
type rowCtx struct {
	*page
	R agentRow
}

// Row pairs the page with an agent's row, for the "why" template.
func (p *page) Row(r agentRow) rowCtx { return rowCtx{p, r} }

// Between says how long from a to b, or to now when b is zero.
func (p *page) Between(a, b time.Time) string {
	if b.IsZero() {
		b = p.Now
	}
	return p.Dur(b.Sub(a))
}

func (d *Dashboard) newPage(r *http.Request, title, nav string) *page {
	w := d.words(r)
	p := &page{
		words:     w,
		Title:     w.T(title),
		Nav:       nav,
		Now:       d.o.Now(),
		Path:      r.URL.RequestURI(),
		OtherLang: otherLang(w.lang),
		Version:   d.o.Version,
	}
	if pr, ok := auth.FromContext(r.Context()); ok {
		p.User = &pr
		p.CanAct = auth.CanAct(pr.Role)
	}
	return p
}

var funcs = template.FuncMap{
	// iso formats an instant for a <time datetime> attribute.
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// list makes a list of words to range over.
	"list": func(s ...string) []string { return s },
	// max1 is n, at least 1.
	"max1": func(n int) int { return max(n, 1) },
}

// loadTemplates parses each page with the layout.
func (d *Dashboard) loadTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	d.pages = map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		d.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// loadStatic reads static/ and computes each file's ETag.
func (d *Dashboard) loadStatic() error {
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
	return fs.WalkDir(staticFS, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		d.static[path.Base(p)] = staticFile{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, mime: types[path.Ext(p)]}
		return nil
	})
}

// serveStatic serves GET /static/{file}, revalidated by ETag.
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := d.static[r.PathValue("file")]
	if !ok || f.mime == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.mime)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// render executes a page's template into a buffer, then writes it with
// status, so that a template error never sends half a page.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p *page) {
	d.renderTemplate(w, status, name, "layout", p)
}

// renderTemplate executes one named template of page name.
func (d *Dashboard) renderTemplate(w http.ResponseWriter, status int, name, tmpl string, p *page) {
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		d.log.Error("dashboard: rendering a page", "page", name, "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeHTML sends an HTML body with status 200.
func writeHTML(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(body)
}

// fail shows an error page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := d.newPage(r, "error.title", "")
	p.Error = msg
	d.render(w, status, "error", p)
}

// storeFailed logs a store error and shows the error page.
func (d *Dashboard) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	d.log.Error("dashboard: store", "what", what, "err", err)
	d.fail(w, r, http.StatusServiceUnavailable, d.words(r).T("error.store"))
}

// setLang serves GET /lang/{lang}?next=PATH: it keeps the choice in the
// lang cookie and goes back to PATH.
func (d *Dashboard) setLang(w http.ResponseWriter, r *http.Request) {
	l := r.PathValue("lang")
	if _, ok := catalogues[l]; !ok {
		d.fail(w, r, http.StatusNotFound, d.words(r).T("error.notfound"))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// safeNext returns next if it is a path of this server, else "/".
func safeNext(next string) string {
	if next == "" || len(next) > maxPathBytes+maxQueryBytes || next[0] != '/' ||
		strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Path == "/login" {
		return "/"
	}
	return next
}

// formValue returns a form field of at most max bytes, or "" when longer.
func formValue(r *http.Request, name string, max int) string {
	v := r.PostFormValue(name)
	if len(v) > max {
		return ""
	}
	return v
}
