package scanner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/central/peertest"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newSim(t *testing.T, cfg Config) (*Scanner, *httptest.Server) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func do(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func settings(source, mode, format string, dpi int) string {
	return string(scan.Settings{Source: source, ColorMode: mode, Format: format, FormatExt: true,
		XResolution: dpi, YResolution: dpi, Width: scan.A4Width, Height: scan.A4Height}.XML())
}

func status(t *testing.T, base string) *scan.ScannerStatus {
	t.Helper()
	resp, b := do(t, http.MethodGet, base+"/eSCL/ScannerStatus", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ScannerStatus: %s", resp.Status)
	}
	st, err := scan.ParseStatus(b)
	if err != nil {
		t.Fatalf("ScannerStatus does not parse: %v\n%s", err, b)
	}
	return st
}

func TestPageCodeRoundTrip(t *testing.T) {
	for _, dpi := range []int{75, 150, 300} {
		for _, colour := range []bool{false, true} {
			for _, n := range []int{1, 2, 127, 255} {
				data, err := encodeJPEG(renderPage(3*dpi, 2*dpi, dpi, colour, n))
				if err != nil {
					t.Fatal(err)
				}
				img, err := jpeg.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if got := PageCode(img, dpi); got != n {
					t.Errorf("%d dpi, colour %t: page %d reads as %d", dpi, colour, n, got)
				}
			}
		}
	}
	blank, _ := encodeJPEG(newCanvas(300, 200, false).image())
	img, _ := jpeg.Decode(bytes.NewReader(blank))
	if got := PageCode(img, 100); got != -1 {
		t.Errorf("a blank page reads as %d", got)
	}
}

// The eSCL resources, spoken to directly.
func TestESCLResources(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s, srv := newSim(t, Config{ADF: 1, Clock: clock})
	base := srv.URL

	resp, b := do(t, http.MethodGet, base+"/eSCL/ScannerCapabilities", "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, BuiltinCapabilities()) || resp.Header.Get("Content-Type") != "text/xml" {
		t.Errorf("capabilities: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if st := status(t, base); st.State != "Idle" || st.ADFState != "ScannerAdfLoaded" || len(st.Jobs) != 0 {
		t.Errorf("status at start: %+v", st)
	}

	for _, tc := range []struct {
		body string
		code int
	}{
		{"<not xml", http.StatusBadRequest},
		{settings("Platen", "BlackAndWhite1", scan.FormatJPEG, 300), http.StatusConflict},
		{settings("Platen", "RGB24", "image/png", 300), http.StatusConflict},
		{settings("Platen", "RGB24", scan.FormatJPEG, 250), http.StatusConflict},
		{settings("Camera", "RGB24", scan.FormatJPEG, 300), http.StatusConflict},
		{strings.Repeat(" ", MaxSettingsBytes+1), http.StatusRequestEntityTooLarge},
	} {
		if resp, b := do(t, http.MethodPost, base+"/eSCL/ScanJobs", tc.body); resp.StatusCode != tc.code {
			t.Errorf("%.60q: %s (%s), want %d", tc.body, resp.Status, b, tc.code)
		}
	}

	resp, _ = do(t, http.MethodPost, base+"/eSCL/ScanJobs", settings("Feeder", "Grayscale8", scan.FormatJPEG, 75))
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/eSCL/ScanJobs/1" {
		t.Fatalf("job: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	// One job at a time.
	if resp, _ := do(t, http.MethodPost, base+"/eSCL/ScanJobs", settings("Platen", "RGB24", scan.FormatJPEG, 75)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a second job: %s", resp.Status)
	}
	if st := status(t, base); st.State != "Processing" || st.Job("/eSCL/ScanJobs/1") == nil || st.Job("/eSCL/ScanJobs/1").State != "Processing" {
		t.Errorf("status during the job: %+v", st)
	}
	resp, b = do(t, http.MethodGet, base+"/eSCL/ScanJobs/1/NextDocument", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != scan.FormatJPEG {
		t.Fatalf("page: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if sz := img.Bounds().Size(); sz.X != 620 || sz.Y != 877 || PageCode(img, 75) != 1 {
		t.Errorf("page of %v, code %d", sz, PageCode(img, 75))
	}
	clock.Advance(3 * time.Second)
	if resp, _ := do(t, http.MethodGet, base+"/eSCL/ScanJobs/1/NextDocument/", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the last sheet: %s", resp.Status)
	}
	st := status(t, base)
	if j := st.Job("/eSCL/ScanJobs/1"); st.State != "Idle" || st.ADFState != "ScannerAdfEmpty" || j == nil ||
		j.State != "Completed" || j.ImagesCompleted != 1 || j.Age != 3 {
		t.Errorf("status after the job: %+v", st)
	}
	if resp, _ := do(t, http.MethodDelete, base+"/eSCL/ScanJobs/1", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %s", resp.Status)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/eSCL/ScanJobs/99"},
		{http.MethodGet, "/eSCL/ScanJobs/99/NextDocument"},
		{http.MethodGet, "/eSCL/ScanJobs/x/NextDocument"},
		{http.MethodGet, "/eSCL/Nothing"},
		{http.MethodGet, "/"},
	} {
		if resp, _ := do(t, tc.method, base+tc.path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: %s", tc.method, tc.path, resp.Status)
		}
	}
	if resp, _ := do(t, http.MethodPut, base+"/eSCL/ScannerCapabilities", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT capabilities: %s", resp.Status)
	}
	if st := s.Status(); st.Pages != 1 || st.Completed != 1 {
		t.Errorf("simulator status %+v", st)
	}
}

func TestPDFPages(t *testing.T) {
	_, srv := newSim(t, Config{})
	resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Platen", "RGB24", scan.FormatPDF, 75))
	if resp.StatusCode != http.StatusCreated {
		t.Fatal(resp.Status)
	}
	resp, b := do(t, http.MethodGet, srv.URL+resp.Header.Get("Location")+"/NextDocument", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != scan.FormatPDF || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("%s %q %q", resp.Status, resp.Header.Get("Content-Type"), b[:min(len(b), 8)])
	}
	// A4 at 75 dpi: 620×877 pixels, 595.2×841.92 points.
	if !bytes.Contains(b, []byte("595.20 841.92")) {
		t.Error("the PDF page is not A4")
	}
}

func TestDuplexAndJams(t *testing.T) {
	sim, srv := newSim(t, Config{ADF: 2})
	job := func(duplex bool) string {
		set := scan.Settings{Source: "Feeder", Duplex: duplex, ColorMode: "Grayscale8", Format: scan.FormatJPEG,
			XResolution: 75, YResolution: 75, Width: scan.A4Width, Height: scan.A4Height}
		resp, b := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", string(set.XML()))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("job: %s %s", resp.Status, b)
		}
		return srv.URL + resp.Header.Get("Location") + "/NextDocument"
	}
	pages := func(next string) (n int, last int) {
		for {
			resp, b := do(t, http.MethodGet, next, "")
			if resp.StatusCode != http.StatusOK {
				return n, resp.StatusCode
			}
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			n++
			if c := PageCode(img, 75); c != n {
				t.Errorf("page %d carries %d", n, c)
			}
		}
	}
	if n, code := pages(job(true)); n != 4 || code != http.StatusNotFound {
		t.Errorf("duplex, 2 sheets: %d pages, then %d", n, code)
	}
	sim.LoadADF(3)
	sim.Command("jam 2")
	next := job(false)
	if n, code := pages(next); n != 1 || code != http.StatusNotFound {
		t.Errorf("jam at the second sheet: %d pages, then %d", n, code)
	}
	st := status(t, srv.URL)
	if j := st.Jobs[0]; st.ADFState != "ScannerAdfJam" || j.State != "Aborted" || j.ImagesCompleted != 1 {
		t.Errorf("after the jam: %+v", st)
	}
	if got := sim.Status(); got.ADF != 2 || !strings.Contains(fmt.Sprint(got.Faults), "jam") {
		t.Errorf("simulator: %+v", got)
	}
	sim.Command("jam off")
	sim.Command("open on")
	if n, _ := pages(job(false)); n != 0 || status(t, srv.URL).ADFState != "ScannerAdfDoorOpen" {
		t.Errorf("door open: %d pages", n)
	}
	sim.Command("clear")
	sim.LoadADF(0)
	if n, _ := pages(job(false)); n != 0 || status(t, srv.URL).Jobs[0].State != "Aborted" {
		t.Errorf("empty feeder: %d pages", n)
	}
}

func TestBusyDownNotReady(t *testing.T) {
	sim, srv := newSim(t, Config{ADF: 1})
	post := func() *http.Response {
		resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Feeder", "RGB24", scan.FormatJPEG, 75))
		return resp
	}
	sim.Command("busy on")
	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || status(t, srv.URL).State != "Processing" {
		t.Errorf("busy: %s", resp.Status)
	}
	sim.Command("busy off")
	sim.Command("down on")
	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || status(t, srv.URL).State != "Down" {
		t.Errorf("down: %s", resp.Status)
	}
	sim.Command("down off")
	sim.Command("not-ready 2")
	resp := post()
	next := srv.URL + resp.Header.Get("Location") + "/NextDocument"
	for i, want := range []int{503, 503, 200, 404} {
		if resp, _ := do(t, http.MethodGet, next, ""); resp.StatusCode != want {
			t.Errorf("NextDocument %d: %s, want %d", i+1, resp.Status, want)
		}
	}
}

// A job no client asks about for JobIdleTimeout is aborted, and frees the
// scanner.
func TestAbandonedJobExpires(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	_, srv := newSim(t, Config{ADF: 5, Clock: clock})
	post := func() int {
		resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Feeder", "RGB24", scan.FormatJPEG, 75))
		return resp.StatusCode
	}
	if code := post(); code != http.StatusCreated {
		t.Fatal(code)
	}
	clock.Advance(JobIdleTimeout - time.Second)
	if code := post(); code != http.StatusServiceUnavailable {
		t.Errorf("before the timeout: %d", code)
	}
	clock.Advance(time.Second)
	if code := post(); code != http.StatusCreated {
		t.Errorf("after the timeout: %d", code)
	}
	if st := status(t, srv.URL); st.Job("/eSCL/ScanJobs/1").State != "Aborted" {
		t.Errorf("%+v", st)
	}
}

func TestFinishedJobsBounded(t *testing.T) {
	_, srv := newSim(t, Config{})
	for i := 0; i < MaxFinishedJobs+5; i++ {
		resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Platen", "Grayscale8", scan.FormatJPEG, 75))
		do(t, http.MethodDelete, srv.URL+resp.Header.Get("Location"), "")
	}
	if st := status(t, srv.URL); len(st.Jobs) != MaxFinishedJobs || st.Jobs[0].URI != fmt.Sprintf("/eSCL/ScanJobs/%d", MaxFinishedJobs+5) {
		t.Errorf("%d jobs listed, newest %s", len(st.Jobs), st.Jobs[0].URI)
	}
}

func TestReplayedCapabilities(t *testing.T) {
	path := peertest.Device(t, "Xerox-B235-ScannerCapabilities.xml")
	caps, err := LoadCapabilities(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	s, srv := newSim(t, Config{Capabilities: caps, ADF: 1})
	if resp, b := do(t, http.MethodGet, srv.URL+"/eSCL/ScannerCapabilities", ""); !bytes.Equal(b, raw) {
		t.Errorf("not replayed as is: %s", resp.Status)
	}
	if s.Capabilities().MakeAndModel != "Xerox(R) B235 MFP" || s.Capabilities().ADFDuplex != nil {
		t.Errorf("%+v", s.Capabilities())
	}
	// Offered by the device, not drawn by the simulator.
	if resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Platen", "BlackAndWhite1", scan.FormatJPEG, 300)); resp.StatusCode != http.StatusConflict {
		t.Errorf("BlackAndWhite1: %s", resp.Status)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/eSCL/ScanJobs", settings("Platen", "RGB24", "image/tiff", 300)); resp.StatusCode != http.StatusConflict {
		t.Errorf("TIFF: %s", resp.Status)
	}
	if st := status(t, srv.URL); st.Version != "2.9" {
		t.Errorf("status version %q, want the device's", st.Version)
	}

	for _, bad := range []string{"/nonexistent.xml", peertest.Device(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml")} {
		if _, err := LoadCapabilities(bad); err == nil {
			t.Errorf("%s loaded as capabilities", bad)
		}
	}
	if _, err := New(Config{Capabilities: []byte("<ScannerCapabilities/>")}); err == nil {
		t.Error("capabilities without a source accepted")
	}
}

func TestCommands(t *testing.T) {
	platen := strings.Replace(string(BuiltinCapabilities()), "<scan:Adf>", "<scan:NoAdf>", 1)
	platen = strings.Replace(platen, "</scan:Adf>", "</scan:NoAdf>", 1)
	s, err := New(Config{Capabilities: []byte(platen)})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"", "adf", "adf -1", "adf x", "adf 2", "jam maybe", "busy on off",
		"not-ready", "not-ready 100000", "offline on", "frobnicate"} {
		if _, err := s.Command(line); err == nil {
			t.Errorf("%q accepted", line)
		}
	}
	if _, err := New(Config{Capabilities: []byte(platen), ADF: 1}); err == nil {
		t.Error("sheets loaded in a scanner without a feeder")
	}
	s, _ = New(Config{})
	for _, line := range []string{"adf 4", "jam 2", "busy", "down on", "not-ready 3", "open"} {
		if _, err := s.Command(line); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
	st, _ := s.Command("status")
	if st.ADF != 4 || strings.Join(st.Faults, ",") != "open,busy,down,jam-at 2,not-ready 3" {
		t.Errorf("%+v", st)
	}
	if st, _ := s.Command("clear"); len(st.Faults) != 0 || st.ADF != 4 {
		t.Errorf("after clear: %+v", st)
	}
}

func TestControlEndpoint(t *testing.T) {
	s, _ := New(Config{})
	srv := httptest.NewServer(s.ControlHandler())
	defer srv.Close()
	decode := func(b []byte) (st struct {
		Status
		Error string `json:"error"`
	}) {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return st
	}
	resp, b := do(t, http.MethodPost, srv.URL+"/", "adf 3\n\njam 2\n")
	if st := decode(b); resp.StatusCode != http.StatusOK || st.ADF != 3 || st.ADFState != "ScannerAdfLoaded" || st.Faults[0] != "jam-at 2" {
		t.Errorf("%s %+v", resp.Status, st)
	}
	resp, b = do(t, http.MethodPost, srv.URL+"/", "busy on\nfrobnicate\ndown on\n")
	if st := decode(b); resp.StatusCode != http.StatusBadRequest || !strings.Contains(st.Error, "frobnicate") ||
		strings.Contains(strings.Join(st.Faults, ","), "down") {
		t.Errorf("%s %+v", resp.Status, st)
	}
	resp, b = do(t, http.MethodGet, srv.URL+"/", "")
	if st := decode(b); resp.StatusCode != http.StatusOK || st.State != "Processing" {
		t.Errorf("GET: %s %+v", resp.Status, st)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{http.MethodPost, "/", "\n \n", http.StatusBadRequest},
		{http.MethodPost, "/", strings.Repeat("x", MaxControlBytes+1), http.StatusRequestEntityTooLarge},
		{http.MethodPut, "/", "adf 1", http.StatusMethodNotAllowed},
		{http.MethodGet, "/other", "", http.StatusNotFound},
	} {
		if resp, _ := do(t, tc.method, srv.URL+tc.path, tc.body); resp.StatusCode != tc.code {
			t.Errorf("%s %s %.10q: %s, want %d", tc.method, tc.path, tc.body, resp.Status, tc.code)
		}
	}
}

// Offline closes the port: connections are refused; back online, the same
// port serves again.
func TestOfflineOnline(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/eSCL") {
		t.Fatalf("URL %q", url)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/eSCL")
	if _, err := s.Command("offline on"); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("connected while offline")
	}
	if _, err := s.Command("online"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, http.MethodGet, url+"/ScannerStatus", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("back online: %s", resp.Status)
	}
	if err := s.Listen("127.0.0.1:0"); err == nil {
		t.Error("listening twice")
	}
}
