// Package auth authenticates the people and scripts that use relais-central
// over HTTP: dashboard users log in with a name and a password (argon2id
// hashes, a login rate limit per client address and per user name, and a
// constant-time path for unknown names) and get a session cookie whose
// token is stored only as its SHA-256; scripts such as a Prometheus scraper
// send an API token as "Authorization: Bearer". Middleware turns either
// into a Principal in the request's context, and Require guards a handler
// by role and, for sessions, by a per-session CSRF token on every unsafe
// method.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/relais-fr/relais/central/store"
)

// Principal is who makes a request.
type Principal struct {
	Name string
	Role store.Role
	// CSRF is the session's CSRF token, which forms must send back in the
	// field "csrf" (or scripts in the header X-CSRF-Token); empty for API
	// tokens.
	CSRF string
	// Token is true when the request was authenticated by an API token.
	Token bool
}

// CookieName is the name of the session cookie.
const CookieName = "relais_session"

// CSRFField and CSRFHeader carry a session's CSRF token on unsafe requests.
const (
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

// Login rate limits: failures per user name, and per client address (more,
// since the staff of one site share an address), over LoginWindow.
const (
	LoginFailuresPerUser   = 5
	LoginFailuresPerClient = 20
	LoginWindow            = 15 * time.Minute
)

// Limits of names and tokens.
const (
	// MaxNameLength is the longest user or token name, in bytes.
	MaxNameLength = 64
	// maxTokenLength bounds the bearer tokens and cookies looked up.
	maxTokenLength = 128
	// maxFormBytes bounds a form body read for its CSRF field.
	maxFormBytes = 1 << 20
)

// tokenPrefix starts every API token, so that secret scanners and people
// can recognize one.
const tokenPrefix = "relais_"

// Errors of Login.
var (
	// ErrBadLogin: unknown user or wrong password (deliberately not told
	// apart).
	ErrBadLogin = errors.New("auth: wrong user name or password")
	// ErrRateLimited: too many failed logins from this client or for this
	// user; the error is a *RateLimitError.
	ErrRateLimited = errors.New("auth: too many failed logins")
)

// RateLimitError is the error of a rate-limited login.
type RateLimitError struct {
	// RetryAfter is how long until the next attempt may succeed; send it
	// as the Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v; retry in %v", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// RetryAfterSeconds is RetryAfter in whole seconds rounded up (at least 1),
// the value of a Retry-After header.
func (e *RateLimitError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Options configure an Auth.
type Options struct {
	Store store.Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SessionTTL is how long a session lasts after login; 12 h when zero.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure even on plain HTTP
	// requests (central behind a TLS-terminating proxy). It is always
	// Secure on TLS requests.
	SecureCookie bool
	// Logger receives store failures; slog.Default() when nil.
	Logger *slog.Logger
}

// Auth authenticates requests against a store. Its methods are safe for
// concurrent use.
type Auth struct {
	o       Options
	clients *limiter
	users   *limiter

	dummyOnce sync.Once
	dummy     []byte
}

// New returns an Auth with o's defaults filled in.
func New(o Options) *Auth {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Auth{
		o:       o,
		clients: newLimiter(LoginFailuresPerClient, LoginWindow, 100_000),
		users:   newLimiter(LoginFailuresPerUser, LoginWindow, 100_000),
	}
}

// dummyHash is checked when the user is unknown so that a login takes as
// long whether the name exists or not: a hash with the current parameters,
// a random salt and a random key, which no password matches. Making it
// costs nothing, so even the first unknown name takes no longer.
func (a *Auth) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		salt, key := make([]byte, argonSaltLen), make([]byte, argonKeyLen)
		rand.Read(salt)
		rand.Read(key)
		a.dummy = encodeHash(salt, key)
	})
	return a.dummy
}

// Login checks name and password, creates a session and sets its cookie.
// It refuses with a *RateLimitError (matching ErrRateLimited) after too
// many failures from the client's address or for the name, before looking
// at the password, and with ErrBadLogin for an unknown name or a wrong
// password, which take the same time. A session cookie already on the
// request is deleted (the session is rotated).
func (a *Auth) Login(w http.ResponseWriter, r *http.Request, name, password string) (Principal, error) {
	ctx := r.Context()
	now := a.o.Now()
	ck, uk := clientKey(r), userKey(name)
	// The attempt counts as a failure from now on; a success or a store
	// error takes it back.
	wait := a.clients.take(ck, now)
	if wait == 0 {
		if wait = a.users.take(uk, now); wait > 0 {
			a.clients.undo(ck, now)
		}
	}
	if wait > 0 {
		return Principal{}, &RateLimitError{RetryAfter: wait}
	}
	if len(name) == 0 || len(name) > MaxNameLength || len(password) > MaxPasswordLength {
		return Principal{}, ErrBadLogin
	}
	u, err := a.o.Store.User(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		CheckPassword(a.dummyHash(), password)
		return Principal{}, ErrBadLogin
	case err != nil:
		a.clients.undo(ck, now)
		a.users.undo(uk, now)
		return Principal{}, err
	}
	if !CheckPassword(u.PasswordHash, password) {
		return Principal{}, ErrBadLogin
	}
	a.clients.undo(ck, now)
	a.users.reset(uk)

	if c, err := r.Cookie(CookieName); err == nil && validToken(c.Value) {
		if err := a.o.Store.DeleteSession(ctx, hashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Principal{}, err
		}
	}
	token, csrf := newSecret(), newSecret()
	s := store.Session{
		TokenHash: hashToken(token),
		User:      u.Name,
		CSRF:      csrf,
		Created:   now.UTC(),
		Expires:   now.Add(a.o.SessionTTL).UTC(),
	}
	if err := a.o.Store.AddSession(ctx, s); err != nil {
		return Principal{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    token,
		Path:     "/",
		Expires:  s.Expires,
		MaxAge:   int(a.o.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   a.o.SecureCookie || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	return Principal{Name: u.Name, Role: u.Role, CSRF: csrf}, nil
}

// Logout deletes the request's session, if any, and clears its cookie.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(CookieName)
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   a.o.SecureCookie || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	if err != nil || !validToken(c.Value) {
		return nil
	}
	if err := a.o.Store.DeleteSession(r.Context(), hashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

type ctxKey struct{}

// resolved is what Middleware found: a principal, or the store error that
// kept it from finding one.
type resolved struct {
	p   Principal
	ok  bool
	err error
}

// Middleware resolves the request's "Authorization: Bearer" API token, or
// else its session cookie, into a Principal that FromContext returns. It
// never refuses a request: an absent, unknown or expired credential simply
// leaves no principal (see Require). A request that went through a
// Middleware already is passed on as it is, so handlers may wrap
// themselves even when the whole server is wrapped.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, done := r.Context().Value(ctxKey{}).(resolved); done {
			next.ServeHTTP(w, r)
			return
		}
		res := a.resolve(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, res)))
	})
}

func (a *Auth) resolve(r *http.Request) resolved {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, tokenPrefix) ||
			!validToken(strings.TrimPrefix(tok, tokenPrefix)) {
			return resolved{}
		}
		t, err := a.o.Store.Token(ctx, hashToken(tok))
		if err != nil {
			return a.failed(err, "token")
		}
		return resolved{p: Principal{Name: t.Name, Role: t.Role, Token: true}, ok: true}
	}
	c, err := r.Cookie(CookieName)
	if err != nil || !validToken(c.Value) {
		return resolved{}
	}
	s, err := a.o.Store.Session(ctx, hashToken(c.Value), a.o.Now())
	if err != nil {
		return a.failed(err, "session")
	}
	u, err := a.o.Store.User(ctx, s.User)
	if err != nil {
		return a.failed(err, "session user")
	}
	return resolved{p: Principal{Name: u.Name, Role: u.Role, CSRF: s.CSRF}, ok: true}
}

func (a *Auth) failed(err error, what string) resolved {
	if errors.Is(err, store.ErrNotFound) {
		return resolved{}
	}
	a.o.Logger.Error("auth: cannot look up "+what, "err", err)
	return resolved{err: err}
}

// FromContext returns the principal that Middleware found for a request.
func FromContext(ctx context.Context) (Principal, bool) {
	res, _ := ctx.Value(ctxKey{}).(resolved)
	return res.p, res.ok
}

// Require returns a middleware that lets through only requests with a
// principal (see Middleware, which must run first) whose role is one of
// roles, or any role when roles is empty. It answers:
//   - no principal: a browser GET or HEAD (Accept: text/html) is redirected
//     (303) to /login?next=PATH; anything else gets 401;
//   - a role not in roles: 403;
//   - a session principal's unsafe request (POST, PUT, PATCH, DELETE)
//     without its CSRF token in the header X-CSRF-Token or the form field
//     "csrf" (a form body is read up to 1 MiB), or sent cross-origin
//     according to the browser (Sec-Fetch-Site, Origin): 403;
//   - the store failed while resolving the principal: 503.
//
// Refusals have a JSON body {"error":"..."} when the client accepts JSON or
// the path starts with /api/, else a text one.
func (a *Auth) Require(roles ...store.Role) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, _ := r.Context().Value(ctxKey{}).(resolved)
			switch {
			case res.err != nil:
				refuse(w, r, http.StatusServiceUnavailable, "authentication is unavailable; retry later")
				return
			case !res.ok:
				if (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r) {
					http.Redirect(w, r, "/login?next="+url.QueryEscape(localPath(r)), http.StatusSeeOther)
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="relais-central"`)
				refuse(w, r, http.StatusUnauthorized, "authentication required")
				return
			}
			p := res.p
			if len(roles) > 0 && !hasRole(roles, p.Role) {
				refuse(w, r, http.StatusForbidden, "your role ("+string(p.Role)+") may not do this")
				return
			}
			if !p.Token && unsafeMethod(r.Method) {
				if err := cop.Check(r); err != nil {
					refuse(w, r, http.StatusForbidden, "cross-origin request refused")
					return
				}
				if !checkCSRF(w, r, p.CSRF) {
					refuse(w, r, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func checkCSRF(w http.ResponseWriter, r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			got = r.PostFormValue(CSRFField)
		}
	}
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

func hasRole(roles []store.Role, r store.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// wantsHTML reports whether the request comes from a browser navigating:
// it accepts text/html and is not an API call.
func wantsHTML(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/api/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// localPath is the request's path and query, made safe to redirect to
// after login: always one leading slash, so never another host.
func localPath(r *http.Request) string {
	p := "/" + strings.TrimLeft(r.URL.Path, "/\\")
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}

// refuse writes an error response in the form the client expects.
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	http.Error(w, msg, code)
}

// CanAct reports whether role may run remote actions and acknowledge
// faults: admins and technicians may, managers may not.
func CanAct(r store.Role) bool { return r == store.Admin || r == store.Technician }

// ValidRole reports whether r is one of the store's roles.
func ValidRole(r store.Role) bool {
	return r == store.Admin || r == store.Technician || r == store.Manager
}

// ValidName reports whether s can name a user or a token: 1 to
// MaxNameLength bytes of printable UTF-8 without spaces.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLength || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}

// NewToken creates an API token named name with role and returns it; only
// its SHA-256 is stored, so it cannot be shown again. Tokens do not expire.
func (a *Auth) NewToken(ctx context.Context, name string, role store.Role) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("auth: token name %q: want 1 to %d printable characters without spaces", name, MaxNameLength)
	}
	if !ValidRole(role) {
		return "", fmt.Errorf("auth: role %q: want admin, technician or manager", role)
	}
	tok := tokenPrefix + newSecret()
	t := store.Token{TokenHash: hashToken(tok), Name: name, Role: role, Created: a.o.Now().UTC()}
	if err := a.o.Store.AddToken(ctx, t); err != nil {
		return "", err
	}
	return tok, nil
}

// newSecret returns 32 random bytes in unpadded base64url (43 characters).
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken reports whether s may be a secret of newSecret, before any
// lookup.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > maxTokenLength {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

func hashToken(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
