package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/relais-fr/relais/central/auth"
)

// loginCookie holds the login form's nonce; loginField carries its HMAC in
// the form.
const (
	loginCookie = "relais_login"
	loginField  = "login_token"
	// loginNonceTTL is how long a login form may stay open.
	loginNonceTTL = 2 * time.Hour
)

// loginData is the login page's data.
type loginData struct {
	Token, Next, Name string
}

// loginNonce returns the request's login nonce, or makes one and sets its
// cookie.
func (d *Dashboard) loginNonce(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && validNonce(c.Value) {
		return c.Value
	}
	b := make([]byte, 24)
	rand.Read(b)
	n := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: n, Path: "/login", MaxAge: int(loginNonceTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	return n
}

func validNonce(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 24
}

// loginToken is the form's token for a nonce: its HMAC under the key made
// at start.
func (d *Dashboard) loginToken(nonce string) string {
	m := hmac.New(sha256.New, d.loginKey)
	m.Write([]byte("relais-central login\x00"))
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// loginForm serves GET /login; a logged-in reader goes on to next.
func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := auth.FromContext(r.Context()); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p := d.newPage(r, "login.title", "")
	if r.URL.Query().Has("out") {
		p.Flash = p.T("login.loggedout")
	}
	d.showLogin(w, r, http.StatusOK, p, next, "")
}

func (d *Dashboard) showLogin(w http.ResponseWriter, r *http.Request, status int, p *page, next, name string) {
	p.Data = loginData{Token: d.loginToken(d.loginNonce(w, r)), Next: next, Name: name}
	d.render(w, status, "login", p)
}

// login serves POST /login.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	p := d.newPage(r, "login.title", "")
	if err := r.ParseForm(); err != nil {
		p.Error = p.T("error.badrequest", err.Error())
		d.showLogin(w, r, http.StatusBadRequest, p, "/", "")
		return
	}
	next := safeNext(formValue(r, "next", maxPathBytes+maxQueryBytes))
	name := formValue(r, "name", auth.MaxNameLength)
	password := formValue(r, "password", auth.MaxPasswordLength)
	c, err := r.Cookie(loginCookie)
	token := r.PostFormValue(loginField)
	if err != nil || !validNonce(c.Value) || !hmac.Equal([]byte(token), []byte(d.loginToken(c.Value))) {
		p.Error = p.T("login.expired")
		d.showLogin(w, r, http.StatusForbidden, p, next, name)
		return
	}
	if name == "" || password == "" {
		p.Error = p.T("login.missing")
		d.showLogin(w, r, http.StatusBadRequest, p, next, name)
		return
	}
	_, err = d.o.Auth.Login(w, r, name, password)
	var limited *auth.RateLimitError
	switch {
	case err == nil:
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, next, http.StatusSeeOther)
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		p.Error = p.T("login.limited", p.Dur(max(limited.RetryAfter, time.Minute)))
		d.showLogin(w, r, http.StatusTooManyRequests, p, next, name)
	case errors.Is(err, auth.ErrBadLogin):
		p.Error = p.T("login.bad")
		d.showLogin(w, r, http.StatusUnauthorized, p, next, name)
	default:
		d.log.Error("dashboard: login", "err", err)
		p.Error = p.T("error.store")
		d.showLogin(w, r, http.StatusServiceUnavailable, p, next, name)
	}
}

// logout serves POST /logout (the session's CSRF token is checked by
// auth.Require).
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.o.Auth.Logout(w, r); err != nil {
		d.storeFailed(w, r, "logout", err)
		return
	}
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
}
