package web

import (
	"bytes"
	"embed"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the page templates, each with the layout.
var pages = map[string]*template.Template{}

func init() {
	for _, name := range []string{"index", "status", "message"} {
		pages[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
}

// base is what every page has.
type base struct {
	Lang  string
	Site  string
	Title string
	Token string // the form token
	Path  string // the page's own path, where actions come back
	p     *message.Printer
	loc   *time.Location
	now   time.Time
}

// T translates a text of the page (see agent/locale).
func (b *base) T(format string, args ...any) string { return b.p.Sprintf(format, args...) }

func (h *handler) base(r *http.Request, path string) *base {
	al := r.Header.Get("Accept-Language")
	if len(al) > 256 {
		al = al[:256]
	}
	tag := locale.Match(al)
	b := &base{Lang: "fr", Site: h.cfg.SiteName, Path: path, p: locale.Printer(tag), loc: h.cfg.Location, now: h.cfg.Clock.Now()}
	if tag == language.English {
		b.Lang = "en"
	}
	b.Token = h.token(b.now)
	return b
}

// clock is a time of day, with the date when not today.
func (b *base) clock(t time.Time) string {
	t, now := t.In(b.loc), b.now.In(b.loc)
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	return t.Format("02/01 15:04")
}

// sentence picks the text for a time of today, or of another day.
func (b *base) sentence(t time.Time, today, otherDay string) string {
	t, now := t.In(b.loc), b.now.In(b.loc)
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return b.T(today, t.Format("15:04"))
	}
	return b.T(otherDay, t.Format("02/01"), t.Format("15:04"))
}

// size is a document size in plain units.
func (b *base) size(n int64) string {
	switch {
	case n < 1000:
		return b.T("%d bytes", n)
	case n < 1000*1000:
		return b.T("%d kB", (n+999)/1000)
	case n < 1000*1000*1000:
		return b.T("%.1f MB", float64(n)/1e6)
	default:
		return b.T("%.1f GB", float64(n)/1e9)
	}
}

// pages is a page count.
func (b *base) pages(n int) string {
	if n == 1 {
		return b.T("1 page")
	}
	return b.T("%d pages", n)
}

func (h *handler) render(w http.ResponseWriter, status int, name string, b *base, data any) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.log.Error("web: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", b.Lang)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message answers a page that only says something, with a link back.
func (h *handler) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	b := h.base(r, "/")
	b.Title = b.T(title)
	if status == http.StatusForbidden || status == http.StatusMisdirectedRequest {
		b.Site = "" // nothing about the site to whoever may not see it
	}
	h.render(w, status, "message", b, struct {
		*base
		Text string
		Back bool
	}{b, b.T(text), status != http.StatusForbidden})
}

// scanView is a scan as the page shows it.
type scanView struct {
	ID      string
	Heading string // "Scanned at 14:05"
	Details string // "2 pages · 340 kB"
	Expires string // "Deleted automatically in 12 minutes"
	Ext     string // ".pdf"
	Kind    string // "PDF"
}

// jobView is a held print as the page shows it.
type jobView struct {
	ID      int
	Name    string
	Details string // "sent at 14:02 from a computer · 3 pages"
	Expires string
}

type flash struct {
	Kind string // ok or error
	Text string
}

type indexData struct {
	*base
	Flash       *flash
	HasInbox    bool
	Scans       []scanView
	DeleteAfter bool
	Retention   int // minutes
	HasQueue    bool
	Held        []jobView
	WaitingText string // prints on their way to the printer
	Devices     []device
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	b := h.base(r, "/")
	b.Title = b.T("Scans and prints")
	st := h.cfg.Status()
	d := indexData{base: b, Flash: b.flash(r.URL.Query())}
	waiting := 0
	if in := h.cfg.Inbox; in != nil {
		d.HasInbox, d.DeleteAfter = true, in.DeleteAfterDownload()
		d.Retention = int(in.Retention() / time.Minute)
		for _, s := range in.List() {
			d.Scans = append(d.Scans, b.scanView(s))
		}
	}
	if q := h.cfg.Queue; q != nil {
		d.HasQueue = true
		for _, j := range q.Jobs() {
			switch j.State {
			case printq.Held:
				d.Held = append(d.Held, b.jobView(j))
			case printq.Pending, printq.Processing, printq.Stopped:
				waiting++
			}
		}
		switch {
		case waiting == 1:
			d.WaitingText = b.T("1 print is on its way to the printer.")
		case waiting > 1:
			d.WaitingText = b.T("%d prints are on their way to the printer.", waiting)
		}
		d.Devices = append(d.Devices, b.printerDevice(q.Printer(), st.NoPrinter))
	}
	d.Devices = append(d.Devices, b.scannerDevice(st.Scanner, st.Faults))
	if st.WiFi != nil {
		d.Devices = append(d.Devices, b.wifiDevice(st.WiFi, st.Faults))
	}
	h.render(w, http.StatusOK, "index", b, d)
}

func (b *base) scanView(s inbox.Scan) scanView {
	v := scanView{ID: s.ID, Heading: b.sentence(s.Created, "Scanned at %s", "Scanned on %s at %s"), Ext: inbox.Formats[s.Format]}
	v.Kind = map[string]string{"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}[s.Format]
	if s.Pages > 0 {
		v.Details = b.pages(s.Pages) + " · "
	}
	v.Details += b.size(s.Size)
	left := s.Expires.Sub(b.now)
	switch m := int(math.Ceil(left.Minutes())); {
	case left < time.Minute:
		v.Expires = b.T("Deleted automatically in less than a minute.")
	case m == 1:
		v.Expires = b.T("Deleted automatically in 1 minute.")
	default:
		v.Expires = b.T("Deleted automatically in %d minutes.", m)
	}
	return v
}

// sources names where a print came from.
var sources = map[api.Source]string{
	api.SourcePC:      "from a computer",
	api.SourcePhone:   "from a phone",
	api.SourceCopy:    "a copy made with the button",
	api.SourceCentral: "from the technician",
}

func (b *base) jobView(j printq.Job) jobView {
	v := jobView{ID: j.ID, Name: truncate(j.Name, maxNameRunes)}
	if v.Name == "" {
		v.Name = b.T("(no name)")
	}
	v.Details = b.sentence(j.Created, "Sent at %s", "Sent on %s at %s")
	if s, ok := sources[j.Source]; ok {
		v.Details += " · " + b.T(s)
	}
	if j.Impressions > 0 {
		v.Details += " · " + b.pages(j.Impressions)
	} else if j.Size > 0 {
		v.Details += " · " + b.size(j.Size)
	}
	if !j.HoldUntil.IsZero() {
		v.Expires = b.sentence(j.HoldUntil, "Deleted at %s if nobody prints it.", "Deleted on %s at %s if nobody prints it.")
	}
	return v
}

// flash is the message an action left in the address it redirected to.
func (b *base) flash(q url.Values) *flash {
	job := 0
	if s := q.Get("job"); len(s) <= 10 {
		job, _ = strconv.Atoi(s)
	}
	n := -1
	if s := q.Get("n"); len(s) <= 10 {
		if v, err := strconv.Atoi(s); err == nil {
			n = v
		}
	}
	ok := func(text string) *flash { return &flash{"ok", text} }
	bad := func(text string) *flash { return &flash{"error", text} }
	switch q.Get("done") {
	case "released":
		return ok(b.T("Print no. %d is sent to the printer.", job))
	case "canceled":
		return ok(b.T("Print no. %d is canceled.", job))
	case "released-all":
		switch {
		case n == 0:
			return ok(b.T("No print was waiting."))
		case n == 1:
			return ok(b.T("1 print is sent to the printer."))
		case n > 1:
			return ok(b.T("%d prints are sent to the printer.", n))
		}
	case "deleted":
		return ok(b.T("The scanned document is deleted."))
	}
	switch q.Get("error") {
	case "job-gone":
		return bad(b.T("Print no. %d no longer exists.", job))
	case "job-state":
		return bad(b.T("Print no. %d is no longer waiting: it has already left or is finished.", job))
	case "scan-gone":
		return bad(b.T("This scanned document no longer exists: it was already deleted."))
	case "failed":
		return bad(b.T("That did not work. Please try again."))
	}
	return nil
}
