package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/printq"
)

// token returns a form token valid for tokenTTL from now: the expiry and its
// HMAC under the handler's key. The page has no session; the token proves
// that the form came from a page this agent served.
func (h *handler) token(now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Add(tokenTTL).Unix()))
	copy(b[8:], h.mac(b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *handler) mac(exp []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("relais-web-form\x00"))
	m.Write(exp)
	return m.Sum(nil)[:16]
}

// checkForm parses a POST's form and checks that it came from this agent's
// page: the browser must not name another origin, and the token must be
// valid.
func (h *handler) checkForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errors.New("request from another site")
	}
	// Origin is "null" for every form, same-origin too, under
	// Referrer-Policy no-referrer: the token decides then.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("request from origin %q", o)
		}
	}
	tok := r.PostForm.Get("token")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 24 {
		return errors.New("missing or malformed token")
	}
	if !hmac.Equal(b[8:], h.mac(b[:8])) {
		return errors.New("bad token")
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0); !h.cfg.Clock.Now().Before(exp) {
		return errors.New("expired token")
	}
	return nil
}

// form checks a POST, answering 403 when it fails; it reports whether to go
// on.
func (h *handler) form(w http.ResponseWriter, r *http.Request) bool {
	if err := h.checkForm(r); err != nil {
		h.log.Info("web: refused a form", "err", err)
		h.message(w, r, http.StatusForbidden, "Action refused",
			"This action did not come from the page of this Relais box, or the page was too old. Open the page again and retry.")
		return false
	}
	return true
}

// back redirects to the page the form came from, with a message.
func (h *handler) back(w http.ResponseWriter, r *http.Request, q url.Values) {
	to := "/"
	if r.PostForm.Get("back") == "/status" {
		to = "/status"
	}
	http.Redirect(w, r, to+"?"+q.Encode(), http.StatusSeeOther)
}

// jobID reads the job number of the path.
func jobID(r *http.Request) (int, bool) {
	s := r.PathValue("id")
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	id, err := strconv.Atoi(s)
	return id, err == nil && id > 0
}

func (h *handler) jobAction(w http.ResponseWriter, r *http.Request, verb string, do func(int) (printq.Job, error)) {
	if !h.form(w, r) {
		return
	}
	id, ok := jobID(r)
	if !ok || h.cfg.Queue == nil {
		h.notFound(w, r)
		return
	}
	q := url.Values{"job": {strconv.Itoa(id)}}
	_, err := do(id)
	switch {
	case err == nil:
		h.log.Info("web: job "+verb, "job", id)
		q.Set("done", verb)
	case errors.Is(err, printq.ErrNotFound):
		q.Set("error", "job-gone")
	case errors.Is(err, printq.ErrState):
		q.Set("error", "job-state")
	default:
		h.log.Error("web: job action failed", "action", verb, "job", id, "err", err)
		q.Set("error", "failed")
	}
	h.back(w, r, q)
}

func (h *handler) release(w http.ResponseWriter, r *http.Request) {
	h.jobAction(w, r, "released", func(id int) (printq.Job, error) { return h.cfg.Queue.Release(id) })
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	h.jobAction(w, r, "canceled", func(id int) (printq.Job, error) { return h.cfg.Queue.Cancel(id) })
}

func (h *handler) releaseAll(w http.ResponseWriter, r *http.Request) {
	if !h.form(w, r) {
		return
	}
	if h.cfg.Queue == nil {
		h.notFound(w, r)
		return
	}
	n, err := h.cfg.Queue.ReleaseAll()
	q := url.Values{}
	if err != nil {
		h.log.Error("web: releasing every held job", "released", n, "err", err)
		q.Set("error", "failed")
	} else {
		h.log.Info("web: held jobs released", "count", n)
		q.Set("done", "released-all")
		q.Set("n", strconv.Itoa(n))
	}
	h.back(w, r, q)
}

func (h *handler) deleteScan(w http.ResponseWriter, r *http.Request) {
	if !h.form(w, r) {
		return
	}
	if h.cfg.Inbox == nil {
		h.notFound(w, r)
		return
	}
	q := url.Values{}
	switch err := h.cfg.Inbox.Delete(r.PathValue("id")); {
	case err == nil:
		h.log.Info("web: scan deleted by the aidant")
		q.Set("done", "deleted")
	case errors.Is(err, inbox.ErrNotFound):
		q.Set("error", "scan-gone")
	default:
		h.log.Error("web: deleting a scan", "err", err)
		q.Set("error", "failed")
	}
	h.back(w, r, q)
}
