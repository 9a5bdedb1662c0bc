package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/relais-fr/relais/agent/inbox"
)

// static are the files under /static/.
var static = map[string]string{
	"style.css":  "text/css; charset=utf-8",
	"refresh.js": "text/javascript; charset=utf-8",
}

func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := static[name]
	if !ok {
		h.notFound(w, r)
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		h.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

func (h *handler) download(w http.ResponseWriter, r *http.Request) { h.sendScan(w, r, "attachment") }

func (h *handler) view(w http.ResponseWriter, r *http.Request) { h.sendScan(w, r, "inline") }

// sendScan sends a scan's document, as an attachment or to be shown in the
// browser. A HEAD request does not read it, so that it cannot count as a
// download.
func (h *handler) sendScan(w http.ResponseWriter, r *http.Request, disposition string) {
	if h.cfg.Inbox == nil {
		h.notFound(w, r)
		return
	}
	rc, s, err := h.cfg.Inbox.Open(r.PathValue("id"))
	if err != nil {
		if !errors.Is(err, inbox.ErrNotFound) {
			h.log.Error("web: opening a scan", "err", err)
		}
		h.message(w, r, http.StatusNotFound, "Document not found",
			"This scanned document no longer exists: scans are deleted after a while, or once downloaded.")
		return
	}
	defer rc.Close()
	name := "scan-" + s.Created.In(h.cfg.Location).Format("20060102-150405") + inbox.Formats[s.Format]
	hd := w.Header()
	// The document is not a page of ours: the page's policy would keep
	// the browser's PDF viewer from showing it.
	hd.Set("Content-Security-Policy", "frame-ancestors 'none'")
	hd.Set("Content-Type", s.Format)
	hd.Set("Content-Length", strconv.FormatInt(s.Size, 10))
	hd.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	hd.Set("Cache-Control", "no-store, private")
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Info("web: a scan download was cut short", "err", err)
	}
}
