package printer

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relais-fr/relais/central/peertest"
)

// ipptool runs CUPS's ipptool -t against uri with the test files, the
// document file given with -f, and returns its output; the test fails
// with the failing tests' lines if ipptool fails.
func ipptool(t *testing.T, uri, file string, tests ...string) string {
	t.Helper()
	bin := peertest.Program(t, "ipptool", "cups-ipp-utils")
	args := append([]string{"-t", "-f", file, uri}, tests...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(tests[0])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("ipptool %s: %v\n%s", strings.Join(args, " "), err, failures(out))
	}
	return string(out)
}

var result = regexp.MustCompile(`\[(PASS|FAIL|SKIP)\]`)

// failures keeps the lines of ipptool's output that explain a failure.
func failures(out []byte) string {
	var b strings.Builder
	failing := false
	for _, line := range strings.Split(string(out), "\n") {
		if m := result.FindStringSubmatch(line); m != nil {
			failing = m[1] == "FAIL"
		}
		if failing || strings.HasPrefix(line, "ipptool") || strings.HasPrefix(line, "Summary") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// suite copies Debian's ipp-2.0.test and the ipp-1.1.test it includes
// into a directory with the documents their print tests name, made here:
// ipptool reads them next to the test.
func suite(t *testing.T) string {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{"ipp-1.1.test", "ipp-2.0.test"} {
		src := "/usr/share/cups/ipptool/" + name
		test, err := os.ReadFile(src)
		if err != nil {
			peertest.Missing(t, "%s: %v (install the Debian package cups-ipp-utils)", src, err)
		}
		files[name] = test
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"document-a4.pdf":     peertest.PDF(2),
		"document-letter.pdf": peertest.PDF(2),
		"document-a4.ps":      []byte("%!PS-Adobe-3.0\nshowpage\n"),
		"document-letter.ps":  []byte("%!PS-Adobe-3.0\nshowpage\n"),
		"color.jpg":           jpegImage(t, color.RGBA{R: 200, G: 30, B: 30, A: 255}),
		"gray.jpg":            jpegImage(t, color.Gray{Y: 128}),
		"document.urf":        urf(2),
	} {
		files[name] = body
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func jpegImage(t *testing.T, c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tally counts ipptool's results.
func tally(out string) map[string]int {
	n := map[string]int{}
	for _, m := range result.FindAllStringSubmatch(out, -1) {
		n[m[1]]++
	}
	return n
}

// TestIPPTool checks the simulator with CUPS's own conformance tests: the
// Get-Printer-Attributes and Print-Job tests, and the IPP/2.0 suite
// (PWG 5100.12, which includes the IPP/1.1 suite of RFC 8011), with the
// built-in attributes and replaying a real device. ipp-everywhere.test is
// out of reach: it wants Identify-Printer, Close-Job, Cancel-My-Jobs and
// attributes the simulator does not have.
func TestIPPTool(t *testing.T) {
	dir := suite(t)
	t.Run("builtin", func(t *testing.T) {
		t.Parallel()
		p, _ := start(t, Config{})
		ipptool(t, p.URI(), filepath.Join(dir, "document-a4.pdf"),
			"/usr/share/cups/ipptool/get-printer-attributes.test", "/usr/share/cups/ipptool/print-job.test")
		n := tally(ipptool(t, p.URI(), filepath.Join(dir, "document-a4.pdf"), filepath.Join(dir, "ipp-2.0.test")))
		// The rest are skipped as optional: Print-URI, Send-URI,
		// PostScript, 4x6 media, job-sheets, number-up, Hold-Job.
		if n["PASS"] < 35 || n["FAIL"] != 0 {
			t.Errorf("ipp-2.0.test: %v", n)
		}
		t.Logf("ipp-2.0.test, built-in attributes: %v", n)
	})
	t.Run("xerox-b235", func(t *testing.T) {
		t.Parallel()
		attrs, err := LoadAttributes(peertest.Device(t, "Xerox-B235-Printer-Attributes.ipp"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := start(t, Config{Attributes: attrs})
		// The B235 takes no PDF: Apple raster instead.
		n := tally(ipptool(t, p.URI(), filepath.Join(dir, "document.urf"), filepath.Join(dir, "ipp-2.0.test")))
		if n["PASS"] < 35 || n["FAIL"] != 0 {
			t.Errorf("ipp-2.0.test: %v", n)
		}
		t.Logf("ipp-2.0.test, replaying the Xerox B235: %v", n)
	})
}
