package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/peertest"
)

// Limits the attacks run into, as TestAttacksOnAgent configures the agent.
const (
	attackMaxJobBytes = 1 << 20 // ipp.max_job_bytes, the smallest allowed
	attackJobsPerMin  = 5       // ipp.jobs_per_client_per_minute
	// attackReadHeaderTimeout is serveHTTP's ReadHeaderTimeout: how long a
	// connection may take to send its request headers.
	attackReadHeaderTimeout = 10 * time.Second
	// attackMaxRSS bounds the agent's resident memory during the attacks.
	// The test binary is the agent, and under -race it carries the race
	// detector's shadow memory: the bound is generous, what it catches is
	// memory growing with the attack (a buffered upload, a connection
	// that keeps its buffers).
	attackMaxRSS = 200 << 20
)

// The visitor is on the public Wi-Fi at 127.0.0.1; the aidant's PC is the
// one address of [web] allow, 127.0.0.2. Both are loopback addresses (Linux
// routes all of 127.0.0.0/8 to lo): the second one gives the tests a
// second client, since the agent tells clients apart by their address.
const (
	visitorAddr = "127.0.0.1"
	aidantAddr  = "127.0.0.2"
)

// TestAttacksOnAgent attacks a running agent from the public network, as a
// visitor's device on the Wi-Fi could: oversized and malformed IPP
// requests, a flood of jobs, the local page from outside [web] allow and
// forged forms, and slow-loris connections on both ports. Each gets a
// clear refusal, the agent goes on serving legitimate clients, and its
// resident memory, sampled throughout, stays bounded.
func TestAttacksOnAgent(t *testing.T) {
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	webPort := peertest.FreePort(t)
	agent := startAgent(t, printer.URI,
		"printer.hold=true", // accepted jobs wait on the page, for the form tests
		fmt.Sprintf("ipp.max_job_bytes=%d", attackMaxJobBytes),
		fmt.Sprintf("ipp.jobs_per_client_per_minute=%d", attackJobsPerMin),
		fmt.Sprintf("web.listen=127.0.0.1:%d", webPort),
		"web.allow="+aidantAddr+"/32")
	agent.waitFor("the printer's capabilities", 60*time.Second, func() bool {
		return agent.status().Printer != "injoignable"
	})
	ippURL, err := upstream.HTTPURL(agent.URI)
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf("http://127.0.0.1:%d", webPort)
	visitor, aidant := clientFrom(t, visitorAddr), clientFrom(t, aidantAddr)

	rss := peertest.WatchRSS(t, agent.cmd.Process.Pid)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	// phase runs one attack and logs the memory after it.
	phase := func(name string, attack func(t *testing.T)) {
		t.Run(name, attack)
		last, peak := rss.Now()
		t.Logf("after %s: RSS %.1f MiB (peak so far %.1f MiB)", name, mib(last), mib(peak))
	}

	phase("OversizedJob", func(t *testing.T) {
		before, jobsBefore := spoolFiles(t, agent.storage), len(agent.jobs())
		// Announced too large (job-k-octets): refused before any data.
		announced := printJob(agent.URI, goipp.MakeAttribute("job-k-octets", goipp.TagInteger, goipp.Integer(2048)))
		expectIPP(t, "job-k-octets 2048", visitor, ippURL, frame(announced, peertest.PDF(1)), false, goipp.StatusErrorRequestEntity)
		// Too large by Content-Length, and by counting a chunked body.
		big := oversizedPDF(attackMaxJobBytes + 100<<10)
		expectIPP(t, "a 1.1 MiB document", visitor, ippURL, frame(printJob(agent.URI), big), false, goipp.StatusErrorRequestEntity)
		expectIPP(t, "a 1.1 MiB chunked document", visitor, ippURL, frame(printJob(agent.URI), big), true, goipp.StatusErrorRequestEntity)
		if after := spoolFiles(t, agent.storage); !slicesEqual(after, before) {
			t.Errorf("the spool changed: %v, then %v", before, after)
		}
		if n := len(agent.jobs()); n != jobsBefore {
			t.Errorf("%d jobs, then %d", jobsBefore, n)
		}
	})

	phase("MalformedIPP", func(t *testing.T) {
		valid := getPrinterAttributes(agent.URI)
		v3 := *valid
		v3.Version = goipp.MakeVersion(3, 0)
		// A header, then an attribute whose name claims 65535 bytes and
		// whose data ends at once; then one whose value does the same.
		head := []byte{2, 0, 0, 0x0b, 0, 0, 0, 1, byte(goipp.TagOperationGroup)}
		longName := append(append([]byte{}, head...), byte(goipp.TagCharset), 0xff, 0xff, 'a', 't', 't', 'r')
		longValue := append(append([]byte{}, head...), byte(goipp.TagCharset), 0, 18)
		longValue = append(append(longValue, "attributes-charset"...), 0xff, 0xff, 'u', 't', 'f')
		// Attributes of 65535 bytes each, past the 64 KiB the agent reads
		// before the document.
		var huge bytes.Buffer
		huge.Write(head)
		for range 2 {
			huge.WriteByte(byte(goipp.TagText))
			binary.Write(&huge, binary.BigEndian, uint16(9))
			huge.WriteString("job-name2")
			binary.Write(&huge, binary.BigEndian, uint16(0xffff))
			huge.Write(bytes.Repeat([]byte{'x'}, 0xffff))
		}
		huge.WriteByte(byte(goipp.TagEnd))

		expectHTTP(t, "a truncated header", visitor, ippURL, "application/ipp", []byte{2, 0, 0, 0x0b, 0}, http.StatusBadRequest)
		expectHTTP(t, "not application/ipp", visitor, ippURL, "text/plain", encode(t, valid), http.StatusUnsupportedMediaType)
		// Garbage: its first two bytes read as IPP version 222.173.
		expectIPP(t, "garbage", visitor, ippURL, bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64), false, goipp.StatusErrorVersionNotSupported)
		expectIPP(t, "garbage after a 2.0 header", visitor, ippURL, append(append([]byte{}, head...), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64)...), false, goipp.StatusErrorBadRequest)
		expectIPP(t, "IPP/3.0", visitor, ippURL, encode(t, &v3), false, goipp.StatusErrorVersionNotSupported)
		expectIPP(t, "a 65535-byte name cut short", visitor, ippURL, longName, false, goipp.StatusErrorBadRequest)
		expectIPP(t, "a 65535-byte value cut short", visitor, ippURL, longValue, false, goipp.StatusErrorBadRequest)
		expectIPP(t, "128 KiB of attributes", visitor, ippURL, huge.Bytes(), false, goipp.StatusErrorRequestEntity)
		// HTTP headers past MaxHeaderBytes (64 KiB).
		req, _ := http.NewRequest(http.MethodPost, ippURL, bytes.NewReader(encode(t, valid)))
		req.Header.Set("Content-Type", "application/ipp")
		req.Header.Set("X-Padding", strings.Repeat("x", 80<<10))
		if resp, err := visitor.Do(req); err != nil {
			t.Errorf("80 KiB of HTTP headers: %v", err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("80 KiB of HTTP headers: %s, want 431", resp.Status)
			}
		}
		// And the agent still prints.
		n := len(agent.jobs())
		expectIPP(t, "Print-Job after the malformed requests", visitor, ippURL, frame(printJob(agent.URI), peertest.PDF(1)), false, goipp.StatusOk)
		if got := len(agent.jobs()); got != n+1 {
			t.Errorf("%d jobs after a Print-Job, want %d", got, n+1)
		}
	})

	phase("JobFlood", func(t *testing.T) {
		// The aidant's PC floods the printer (its first jobs this minute):
		// the first attackJobsPerMin are accepted, the others refused.
		for i := range attackJobsPerMin + 3 {
			want := goipp.StatusOk
			if i >= attackJobsPerMin {
				want = goipp.StatusErrorNotPossible
			}
			msg := expectIPP(t, fmt.Sprintf("job %d of the flood", i+1), aidant, ippURL, frame(printJob(agent.URI), peertest.PDF(1)), false, want)
			if want != goipp.StatusOk && msg != nil && !strings.Contains(statusMessage(msg), "too many jobs") {
				t.Errorf("job %d refused with %q", i+1, statusMessage(msg))
			}
		}
		// The flooding client may still ask about the printer; another
		// client (the visitor, with 2 jobs this minute) still prints.
		expectIPP(t, "Get-Printer-Attributes from the flooding client", aidant, ippURL, frame(getPrinterAttributes(agent.URI), nil), false, goipp.StatusOk)
		expectIPP(t, "a job from another client", visitor, ippURL, frame(printJob(agent.URI), peertest.PDF(1)), false, goipp.StatusOk)
	})

	phase("LocalPage", func(t *testing.T) {
		// From outside [web] allow: 403, whatever the headers claim.
		for _, path := range []string{"/", "/status", "/scans/0123456789abcdef"} {
			expectGet(t, visitor, page+path, nil, http.StatusForbidden)
		}
		expectGet(t, visitor, page+"/", http.Header{"X-Forwarded-For": {aidantAddr}, "X-Real-Ip": {aidantAddr}, "Forwarded": {"for=" + aidantAddr}}, http.StatusForbidden)
		// From the aidant's PC: the page, unless the Host is not the
		// agent's (DNS rebinding).
		body := expectGet(t, aidant, page+"/", nil, http.StatusOK)
		expectGet(t, aidant, page+"/", http.Header{"Host": {"relais.attacker.example"}}, http.StatusMisdirectedRequest)
		m := regexp.MustCompile(`action="/jobs/(\d+)/cancel">\s*<input type="hidden" name="token" value="([A-Za-z0-9_-]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no held job with a form on the page:\n%s", body)
		}
		job, token := m[1], m[2]
		cancel := page + "/jobs/" + job + "/cancel"
		form := func(v url.Values) []byte { return []byte(v.Encode()) }
		forged := []struct {
			name   string
			client *http.Client
			body   []byte
			header http.Header
		}{
			{"no token", aidant, nil, nil},
			{"a forged token", aidant, form(url.Values{"token": {strings.Repeat("A", len(token))}}), nil},
			{"another site's form", aidant, form(url.Values{"token": {token}}), http.Header{"Sec-Fetch-Site": {"cross-site"}}},
			{"another origin", aidant, form(url.Values{"token": {token}}), http.Header{"Origin": {"http://relais.attacker.example"}}},
			{"a 256 KiB form", aidant, form(url.Values{"token": {token}, "pad": {strings.Repeat("x", 256<<10)}}), nil},
			{"a valid form from outside [web] allow", visitor, form(url.Values{"token": {token}}), nil},
		}
		for _, f := range forged {
			if code := postForm(t, f.client, cancel, f.body, f.header); code != http.StatusForbidden {
				t.Errorf("%s: HTTP %d, want 403", f.name, code)
			}
		}
		if st := jobState(t, agent, job); st != "held" {
			t.Fatalf("job %s is %s after the forged forms", job, st)
		}
		// The genuine form works: the refusals were the attacks'.
		if code := postForm(t, aidant, cancel, form(url.Values{"token": {token}}), nil); code != http.StatusSeeOther {
			t.Errorf("the page's own form: HTTP %d, want 303", code)
		}
		if st := jobState(t, agent, job); st != "canceled" {
			t.Errorf("job %s is %s after the page's form canceled it", job, st)
		}
	})

	phase("SlowLoris", func(t *testing.T) {
		// 100 connections on each port, each sending its headers one byte
		// a second and opening again once closed: more than the agent's
		// MaxConnections per listener, so that legitimate clients queue.
		const conns = 100
		ctx, stop := context.WithCancel(context.Background())
		var wg, dialed sync.WaitGroup
		ippAddr := strings.TrimPrefix(strings.TrimSuffix(ippURL, "/ipp/print"), "http://")
		for _, addr := range []string{ippAddr, fmt.Sprintf("127.0.0.1:%d", webPort)} {
			dialed.Add(1)
			wg.Go(func() { slowLoris(ctx, addr, conns, dialed.Done) })
		}
		defer func() { stop(); wg.Wait() }()
		dialed.Wait()
		// The attacker's address holds at most MaxConnectionsPerAddress of
		// each listener's MaxConnections; the others are closed as soon as
		// accepted, so a client at another address is served at once. The
		// bound is what it would wait if the attack held every connection.
		bound := attackReadHeaderTimeout*time.Duration((conns+MaxConnections)/MaxConnections) + 30*time.Second
		patient := func(c *http.Client) *http.Client { return &http.Client{Transport: c.Transport, Timeout: bound} }
		var lg sync.WaitGroup
		lg.Go(func() {
			start := time.Now()
			expectIPP(t, "Get-Printer-Attributes during the attack", patient(aidant), ippURL, frame(getPrinterAttributes(agent.URI), nil), false, goipp.StatusOk)
			t.Logf("IPP: a legitimate client answered after %v (bound %v)", time.Since(start).Round(10*time.Millisecond), bound)
		})
		lg.Go(func() {
			start := time.Now()
			expectGet(t, patient(aidant), page+"/", nil, http.StatusOK)
			t.Logf("local page: the aidant answered after %v (bound %v)", time.Since(start).Round(10*time.Millisecond), bound)
		})
		lg.Wait()
	})

	// The attackers are gone: the agent answers, and its memory is back.
	expectIPP(t, "Get-Printer-Attributes after the attacks", visitor, ippURL, frame(getPrinterAttributes(agent.URI), nil), false, goipp.StatusOk)
	before, peak, after := rss.Stop(t)
	t.Logf("agent RSS: before %.1f MiB, peak %.1f MiB, after %.1f MiB (bound %d MiB)", mib(before), mib(peak), mib(after), attackMaxRSS>>20)
	fmt.Printf("relais-agent RSS under attack: before %.1f MiB, peak %.1f MiB, after %.1f MiB\n", mib(before), mib(peak), mib(after))
	if peak > attackMaxRSS {
		t.Errorf("the agent's RSS peaked at %.1f MiB under attack, over %d MiB", mib(peak), attackMaxRSS>>20)
	}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address addr, without keep-alive (each request a connection of
// its own, as the attacks need).
func clientFrom(t *testing.T, addr string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 10 * time.Second}
	if !net.ParseIP(addr).IsLoopback() {
		t.Fatalf("%s is not a loopback address", addr)
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   60 * time.Second,
		// Redirects are what is checked, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// printJob is a Print-Job request for a PDF, with extra operation
// attributes.
func printJob(uri string, extra ...goipp.Attribute) *goipp.Message {
	c := &upstream.Client{URI: uri}
	m := c.NewRequest(goipp.OpPrintJob)
	m.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String("visiteur")))
	m.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	for _, a := range extra {
		m.Operation.Add(a)
	}
	return m
}

func getPrinterAttributes(uri string) *goipp.Message {
	c := &upstream.Client{URI: uri}
	return c.NewRequest(goipp.OpGetPrinterAttributes)
}

func encode(t *testing.T, m *goipp.Message) []byte {
	t.Helper()
	b, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frame is an IPP request followed by its document.
func frame(m *goipp.Message, doc []byte) []byte {
	b, err := m.EncodeBytes()
	if err != nil {
		panic(err) // the tests' own messages
	}
	return append(b, doc...)
}

// oversizedPDF is a valid PDF of about n bytes: one page and a comment.
func oversizedPDF(n int) []byte {
	pdf := peertest.PDF(1)
	return append(pdf, []byte("%"+strings.Repeat("x", max(0, n-len(pdf)-2))+"\n")...)
}

// postIPP posts body to url as application/ipp (chunked: without a
// Content-Length) and returns the HTTP status and the decoded IPP response.
func postIPP(c *http.Client, url string, body []byte, chunked bool) (int, *goipp.Message, error) {
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // a reader of unknown length: chunked
	}
	req, err := http.NewRequest(http.MethodPost, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", goipp.ContentType)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, upstream.MaxResponseBytes))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	var m goipp.Message
	if err := m.DecodeBytes(data); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("the response is not IPP: %v", err)
	}
	return resp.StatusCode, &m, nil
}

// expectIPP posts an IPP request and checks that it is answered with the
// IPP status want; it returns the response.
func expectIPP(t *testing.T, what string, c *http.Client, url string, body []byte, chunked bool, want goipp.Status) *goipp.Message {
	t.Helper()
	code, m, err := postIPP(c, url, body, chunked)
	switch {
	case err != nil:
		t.Errorf("%s: %v", what, err)
	case code != http.StatusOK:
		t.Errorf("%s: HTTP %d, want 200 with IPP status %s", what, code, want)
	case goipp.Status(m.Code) != want:
		t.Errorf("%s: %s (%q), want %s", what, goipp.Status(m.Code), statusMessage(m), want)
	}
	return m
}

// expectHTTP posts body and checks the HTTP status.
func expectHTTP(t *testing.T, what string, c *http.Client, url, contentType string, body []byte, want int) {
	t.Helper()
	resp, err := c.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("%s: %s, want %d", what, resp.Status, want)
	}
}

func statusMessage(m *goipp.Message) string {
	for _, a := range m.Operation {
		if a.Name == "status-message" && len(a.Values) > 0 {
			return a.Values[0].V.String()
		}
	}
	return ""
}

// expectGet gets url with the headers (Host included) and checks the
// status; it returns the body.
func expectGet(t *testing.T, c *http.Client, url string, h http.Header, want int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		t.Errorf("GET %s (%v): %s, want %d", url, h, resp.Status, want)
	}
	return string(body)
}

// postForm posts a form body as a browser would and returns the status.
func postForm(t *testing.T, c *http.Client, url string, body []byte, h http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func jobState(t *testing.T, a *runningAgent, id string) string {
	t.Helper()
	for _, j := range a.jobs() {
		if fmt.Sprint(j.ID) == id {
			return j.State
		}
	}
	return "absent"
}

// spoolFiles lists the job and temporary files of the agent's spool.
func spoolFiles(t *testing.T, storage string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(storage, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "job-") || strings.HasPrefix(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	return names
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// slowLoris keeps n connections to addr sending request headers one byte
// a second, never ending them, from the visitor's address; a connection
// the agent closes is opened again. It calls dialed once the first n are
// open (queued by the kernel if the agent does not accept them yet), and
// returns when ctx is done, with every connection closed.
func slowLoris(ctx context.Context, addr string, n int, dialed func()) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(visitorAddr)}, Timeout: 5 * time.Second}
	header := []byte("POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ipp\r\nX-Slow: " + strings.Repeat("s", 1<<10))
	type slow struct {
		c    net.Conn
		sent int
	}
	conns := make([]slow, n)
	defer func() {
		for _, s := range conns {
			if s.c != nil {
				s.c.Close()
			}
		}
	}()
	tick := time.NewTicker(time.Second) // the attack's pace
	defer tick.Stop()
	for {
		for i := range conns {
			s := &conns[i]
			if s.c == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				s.c, s.sent = c, 0
			}
			s.c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := s.c.Write(header[s.sent%len(header) : s.sent%len(header)+1]); err != nil {
				s.c.Close()
				s.c = nil
				continue
			}
			s.sent++
		}
		if dialed != nil {
			dialed()
			dialed = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
