package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

const goodPassword = "correct horse battery"

func addUser(t *testing.T, st store.Store, name string, role store.Role) {
	t.Helper()
	h, err := auth.HashPassword(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(context.Background(), store.User{Name: name, Role: role, PasswordHash: h, Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
}

// loginRequest is a POST /login from addr.
func loginRequest(addr string) *http.Request {
	r := httptest.NewRequest("POST", "http://127.0.0.1/login", nil)
	r.RemoteAddr = addr
	return r
}

func TestRateLimitPerUser(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := auth.New(auth.Options{Store: st, Now: clk.Now})
	addUser(t, st, "alice", store.Technician)

	for i := range auth.LoginFailuresPerUser {
		_, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.1:5000"), "alice", "wrong password")
		if !errors.Is(err, auth.ErrBadLogin) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		clk.Advance(time.Minute)
	}
	// Locked now, even with the right password and from another address.
	_, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.2:5000"), "alice", goodPassword)
	var rl *auth.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, auth.ErrRateLimited) {
		t.Fatalf("after %d failures: %v", auth.LoginFailuresPerUser, err)
	}
	// The first failure leaves the window 15 min after it: 10 min from now.
	if want := auth.LoginWindow - 5*time.Minute; rl.RetryAfter != want {
		t.Errorf("RetryAfter %v, want %v", rl.RetryAfter, want)
	}
	if rl.RetryAfterSeconds() != 600 {
		t.Errorf("RetryAfterSeconds %d", rl.RetryAfterSeconds())
	}
	// Another case of the same name shares the limit.
	if _, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.2:5000"), "ALICE", goodPassword); !errors.Is(err, auth.ErrRateLimited) {
		t.Errorf("ALICE: %v", err)
	}
	clk.Advance(rl.RetryAfter - time.Second)
	if _, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.2:5000"), "alice", goodPassword); !errors.Is(err, auth.ErrRateLimited) {
		t.Errorf("1 s before the end: %v", err)
	}
	clk.Advance(time.Second)
	p, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.2:5000"), "alice", goodPassword)
	if err != nil || p.Name != "alice" || p.Role != store.Technician || p.CSRF == "" || p.Token {
		t.Fatalf("after the window: %+v, %v", p, err)
	}
	// A success clears the name's failures: four more are allowed.
	for i := range auth.LoginFailuresPerUser - 1 {
		if _, err := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.3:5000"), "alice", "wrong password"); !errors.Is(err, auth.ErrBadLogin) {
			t.Fatalf("failure %d after success: %v", i+1, err)
		}
	}
}

func TestRateLimitPerClient(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := auth.New(auth.Options{Store: st, Now: clk.Now})
	addUser(t, st, "bob", store.Manager)

	// Unknown names, one each, from one IPv6 /64.
	for i := range auth.LoginFailuresPerClient {
		addr := "[::1]:4000"
		if i%2 == 1 {
			addr = "[::2]:4000" // same /64 as ::1
		}
		_, err := a.Login(httptest.NewRecorder(), loginRequest(addr), "nobody-"+string(rune('a'+i)), "some password")
		if !errors.Is(err, auth.ErrBadLogin) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := a.Login(httptest.NewRecorder(), loginRequest("[::1]:4001"), "bob", goodPassword); !errors.Is(err, auth.ErrRateLimited) {
		t.Errorf("same client: %v", err)
	}
	// Another client is not limited; an IPv4-mapped address is IPv4.
	if _, err := a.Login(httptest.NewRecorder(), loginRequest("[::ffff:127.0.0.1]:4000"), "bob", goodPassword); err != nil {
		t.Errorf("another client: %v", err)
	}
	clk.Advance(auth.LoginWindow)
	if _, err := a.Login(httptest.NewRecorder(), loginRequest("[::1]:4001"), "bob", goodPassword); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

// Concurrent attempts cannot pass the limit together: each is counted
// before its password is checked.
func TestRateLimitConcurrent(t *testing.T) {
	st := openStore(t)
	a := auth.New(auth.Options{Store: st, Now: newClock().Now})
	addUser(t, st, "alice", store.Technician)
	const n = 4 * auth.LoginFailuresPerUser
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := a.Login(httptest.NewRecorder(), loginRequest(fmt.Sprintf("127.0.0.%d:5000", i+1)), "alice", "wrong password")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var bad, limited int
	for err := range errs {
		switch {
		case errors.Is(err, auth.ErrBadLogin):
			bad++
		case errors.Is(err, auth.ErrRateLimited):
			limited++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	if bad != auth.LoginFailuresPerUser || limited != n-auth.LoginFailuresPerUser {
		t.Errorf("%d passwords checked and %d refused, want %d and %d", bad, limited, auth.LoginFailuresPerUser, n-auth.LoginFailuresPerUser)
	}
}

func TestBadLoginIsTheSame(t *testing.T) {
	st := openStore(t)
	a := auth.New(auth.Options{Store: st})
	addUser(t, st, "carol", store.Admin)
	_, unknown := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.1:1"), "dave", goodPassword)
	_, wrong := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.1:1"), "carol", "not the password")
	_, long := a.Login(httptest.NewRecorder(), loginRequest("127.0.0.1:1"), "carol", strings.Repeat("x", auth.MaxPasswordLength+1))
	if unknown != auth.ErrBadLogin || wrong != auth.ErrBadLogin || long != auth.ErrBadLogin {
		t.Errorf("unknown user %v, wrong password %v, too long %v: want the same ErrBadLogin", unknown, wrong, long)
	}
}

// server is an httptest server with a login form handler, a page, an API
// route and an action route.
type server struct {
	*httptest.Server
	st  store.Store
	a   *auth.Auth
	clk *clock
}

func newServer(t *testing.T, o auth.Options, tls bool) *server {
	t.Helper()
	s := &server{st: openStore(t), clk: newClock()}
	o.Store, o.Now = s.st, s.clk.Now
	s.a = auth.New(o)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		p, err := s.a.Login(w, r, r.PostFormValue("name"), r.PostFormValue("password"))
		var rl *auth.RateLimitError
		switch {
		case errors.As(err, &rl):
			w.Header().Set("Retry-After", strconv.Itoa(rl.RetryAfterSeconds()))
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case err != nil:
			http.Error(w, err.Error(), http.StatusUnauthorized)
		default:
			json.NewEncoder(w).Encode(p)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := s.a.Logout(w, r); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	whoami := func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			http.Error(w, "no principal after Require", 500)
			return
		}
		json.NewEncoder(w).Encode(p)
	}
	mux.Handle("GET /page", s.a.Require()(http.HandlerFunc(whoami)))
	mux.Handle("GET /api/x", s.a.Require()(http.HandlerFunc(whoami)))
	mux.Handle("POST /action", s.a.Require(store.Admin, store.Technician)(http.HandlerFunc(whoami)))
	mux.Handle("GET /admin", s.a.Require(store.Admin)(http.HandlerFunc(whoami)))
	h := s.a.Middleware(mux)
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// login logs in through the form and returns the response's cookie and
// principal.
func (s *server) login(t *testing.T, c *http.Client, name string) (*http.Cookie, auth.Principal) {
	t.Helper()
	resp, err := c.PostForm(s.URL+"/login", url.Values{"name": {name}, "password": {goodPassword}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p auth.Principal
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
		t.Fatalf("login %s: %s", name, resp.Status)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == auth.CookieName {
			return ck, p
		}
	}
	t.Fatalf("login %s: no %s cookie", name, auth.CookieName)
	return nil, p
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestCookie(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tls        bool
		secure     bool
		wantSecure bool
	}{
		{"http", false, false, false},
		{"http behind a TLS proxy", false, true, true},
		{"https", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, auth.Options{SecureCookie: tc.secure, SessionTTL: 2 * time.Hour}, tc.tls)
			addUser(t, s.st, "erin", store.Technician)
			ck, p := s.login(t, s.Client(), "erin")
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure != tc.wantSecure || ck.Domain != "" {
				t.Errorf("cookie %+v", ck)
			}
			if ck.MaxAge != 7200 || !ck.Expires.Equal(s.clk.Now().Add(2*time.Hour).Truncate(time.Second)) {
				t.Errorf("cookie lifetime: MaxAge %d, Expires %v", ck.MaxAge, ck.Expires)
			}
			if len(ck.Value) != 43 {
				t.Errorf("token of %d characters, want 43 (32 random bytes)", len(ck.Value))
			}
			// The store knows the session by the token's SHA-256 only.
			h := sha256.Sum256([]byte(ck.Value))
			sess, err := s.st.Session(context.Background(), h[:], s.clk.Now())
			if err != nil || sess.User != "erin" || sess.CSRF != p.CSRF || !sess.Expires.Equal(s.clk.Now().Add(2*time.Hour)) {
				t.Errorf("stored session %+v, %v", sess, err)
			}
			if _, err := s.st.Session(context.Background(), []byte(ck.Value), s.clk.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("session found by the raw token: %v", err)
			}
		})
	}
}

// do sends a request with the given cookie and headers and returns the
// status and body.
func do(t *testing.T, c *http.Client, method, u string, body io.Reader, ck *http.Cookie, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRequire(t *testing.T) {
	s := newServer(t, auth.Options{}, false)
	addUser(t, s.st, "tech", store.Technician)
	addUser(t, s.st, "boss", store.Manager)
	c := &http.Client{CheckRedirect: noRedirect}

	// Without credentials.
	code, h, _ := do(t, c, "GET", s.URL+"/page?site=a&x=1", nil, nil, "Accept", "text/html,application/xhtml+xml")
	if code != http.StatusSeeOther || h.Get("Location") != "/login?next=%2Fpage%3Fsite%3Da%26x%3D1" {
		t.Errorf("browser GET: %d, Location %q", code, h.Get("Location"))
	}
	code, h, body := do(t, c, "GET", s.URL+"/api/x", nil, nil, "Accept", "text/html")
	if code != http.StatusUnauthorized || h.Get("Content-Type") != "application/json" ||
		!strings.Contains(body, `"error":"authentication required"`) || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("API GET: %d %q %q", code, h.Get("Content-Type"), body)
	}
	code, h, _ = do(t, c, "POST", s.URL+"/action", nil, nil, "Accept", "text/html")
	if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("form POST: %d %q", code, h.Get("Content-Type"))
	}
	code, _, _ = do(t, c, "GET", s.URL+"/page", nil, &http.Cookie{Name: auth.CookieName, Value: "bm90LWEtc2Vzc2lvbg"})
	if code != http.StatusUnauthorized {
		t.Errorf("unknown session: %d", code)
	}

	// A manager reads but may not act.
	bossCk, boss := s.login(t, c, "boss")
	if code, _, body := do(t, c, "GET", s.URL+"/page", nil, bossCk); code != 200 || !strings.Contains(body, `"Name":"boss"`) {
		t.Errorf("manager GET: %d %s", code, body)
	}
	code, _, body = do(t, c, "POST", s.URL+"/action", nil, bossCk, auth.CSRFHeader, boss.CSRF, "Accept", "application/json")
	if code != http.StatusForbidden || !strings.Contains(body, "manager") {
		t.Errorf("manager POST action: %d %s", code, body)
	}

	// A technician acts with the session's CSRF token only.
	techCk, tech := s.login(t, c, "tech")
	form := func(v string) io.Reader { return strings.NewReader(url.Values{"csrf": {v}}.Encode()) }
	ctForm := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name   string
		body   io.Reader
		header []string
		want   int
	}{
		{"no token", nil, nil, http.StatusForbidden},
		{"wrong header", nil, []string{auth.CSRFHeader, boss.CSRF}, http.StatusForbidden},
		{"wrong form field", form(boss.CSRF), []string{"Content-Type", ctForm}, http.StatusForbidden},
		{"short form field", form(tech.CSRF[:10]), []string{"Content-Type", ctForm}, http.StatusForbidden},
		{"header", nil, []string{auth.CSRFHeader, tech.CSRF}, http.StatusOK},
		{"form field", form(tech.CSRF), []string{"Content-Type", ctForm}, http.StatusOK},
		{"cross-site", form(tech.CSRF), []string{"Content-Type", ctForm, "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin", nil, []string{auth.CSRFHeader, tech.CSRF, "Origin", "http://evil.example"}, http.StatusForbidden},
	} {
		if code, _, body := do(t, c, "POST", s.URL+"/action", tc.body, techCk, tc.header...); code != tc.want {
			t.Errorf("technician POST, %s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if code, _, _ := do(t, c, "GET", s.URL+"/admin", nil, techCk); code != http.StatusForbidden {
		t.Errorf("technician on an admin page: %d", code)
	}

	// Sessions expire.
	s.clk.Advance(12*time.Hour - time.Second)
	if code, _, _ := do(t, c, "GET", s.URL+"/api/x", nil, techCk); code != 200 {
		t.Errorf("1 s before expiry: %d", code)
	}
	s.clk.Advance(time.Second)
	if code, _, _ := do(t, c, "GET", s.URL+"/api/x", nil, techCk); code != http.StatusUnauthorized {
		t.Errorf("expired session: %d", code)
	}
}

func TestRotateAndLogout(t *testing.T) {
	s := newServer(t, auth.Options{}, false)
	addUser(t, s.st, "tech", store.Technician)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect}

	first, _ := s.login(t, c, "tech")
	second, p := s.login(t, c, "tech") // sends the first cookie: rotated
	if first.Value == second.Value {
		t.Fatal("same token twice")
	}
	if code, _, _ := do(t, &http.Client{}, "GET", s.URL+"/api/x", nil, first); code != http.StatusUnauthorized {
		t.Errorf("first session after a new login: %d", code)
	}
	if code, _, _ := do(t, &http.Client{}, "GET", s.URL+"/api/x", nil, second); code != 200 {
		t.Errorf("second session: %d", code)
	}
	req, _ := http.NewRequest("POST", s.URL+"/logout", nil)
	req.Header.Set(auth.CSRFHeader, p.CSRF)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cleared bool
	for _, ck := range resp.Cookies() {
		cleared = cleared || (ck.Name == auth.CookieName && ck.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("logout does not clear the cookie: %v", resp.Header["Set-Cookie"])
	}
	if code, _, _ := do(t, &http.Client{}, "GET", s.URL+"/api/x", nil, second); code != http.StatusUnauthorized {
		t.Errorf("session after logout: %d", code)
	}
	h := sha256.Sum256([]byte(second.Value))
	if _, err := s.st.Session(context.Background(), h[:], s.clk.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session still stored after logout: %v", err)
	}
}

func TestToken(t *testing.T) {
	s := newServer(t, auth.Options{}, false)
	ctx := context.Background()
	tech, err := s.a.NewToken(ctx, "ci-script", store.Technician)
	if err != nil {
		t.Fatal(err)
	}
	prom, err := s.a.NewToken(ctx, "prometheus", store.Manager)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tech, "relais_") || tech == prom {
		t.Errorf("tokens %q %q", tech, prom)
	}
	h := sha256.Sum256([]byte(tech))
	if tok, err := s.st.Token(ctx, h[:]); err != nil || tok.Name != "ci-script" || tok.Role != store.Technician {
		t.Errorf("stored token %+v, %v", tok, err)
	}
	c := &http.Client{}
	// A token needs no CSRF token: no cookie is involved.
	code, _, body := do(t, c, "POST", s.URL+"/action", nil, nil, "Authorization", "Bearer "+tech)
	var p auth.Principal
	json.Unmarshal([]byte(body), &p)
	if code != 200 || p != (auth.Principal{Name: "ci-script", Role: store.Technician, Token: true}) {
		t.Errorf("technician token POST: %d %s", code, body)
	}
	if code, _, _ := do(t, c, "POST", s.URL+"/action", nil, nil, "Authorization", "bearer "+prom); code != http.StatusForbidden {
		t.Errorf("manager token POST: %d", code)
	}
	if code, _, _ := do(t, c, "GET", s.URL+"/api/x", nil, nil, "Authorization", "Bearer "+prom); code != 200 {
		t.Errorf("manager token GET: %d", code)
	}
	for _, bad := range []string{"Bearer relais_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer " + tech + "x", "Basic " + tech, "Bearer", "Bearer relais_" + strings.Repeat("A", 4000)} {
		if code, _, _ := do(t, c, "GET", s.URL+"/api/x", nil, nil, "Authorization", bad); code != http.StatusUnauthorized {
			t.Errorf("Authorization %.30q: %d", bad, code)
		}
	}
	for _, tc := range []struct {
		name string
		role store.Role
	}{{"", store.Manager}, {"has space", store.Manager}, {strings.Repeat("n", auth.MaxNameLength+1), store.Manager}, {"ok", "root"}} {
		if _, err := s.a.NewToken(ctx, tc.name, tc.role); err == nil {
			t.Errorf("NewToken(%q, %q) succeeded", tc.name, tc.role)
		}
	}
}

func TestCanAct(t *testing.T) {
	if !auth.CanAct(store.Admin) || !auth.CanAct(store.Technician) || auth.CanAct(store.Manager) || auth.CanAct("") {
		t.Error("CanAct: want admin and technician only")
	}
}
