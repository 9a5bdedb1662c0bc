package scan_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/central/peertest"
)

// The sane driver against the real scanimage and SANE's test backend, in a
// private SANE configuration that loads that backend only.

type saneRig struct {
	scanimage string // the real program
	env       []string
	dir       string
}

func newSANERig(t *testing.T) *saneRig {
	t.Helper()
	prog := peertest.Program(t, "scanimage", "sane-utils")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dll.conf"), []byte("test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &saneRig{scanimage: prog, env: []string{"SANE_CONFIG_DIR=" + dir}, dir: dir}
}

// shim writes a script that runs the real scanimage with a preamble, such
// as extra test-backend options, and returns its path.
func (r *saneRig) shim(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	script := "#!/bin/sh\nSCANIMAGE=" + r.scanimage + "\n" + body + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *saneRig) driver(t *testing.T, device string, opt scan.Options) *scan.SANE {
	t.Helper()
	opt.Env = append(opt.Env, r.env...)
	if opt.Program == "" {
		opt.Program = r.scanimage
	}
	if opt.TempDir == "" {
		opt.TempDir = t.TempDir()
	}
	s, err := scan.NewSANE(device, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSANEOnePageJPEG(t *testing.T) {
	r := newSANERig(t)
	s := r.driver(t, "test", scan.Options{})
	var out bytes.Buffer
	res, err := s.Scan(context.Background(), scan.Request{Resolution: 75, Color: true, Source: scan.SourcePlaten, Format: scan.FormatJPEG}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := scan.Result{Pages: 1, Format: scan.FormatJPEG, Color: true, Source: scan.SourcePlaten, Resolution: 75, Bytes: int64(out.Len())}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	img, err := jpeg.Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	// The test backend's area is at most 200 mm square: 590 pixels at 75 dpi.
	if b := img.Bounds(); b.Dx() != 590 || b.Dy() != 590 || !isColour(img) {
		t.Errorf("page %v, colour %t", b.Size(), isColour(img))
	}
}

// The test backend's feeder holds 10 sheets: one PDF of 10 pages.
func TestSANEFeederToOnePDF(t *testing.T) {
	r := newSANERig(t)
	tmp := t.TempDir()
	s := r.driver(t, "test", scan.Options{MaxPages: 20, TempDir: tmp})
	var out bytes.Buffer
	res, err := s.Scan(context.Background(), scan.Request{Resolution: 50}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 10 || res.Source != scan.SourceFeeder || res.Format != scan.FormatPDF || res.Color || res.Resolution != 50 {
		t.Errorf("result %+v", res)
	}
	if n := pdfPageCount(t, out.Bytes()); n != 10 {
		t.Errorf("%d pages in the PDF, want 10", n)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spool left behind: %v", left)
	}
}

func TestSANETooManyPages(t *testing.T) {
	r := newSANERig(t)
	s := r.driver(t, "test", scan.Options{MaxPages: 3})
	_, err := s.Scan(context.Background(), scan.Request{Resolution: 50, Source: scan.SourceFeeder}, &bytes.Buffer{})
	if reason(err) != scan.TooLarge {
		t.Errorf("error %v, want too-large", err)
	}
}

// The test backend's --read-return-value makes sane_read fail as a real
// scanner does.
func TestSANEFaults(t *testing.T) {
	r := newSANERig(t)
	for _, tc := range []struct {
		status string
		source scan.Source
		want   scan.Reason
	}{
		{"SANE_STATUS_JAMMED", scan.SourceFeeder, scan.Jammed},
		{"SANE_STATUS_JAMMED", scan.SourcePlaten, scan.Jammed},
		{"SANE_STATUS_NO_DOCS", scan.SourceFeeder, scan.NoDocuments},
		{"SANE_STATUS_NO_DOCS", scan.SourceAuto, scan.NoDocuments},
		{"SANE_STATUS_DEVICE_BUSY", scan.SourcePlaten, scan.Busy},
		{"SANE_STATUS_COVER_OPEN", scan.SourcePlaten, scan.CoverOpen},
		{"SANE_STATUS_IO_ERROR", scan.SourcePlaten, scan.IOError},
	} {
		t.Run(tc.status+"-"+string(tc.source), func(t *testing.T) {
			prog := r.shim(t, "scanimage-"+tc.status, `exec "$SCANIMAGE" "$@" --read-return-value `+tc.status)
			s := r.driver(t, "test", scan.Options{Program: prog})
			var out bytes.Buffer
			_, err := s.Scan(context.Background(), scan.Request{Resolution: 50, Source: tc.source}, &out)
			var se *scan.Error
			if !errors.As(err, &se) || se.Reason != tc.want || se.Pages != 0 {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written", out.Len())
			}
		})
	}
}

// An empty feeder, with the source left to the driver: the glass.
func TestSANEAutoFallsBackToTheGlass(t *testing.T) {
	r := newSANERig(t)
	prog := r.shim(t, "scanimage-empty-feeder", `for a in "$@"; do
  if [ "$a" = "Automatic Document Feeder" ]; then exec "$SCANIMAGE" "$@" --read-return-value SANE_STATUS_NO_DOCS; fi
done
exec "$SCANIMAGE" "$@"`)
	s := r.driver(t, "test", scan.Options{Program: prog})
	res, err := s.Scan(context.Background(), scan.Request{Resolution: 50}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 1 || res.Source != scan.SourcePlaten {
		t.Errorf("result %+v, want one page from the glass", res)
	}
}

func TestSANEUnreachable(t *testing.T) {
	r := newSANERig(t)
	for name, s := range map[string]*scan.SANE{
		"no such device":  r.driver(t, "nosuch:0", scan.Options{}),
		"no such program": r.driver(t, "test", scan.Options{Program: filepath.Join(t.TempDir(), "scanimage")}),
	} {
		if _, err := s.Scan(context.Background(), scan.Request{}, &bytes.Buffer{}); reason(err) != scan.Unreachable {
			t.Errorf("%s: scan %v, want unreachable", name, err)
		}
		if _, err := s.Status(context.Background()); reason(err) != scan.Unreachable {
			t.Errorf("%s: status %v, want unreachable", name, err)
		}
	}
	for _, bad := range []string{"", "-d", "a\nb"} {
		if _, err := scan.NewSANE(bad, scan.Options{}); err == nil {
			t.Errorf("NewSANE(%q) accepted", bad)
		}
	}
}

// Status opens the device when idle, and says "processing" without
// touching it during a scan.
func TestSANEStatus(t *testing.T) {
	r := newSANERig(t)
	started, release := filepath.Join(r.dir, "started"), filepath.Join(r.dir, "release")
	for _, f := range []string{started, release} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	prog := r.shim(t, "scanimage-held", `case "$*" in *" -A"*) exec "$SCANIMAGE" "$@";; esac
echo started > `+started+`
read go < `+release+`
exec "$SCANIMAGE" "$@"`)
	s := r.driver(t, "test", scan.Options{Program: prog})
	ctx := context.Background()
	if st, err := s.Status(ctx); err != nil || st.State != "idle" || st.Model != "test" {
		t.Fatalf("idle: %+v, %v", st, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Scan(ctx, scan.Request{Resolution: 50, Source: scan.SourcePlaten}, &bytes.Buffer{})
		done <- err
	}()
	line := make(chan string, 1)
	go func() {
		f, err := os.Open(started) // blocks until the scan starts
		if err != nil {
			line <- err.Error()
			return
		}
		defer f.Close()
		l, _ := bufio.NewReader(f).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) != "started" {
			t.Fatalf("shim said %q", l)
		}
	case err := <-done:
		t.Fatalf("the scan ended before starting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the scan did not start")
	}
	if st, err := s.Status(ctx); err != nil || st.State != "processing" {
		t.Errorf("during the scan: %+v, %v", st, err)
	}
	f, err := os.OpenFile(release, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx); err != nil || st.State != "idle" {
		t.Errorf("after the scan: %+v, %v", st, err)
	}
}

// A scan that takes too long is stopped, and scanimage with it.
func TestSANETimeout(t *testing.T) {
	r := newSANERig(t)
	prog := r.shim(t, "scanimage-slow", `exec "$SCANIMAGE" "$@" --read-delay=yes --read-delay-duration=200000`)
	s := r.driver(t, "test", scan.Options{Program: prog, Timeout: time.Second})
	start := time.Now()
	_, err := s.Scan(context.Background(), scan.Request{Resolution: 300, Source: scan.SourcePlaten}, &bytes.Buffer{})
	if reason(err) != scan.Timeout {
		t.Fatalf("error %v, want timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the scan stopped after %v", d)
	}
}
