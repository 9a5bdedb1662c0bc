package alert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// python is Debian's interpreter, where python3-aiosmtpd is installed
// (another python3 may come first on PATH).
const python = "/usr/bin/python3"

// smtpServer is testdata/smtpd.py, a real aiosmtpd server.
type smtpServer struct {
	addr  string
	spool string
	roots *x509.CertPool // trusts its certificate, when it has one
}

// Ways of the server with TLS.
const (
	noTLS    = iota
	startTLS // offered and required
	smtps    // from the start
)

// startSMTP starts the server on a loopback port of its choice, with TLS or not,
// requiring AUTH when user is set. It stops when the test ends.
func startSMTP(t *testing.T, mode int, user, password string) *smtpServer {
	t.Helper()
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		peertest.Missing(t, "%s cannot import aiosmtpd (%v): install the Debian package python3-aiosmtpd", python, err)
	}
	dir := t.TempDir()
	s := &smtpServer{spool: filepath.Join(dir, "spool")}
	if err := os.Mkdir(s.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(dir, "port")
	args := []string{filepath.Join("testdata", "smtpd.py"), "--port-file", portFile, "--spool", s.spool}
	if mode != noTLS {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		s.roots = selfSigned(t, cert, key)
		args = append(args, "--cert", cert, "--key", key)
	}
	if mode == smtps {
		args = append(args, "--smtps")
	}
	if user != "" {
		args = append(args, "--user", user, "--password", password)
	}
	if err := peertest.StartAndWait(t, exec.Command(python, args...), "smtpd ready", 30*time.Second); err != nil {
		t.Fatalf("smtpd: %v", err)
	}
	port, err := os.ReadFile(portFile)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = net.JoinHostPort("127.0.0.1", string(port))
	return s
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns a pool that trusts it.
func selfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtpd.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// reject makes the server answer DATA with a temporary failure, or no
// longer.
func (s *smtpServer) reject(t *testing.T, on bool) {
	t.Helper()
	p := filepath.Join(s.spool, "reject")
	var err error
	if on {
		err = os.WriteFile(p, nil, 0o600)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// received is a message as the server saved it.
type received struct {
	MailFrom  string   `json:"mail_from"`
	RcptTos   []string `json:"rcpt_tos"`
	TLS       bool     `json:"tls"`
	Login     *string  `json:"login"`
	Mechanism *string  `json:"mechanism"`
	raw       []byte
	msg       *mail.Message
	body      string // decoded, with \n line ends
}

// take returns the messages received since the last call, in order.
func (s *smtpServer) take(t *testing.T) []received {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(s.spool, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(metas)
	var out []received
	for _, m := range metas {
		var r received
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		eml := strings.TrimSuffix(m, ".json") + ".eml"
		if r.raw, err = os.ReadFile(eml); err != nil {
			t.Fatal(err)
		}
		if r.msg, err = mail.ReadMessage(bytes.NewReader(r.raw)); err != nil {
			t.Fatalf("%s: %v", eml, err)
		}
		if cte := r.msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Fatalf("Content-Transfer-Encoding %q", cte)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(r.msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		r.body = strings.ReplaceAll(string(body), "\r\n", "\n")
		out = append(out, r)
		os.Remove(m)
		os.Remove(eml)
	}
	return out
}

// checkWellFormed checks what every message must be: CRLF line ends, lines
// within RFC 5322's limit, a UTF-8 plain text body, and an automatic
// message.
func checkWellFormed(t *testing.T, r received) {
	t.Helper()
	for i, line := range strings.Split(string(r.raw), "\r\n") {
		if strings.ContainsAny(line, "\r\n") || len(line) > 78 {
			t.Errorf("line %d is %d bytes or has a bare CR or LF: %q", i, len(line), line)
		}
	}
	h := r.msg.Header
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("MIME-Version %q, Auto-Submitted %q", h.Get("MIME-Version"), h.Get("Auto-Submitted"))
	}
}

func subjectOfMail(t *testing.T, r received) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(r.msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var messageIDRe = regexp.MustCompile(`^<relais\.[0-9a-f]{24}\.(open|resolved)@example\.org>$`)

// An alert and its recovery notice in French, through STARTTLS with AUTH
// PLAIN, to two recipients; the notice answers the alert.
func TestMailFrench(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, startTLS, "relais", "correct horse")
	f := newFixture(t)
	pw := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := f.options()
	o.WebhookURL = ""
	o.SMTP = SMTP{
		Addr:         srv.addr,
		From:         "Relais <relais@example.org>",
		To:           []string{"tech@example.org", "Équipe technique <equipe@example.org>"},
		Username:     "relais",
		PasswordFile: pw,
		TLSConfig:    &tls.Config{RootCAs: srv.roots},
	}
	a := f.alerter(o)
	f.addAgent(agent, api.Fault{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: t0.Add(-5 * time.Minute)})
	f.at(25 * time.Minute)
	f.heartbeat(agent)
	f.check(a)
	f.at(26 * time.Minute)
	f.heartbeat(agent)
	f.check(a)

	got := srv.take(t)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	alert := got[0]
	checkWellFormed(t, alert)
	if alert.MailFrom != "relais@example.org" || !slices.Equal(alert.RcptTos, []string{"tech@example.org", "equipe@example.org"}) {
		t.Errorf("envelope from %q to %q", alert.MailFrom, alert.RcptTos)
	}
	if !alert.TLS || alert.Login == nil || *alert.Login != "relais" || alert.Mechanism == nil || *alert.Mechanism != "PLAIN" {
		t.Errorf("session: TLS %v, login %v, mechanism %v; want STARTTLS and AUTH PLAIN as relais", alert.TLS, alert.Login, alert.Mechanism)
	}
	h := alert.msg.Header
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Name != "Relais" || from.Address != "relais@example.org" {
		t.Errorf("From %q", h.Get("From"))
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "tech@example.org" || to[1].Name != "Équipe technique" || to[1].Address != "equipe@example.org" {
		t.Errorf("To %q: %v", h.Get("To"), err)
	}
	if s := subjectOfMail(t, alert); s != "[Relais] mediatheque-nord/pi-accueil : plus de papier dans l'imprimante" {
		t.Errorf("Subject %q", s)
	}
	if d, err := h.Date(); err != nil || !d.Equal(t0.Add(25*time.Minute)) || !strings.HasSuffix(h.Get("Date"), "+0100") {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	id := h.Get("Message-ID")
	if !messageIDRe.MatchString(id) || !strings.HasSuffix(id, ".open@example.org>") {
		t.Errorf("Message-ID %q", id)
	}
	if h.Get("X-Relais-Incident") != "fault/mediatheque-nord/pi-accueil/printer/media-empty" || h.Get("X-Relais-State") != "open" {
		t.Errorf("X-Relais-Incident %q, X-Relais-State %q", h.Get("X-Relais-Incident"), h.Get("X-Relais-State"))
	}
	wantBody := `Site mediatheque-nord, agent pi-accueil : plus de papier dans l'imprimante (media-empty) depuis le 23/11/2026 à 13 h 55 CET (30 min).

Site : mediatheque-nord
Agent : pi-accueil
Appareil : imprimante
Code : media-empty
Gravité : panne
Depuis : 23/11/2026 à 13 h 55 CET
Tableau de bord : https://central.example.org/sites/mediatheque-nord/pi-accueil

-- 
Message automatique de relais-central.
`
	if alert.body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", alert.body, wantBody)
	}

	f.at(40 * time.Minute)
	f.status(agent, true)
	f.check(a)
	f.at(41 * time.Minute)
	f.heartbeat(agent)
	f.check(a)
	got = srv.take(t)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	end := got[0]
	checkWellFormed(t, end)
	h = end.msg.Header
	if !strings.Contains(h.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("Subject %q is not Q-encoded", h.Get("Subject"))
	}
	if s := subjectOfMail(t, end); s != "[Relais] mediatheque-nord/pi-accueil : résolu — plus de papier dans l'imprimante" {
		t.Errorf("Subject %q", s)
	}
	if rid := h.Get("Message-ID"); !messageIDRe.MatchString(rid) || rid == id || h.Get("In-Reply-To") != id || h.Get("References") != id {
		t.Errorf("Message-ID %q, In-Reply-To %q, References %q; want an answer to %q", rid, h.Get("In-Reply-To"), h.Get("References"), id)
	}
	wantBody = `Site mediatheque-nord, agent pi-accueil : résolu le 23/11/2026 à 14 h 40 CET après 45 min — plus de papier dans l'imprimante (media-empty).

Site : mediatheque-nord
Agent : pi-accueil
Appareil : imprimante
Code : media-empty
Gravité : panne
Depuis : 23/11/2026 à 13 h 55 CET
Résolu : 23/11/2026 à 14 h 40 CET
Tableau de bord : https://central.example.org/sites/mediatheque-nord/pi-accueil

-- 
Message automatique de relais-central.
`
	if end.body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", end.body, wantBody)
	}
}

// When e-mail fails and the webhook works, the webhook is not told again;
// e-mail is retried within the round and at the next, and the incident is
// recorded once both took it. An incident that ends while e-mail still
// fails is told ended to the webhook only. In English.
func TestMailRetry(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, noTLS, "", "")
	f := newFixture(t)
	o := f.options()
	o.Language = English
	o.SMTP = SMTP{Addr: srv.addr, From: "relais@example.org", To: []string{"tech@example.org"}}
	a := f.alerter(o)
	f.addAgent(agent)
	f.addAgent("pi-atelier")
	f.status(agent, false)
	f.status("pi-atelier", false)
	f.at(10 * time.Minute)
	srv.reject(t, true)

	done := make(chan error, 1)
	go func() { done <- a.Check(f.ctx) }()
	// Two notices; after the first fails three times, e-mail is not tried
	// again in this round.
	for _, wait := range []time.Duration{2 * time.Second, 4 * time.Second} {
		if err := f.clock.BlockUntilContext(f.ctx, 1); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(wait)
	}
	if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("Check: %v, want the server's 451", err)
	}
	if got := len(f.hook.take(t)); got != 2 {
		t.Fatalf("webhook got %d notices, want 2", got)
	}
	if got := srv.take(t); len(got) != 0 {
		t.Fatalf("%d messages while the server refuses", len(got))
	}
	if got := f.openIncidents(); len(got) != 0 {
		t.Errorf("incidents recorded before e-mail took them: %q", got)
	}

	// pi-atelier is back before e-mail works again.
	f.at(11 * time.Minute)
	f.status("pi-atelier", true)
	srv.reject(t, false)
	f.check(a)
	got := srv.take(t)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	checkWellFormed(t, got[0])
	if s := subjectOfMail(t, got[0]); s != "[Relais] mediatheque-nord/pi-accueil: offline" {
		t.Errorf("Subject %q", s)
	}
	wantBody := `Agent pi-accueil of site mediatheque-nord has been offline since 2026-11-23 14:00 CET (10 min).

Site: mediatheque-nord
Agent: pi-accueil
Since: 2026-11-23 14:00 CET
Dashboard: https://central.example.org/sites/mediatheque-nord/pi-accueil

-- 
Automatic message from relais-central.
`
	if got[0].body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", got[0].body, wantBody)
	}
	if got[0].TLS || got[0].Login != nil {
		t.Errorf("TLS %v, login %v without TLS nor credentials", got[0].TLS, got[0].Login)
	}
	f.expectHook(`{"kind":"offline","state":"resolved","site":"mediatheque-nord","agent":"pi-atelier","device":"","code":"","severity":"",` +
		`"since":"2026-11-23T13:00:00Z","resolved_at":"2026-11-23T13:11:00Z",` +
		`"message":"Agent pi-atelier of site mediatheque-nord is back online since 2026-11-23 14:11 CET, after 11 min offline.",` + dashboard("pi-atelier"))
	if got := f.openIncidents(); !slices.Equal(got, []string{"offline/mediatheque-nord/pi-accueil"}) {
		t.Errorf("open incidents %q", got)
	}
	f.at(12 * time.Minute)
	f.check(a)
	f.expectHook()
	if got := srv.take(t); len(got) != 0 {
		t.Errorf("%d more messages", len(got))
	}
}

// The password goes only over TLS or to localhost; a certificate that does
// not verify stops the delivery rather than going on in the clear; TLS from
// the start (port 465) works.
func TestMailSecurity(t *testing.T) {
	t.Parallel()
	pw := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pw, []byte("correct horse"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, f *fixture, a *Alerter) error {
		done := make(chan error, 1)
		go func() { done <- a.Check(f.ctx) }()
		return wait(t, done) // permanent failures: no wait on the clock
	}
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, noTLS, "relais", "correct horse")
		f := newFixture(t)
		o := f.options()
		o.WebhookURL = ""
		o.SMTP = SMTP{Addr: srv.addr, From: "relais@example.org", To: []string{"tech@example.org"}, Username: "relais", PasswordFile: pw}
		a := f.alerter(o)
		f.addAgent(agent)
		f.status(agent, false)
		f.at(10 * time.Minute)
		m := a.channels[0].(*mailer)
		m.host = "smtp.example.org" // as if the server were remote
		if err := run(t, f, a); err == nil || !strings.Contains(err.Error(), "not sent in the clear") {
			t.Fatalf("Check to a remote server without TLS: %v", err)
		}
		if got := srv.take(t); len(got) != 0 {
			t.Fatalf("%d messages", len(got))
		}
		m.host = "127.0.0.1"
		f.check(a)
		got := srv.take(t)
		if len(got) != 1 || got[0].TLS || got[0].Login == nil || *got[0].Login != "relais" {
			t.Fatalf("to localhost: want one message, authenticated in the clear; got %d", len(got))
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, startTLS, "", "")
		f := newFixture(t)
		o := f.options()
		o.WebhookURL = ""
		o.SMTP = SMTP{Addr: srv.addr, From: "relais@example.org", To: []string{"tech@example.org"}}
		a := f.alerter(o)
		f.addAgent(agent)
		f.status(agent, false)
		f.at(10 * time.Minute)
		if err := run(t, f, a); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("Check with an untrusted certificate: %v", err)
		}
		if got := srv.take(t); len(got) != 0 {
			t.Fatalf("%d messages", len(got))
		}
	})
	t.Run("smtps", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, smtps, "relais", "correct horse")
		f := newFixture(t)
		o := f.options()
		o.WebhookURL = ""
		o.SMTP = SMTP{Addr: srv.addr, From: "relais@example.org", To: []string{"tech@example.org"}, Username: "relais", PasswordFile: pw,
			TLSConfig: &tls.Config{RootCAs: srv.roots}}
		a := f.alerter(o)
		a.channels[0].(*mailer).implicitTLS = true // as port 465 does
		f.addAgent(agent)
		f.status(agent, false)
		f.at(10 * time.Minute)
		f.check(a)
		got := srv.take(t)
		if len(got) != 1 || !got[0].TLS || got[0].Login == nil || *got[0].Login != "relais" {
			t.Fatalf("want one message over TLS, authenticated; got %d", len(got))
		}
	})
}
