package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// mailer sends notices by e-mail.
type mailer struct {
	addr, host  string
	implicitTLS bool // port 465: TLS from the start (RFC 8314)
	tls         *tls.Config
	from        *mail.Address
	to          []*mail.Address
	user, pass  string
	hello       string // our name in EHLO
	clock       clockwork.Clock
	loc         *time.Location
}

// newMailer checks the SMTP settings and reads the password file.
func newMailer(o SMTP, clock clockwork.Clock, loc *time.Location) (*mailer, error) {
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("SMTP server %q: want host:port, such as smtp.example.org:587", o.Addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("SMTP server %q: bad port", o.Addr)
	}
	m := &mailer{addr: o.Addr, host: host, implicitTLS: port == "465", clock: clock, loc: loc}
	if m.from, err = mail.ParseAddress(o.From); err != nil {
		return nil, fmt.Errorf("SMTP sender %q: %v", o.From, err)
	}
	if len(o.To) == 0 {
		return nil, errors.New("SMTP: no recipient")
	}
	for _, s := range o.To {
		to, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("SMTP recipient %q: %v", s, err)
		}
		m.to = append(m.to, to)
	}
	switch {
	case o.Username != "" && o.PasswordFile == "":
		return nil, errors.New("SMTP: a username without a password file")
	case o.Username == "" && o.PasswordFile != "":
		return nil, errors.New("SMTP: a password file without a username")
	case o.Username != "":
		m.user = o.Username
		if m.pass, err = readPassword(o.PasswordFile); err != nil {
			return nil, fmt.Errorf("SMTP password: %w", err)
		}
	}
	if o.TLSConfig != nil {
		m.tls = o.TLSConfig.Clone()
	} else {
		m.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m.tls.ServerName == "" {
		m.tls.ServerName = host
	}
	m.hello = "localhost"
	if h, err := os.Hostname(); err == nil && validHostname(h) {
		m.hello = h
	}
	return m, nil
}

// validHostname reports whether h is a plain DNS name, fit for EHLO.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (m *mailer) name() string { return "e-mail" }

// send sends one message to every recipient in one SMTP session, within
// ctx's deadline. The session upgrades to TLS when the server offers
// STARTTLS; a failed upgrade fails the delivery, it never goes on in the
// clear. The password is sent only over TLS or to localhost.
func (m *mailer) send(ctx context.Context, n Notice, t text) error {
	msg := m.compose(n, t)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	secure := m.implicitTLS
	if m.implicitTLS {
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return classify(fmt.Errorf("TLS: %w", err))
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	if err := c.Hello(m.hello); err != nil {
		return classify(err)
	}
	if !secure {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tls); err != nil {
				return classify(fmt.Errorf("STARTTLS: %w", err))
			}
			secure = true
		}
	}
	if m.user != "" {
		if !secure && m.host != "localhost" && m.host != "127.0.0.1" && m.host != "::1" {
			return &permanentError{fmt.Errorf("%s offers no TLS: the SMTP password is not sent in the clear", m.addr)}
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return &permanentError{fmt.Errorf("%s offers no authentication (AUTH)", m.addr)}
		}
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return classify(fmt.Errorf("authentication: %w", err))
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return classify(fmt.Errorf("MAIL FROM: %w", err))
	}
	for _, to := range m.to {
		if err := c.Rcpt(to.Address); err != nil {
			return classify(fmt.Errorf("RCPT TO %s: %w", to.Address, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify(fmt.Errorf("DATA: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return classify(fmt.Errorf("DATA: %w", err))
	}
	c.Quit() // the message is accepted; a failed goodbye changes nothing
	return nil
}

// classify marks the failures that an immediate retry would not cure: a
// permanent SMTP reply (5xx) and a certificate that does not verify.
func classify(err error) error {
	var te *textproto.Error
	var ce *tls.CertificateVerificationError
	if errors.As(err, &te) && te.Code >= 500 || errors.As(err, &ce) {
		return &permanentError{err}
	}
	return err
}

// compose writes the message: UTF-8 text, quoted-printable, with a
// Message-ID derived from the incident so that a recovery notice answers
// its alert (mail readers thread them) and a repeated delivery carries the
// same id.
func (m *mailer) compose(n Notice, t text) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.from.String())
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	header("To", strings.Join(to, ",\r\n "))
	b.WriteString(fold("Subject", mime.QEncoding.Encode("utf-8", t.subject)))
	header("Date", m.clock.Now().In(m.loc).Format(time.RFC1123Z))
	header("Message-ID", m.messageID(n, n.State))
	if n.State == StateResolved {
		header("In-Reply-To", m.messageID(n, StateOpen))
		header("References", m.messageID(n, StateOpen))
	}
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	header("X-Relais-Incident", noticeKey(n))
	header("X-Relais-State", n.State)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(t.body)) // a bytes.Buffer does not fail
	qp.Close()
	return b.Bytes()
}

// fold writes a header field whose value is words separated by single
// spaces (plain text, or the encoded-words of mime.QEncoding), folding it
// at those spaces so that lines stay within 78 characters where a word
// allows (RFC 5322, 2.2.3); unfolding gives the value back.
func fold(name, value string) string {
	var b strings.Builder
	b.WriteString(name + ":")
	n := len(name) + 1
	for _, w := range strings.Split(value, " ") {
		if n+1+len(w) > 78 {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteString(" " + w)
		n += 1 + len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// messageID is the Message-ID of the notice of state about n's incident.
func (m *mailer) messageID(n Notice, state string) string {
	sum := sha256.Sum256([]byte(noticeKey(n) + "\x00" + n.Since.UTC().Format(time.RFC3339) + "\x00" + state))
	domain := "relais.invalid"
	if i := strings.LastIndexByte(m.from.Address, '@'); i >= 0 && i+1 < len(m.from.Address) {
		domain = m.from.Address[i+1:]
	}
	return "<relais." + hex.EncodeToString(sum[:12]) + "." + state + "@" + domain + ">"
}

// noticeKey is the key of the incident a notice is about.
func noticeKey(n Notice) string {
	if n.Kind == KindOffline {
		return n.Kind + "/" + n.Site + "/" + n.Agent
	}
	return n.Kind + "/" + n.Site + "/" + n.Agent + "/" + n.Device + "/" + n.Code
}
