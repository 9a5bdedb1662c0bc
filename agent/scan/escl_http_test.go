package scan

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signintech/gopdf"
)

// The escl driver against HTTP servers that replay real devices' documents
// and act out quirks the simulator does not.

// device is a scripted eSCL server.
type device struct {
	t      *testing.T
	caps   []byte
	status func() []byte
	create func(n int, body []byte) (code int, location string)
	next   func(n int) (code int, body []byte)

	mu       sync.Mutex
	settings []Settings
	paths    []string // requests, as "METHOD path"
	creates  int
	nexts    int
}

func (d *device) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.paths = append(d.paths, r.Method+" "+r.URL.Path)
	d.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/eSCL/ScannerCapabilities":
		w.Write(d.caps)
	case r.Method == http.MethodGet && r.URL.Path == "/eSCL/ScannerStatus":
		w.Write(d.status())
	case r.Method == http.MethodPost && r.URL.Path == "/eSCL/ScanJobs":
		body, _ := io.ReadAll(r.Body)
		s, err := ParseSettings(body)
		if err != nil {
			d.t.Errorf("ScanSettings do not parse: %v\n%s", err, body)
		}
		d.mu.Lock()
		d.settings = append(d.settings, s)
		d.creates++
		n := d.creates
		d.mu.Unlock()
		code, loc := d.create(n, body)
		if loc != "" {
			w.Header().Set("Location", loc)
		}
		w.WriteHeader(code)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/NextDocument"):
		d.mu.Lock()
		d.nexts++
		n := d.nexts
		d.mu.Unlock()
		code, body := d.next(n)
		w.WriteHeader(code)
		w.Write(body)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func (d *device) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.paths...)
}

func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func fixed(b []byte) func() []byte { return func() []byte { return b } }

// A real HP's capabilities and status; the job's Location is absolute and
// names another host: the driver stays on the scanner it was given.
func TestESCLReplayedHPAbsoluteForeignLocation(t *testing.T) {
	page := testJPEG(t, 2480, 3508)
	d := &device{
		t:      t,
		caps:   readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml"),
		status: fixed(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml")),
		create: func(int, []byte) (int, string) {
			return http.StatusCreated, "http://printer.invalid:8080/eSCL/ScanJobs/1005"
		},
		next: func(n int) (int, []byte) {
			if n == 1 {
				return http.StatusOK, page
			}
			return http.StatusNotFound, nil
		},
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	e, err := NewESCL(srv.URL+"/eSCL", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), Request{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 1 || res.Source != SourcePlaten || res.Format != FormatPDF || res.Resolution != 300 {
		t.Errorf("result %+v", res)
	}
	// The status says the feeder is empty: the glass, in grey, A4 at
	// 300 dpi, JPEG pages with the DocumentFormatExt the device lists.
	want := Settings{Version: "2.0", Source: "Platen", ColorMode: "Grayscale8", Format: FormatJPEG, FormatExt: true,
		XResolution: 300, YResolution: 300, Width: A4Width, Height: A4Height}
	if len(d.settings) != 1 || d.settings[0] != want {
		t.Errorf("settings %+v, want %+v", d.settings, want)
	}
	reqs := strings.Join(d.requests(), "\n")
	for _, w := range []string{"GET /eSCL/ScanJobs/1005/NextDocument", "DELETE /eSCL/ScanJobs/1005"} {
		if !strings.Contains(reqs, w) {
			t.Errorf("no %s among the requests:\n%s", w, reqs)
		}
	}
}

// 409 Conflict while the scanner is processing, then 201.
func TestESCLConflictRetried(t *testing.T) {
	processing := `<scan:ScannerStatus xmlns:scan="` + NSScan + `" xmlns:pwg="` + NSPWG + `"><pwg:Version>2.0</pwg:Version><pwg:State>Processing</pwg:State></scan:ScannerStatus>`
	idle := strings.Replace(processing, "Processing", "Idle", 1)
	var mu sync.Mutex
	current := processing
	d := &device{
		t:    t,
		caps: readDump(t, "Xerox-B235-ScannerCapabilities.xml"),
		status: func() []byte {
			mu.Lock()
			defer mu.Unlock()
			return []byte(current)
		},
		create: func(n int, _ []byte) (int, string) {
			if n == 1 {
				return http.StatusConflict, ""
			}
			return http.StatusCreated, "/eSCL/ScanJobs/abc/"
		},
		next: func(n int) (int, []byte) {
			if n == 1 {
				return http.StatusOK, testJPEG(t, 100, 100)
			}
			return http.StatusNotFound, nil
		},
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	clock := newStepClock()
	e, _ := NewESCL(srv.URL+"/eSCL/", Options{Clock: clock})
	done := make(chan error, 1)
	go func() {
		_, err := e.Scan(context.Background(), Request{Source: SourcePlaten}, io.Discard)
		done <- err
	}()
	t1 := clock.wait(t)
	mu.Lock()
	current = idle
	mu.Unlock()
	t1 <- time.Time{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.requests(), "\n"), "GET /eSCL/ScanJobs/abc/NextDocument") {
		t.Errorf("requests: %v", d.requests())
	}
}

// A device that sends the whole job as one multi-page PDF: passed on as it
// is.
func TestESCLWholeJobAsOnePDF(t *testing.T) {
	var pdf gopdf.GoPdf
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4})
	for range 2 {
		pdf.AddPage()
		img, err := gopdf.ImageHolderByBytes(testJPEG(t, 200, 280))
		if err != nil {
			t.Fatal(err)
		}
		if err := pdf.ImageByHolder(img, 0, 0, gopdf.PageSizeA4); err != nil {
			t.Fatal(err)
		}
	}
	var doc bytes.Buffer
	if err := pdf.Write(&doc); err != nil {
		t.Fatal(err)
	}
	caps := strings.NewReplacer("<pwg:DocumentFormat>image/jpeg</pwg:DocumentFormat>", "",
		"<scan:DocumentFormatExt>image/jpeg</scan:DocumentFormatExt>", "").
		Replace(string(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml")))
	loaded := strings.Replace(string(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml")), "ScannerAdfEmpty", "ScannerAdfLoaded", 1)
	d := &device{
		t: t, caps: []byte(caps), status: fixed([]byte(loaded)),
		create: func(int, []byte) (int, string) { return http.StatusCreated, "ScanJobs/1004" },
		next: func(n int) (int, []byte) {
			if n == 1 {
				return http.StatusOK, doc.Bytes()
			}
			return http.StatusNotFound, nil
		},
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	e, _ := NewESCL(srv.URL+"/eSCL", Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), Request{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 2 || res.Source != SourceFeeder || res.Format != FormatPDF || !bytes.Equal(out.Bytes(), doc.Bytes()) {
		t.Errorf("result %+v; document passed on as is: %t", res, bytes.Equal(out.Bytes(), doc.Bytes()))
	}
	if d.settings[0].Format != FormatPDF || d.settings[0].Source != "Feeder" {
		t.Errorf("settings %+v", d.settings[0])
	}
}

func TestESCLBadAnswers(t *testing.T) {
	hpCaps := readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml")
	hpStatus := readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml")
	created := func(int, []byte) (int, string) { return http.StatusCreated, "/eSCL/ScanJobs/9" }
	for _, tc := range []struct {
		name string
		d    *device
		want Reason
	}{
		{"capabilities too large", &device{caps: append([]byte("<ScannerCapabilities>"), bytes.Repeat([]byte(" "), MaxXMLBytes)...)}, IOError},
		{"not capabilities", &device{caps: []byte("<html>Login</html>")}, IOError},
		{"page neither JPEG nor PDF", &device{caps: hpCaps, status: fixed(hpStatus), create: created,
			next: func(int) (int, []byte) { return http.StatusOK, []byte("GIF89a....") }}, IOError},
		{"truncated JPEG", &device{caps: hpCaps, status: fixed(hpStatus), create: created,
			next: func(int) (int, []byte) { return http.StatusOK, testJPEG(t, 50, 50)[:20] }}, IOError},
		{"created without a Location", &device{caps: hpCaps, status: fixed(hpStatus),
			create: func(int, []byte) (int, string) { return http.StatusCreated, "" }}, IOError},
		{"job refused", &device{caps: hpCaps, status: fixed(hpStatus),
			create: func(int, []byte) (int, string) { return http.StatusBadRequest, "" }}, IOError},
		{"no page from the glass", &device{caps: hpCaps, status: fixed(hpStatus), create: created,
			next: func(int) (int, []byte) { return http.StatusNotFound, nil }}, IOError},
		{"server error", &device{caps: hpCaps, status: fixed(hpStatus), create: created,
			next: func(int) (int, []byte) { return http.StatusInternalServerError, nil }}, IOError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.t = t
			srv := httptest.NewServer(tc.d)
			defer srv.Close()
			e, _ := NewESCL(srv.URL+"/eSCL", Options{})
			var out bytes.Buffer
			if _, err := e.Scan(context.Background(), Request{Source: SourcePlaten}, &out); ReasonOf(err) != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written", out.Len())
			}
		})
	}
}

// A redirect to another host is not followed.
func TestESCLRedirectElsewhereRefused(t *testing.T) {
	var hits int
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	e, _ := NewESCL(srv.URL+"/eSCL", Options{})
	if _, err := e.Status(context.Background()); err == nil {
		t.Error("a redirect to another host was followed")
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("the other host was asked %d times", hits)
	}
}

// stepClock lets a test release each pause the driver makes.
type stepClock struct{ timers chan chan time.Time }

func newStepClock() *stepClock { return &stepClock{timers: make(chan chan time.Time, 10)} }

func (c *stepClock) Now() time.Time { return time.Time{} }

func (c *stepClock) NewTimer(time.Duration) Timer {
	ch := make(chan time.Time, 1)
	c.timers <- ch
	return stepTimer(ch)
}

type stepTimer chan time.Time

func (t stepTimer) C() <-chan time.Time { return t }
func (t stepTimer) Stop() bool          { return true }

// wait returns the channel of the next timer the driver makes.
func (c *stepClock) wait(t *testing.T) chan time.Time {
	t.Helper()
	select {
	case ch := <-c.timers:
		return ch
	case <-time.After(20 * time.Second):
		t.Fatal("the driver never paused")
		return nil
	}
}

// A feeder job refused while the status says the feeder is empty: no
// documents, at once.
func TestESCLFeederJobRefusedWhenEmpty(t *testing.T) {
	d := &device{
		t:      t,
		caps:   readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml"),
		status: fixed(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml")),
		create: func(int, []byte) (int, string) { return http.StatusServiceUnavailable, "" },
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	clock := newStepClock()
	e, _ := NewESCL(srv.URL+"/eSCL", Options{Clock: clock})
	if _, err := e.Scan(context.Background(), Request{Source: SourceFeeder, Duplex: true}, io.Discard); ReasonOf(err) != NoDocuments {
		t.Errorf("error %v, want no-documents", err)
	}
	if d.creates != 1 || len(clock.timers) != 0 {
		t.Errorf("%d job requests, %d pauses: an empty feeder is not retried", d.creates, len(clock.timers))
	}
	if s := d.settings[0]; s.Source != "Feeder" || !s.Duplex || s.Height != A4Height {
		t.Errorf("settings %+v", s)
	}
}
