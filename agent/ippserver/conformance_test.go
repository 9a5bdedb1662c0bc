package ippserver

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/peertest"
)

// The CUPS conformance suites, as Debian's cups-ipp-utils ships them, run by
// ipptool against the agent's printer on a loopback port, the agent's queue
// forwarding to a real upstream. Every test must PASS or SKIP, but for the
// errors of the suites themselves listed in suiteErrors.
func TestIPPToolConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suites take minutes")
	}
	ipptool := peertest.Program(t, "ipptool", "cups-ipp-utils")
	suites := "/usr/share/cups/ipptool"
	if _, err := os.Stat(filepath.Join(suites, "ipp-everywhere.test")); err != nil {
		peertest.Missing(t, "%s/ipp-everywhere.test not found: install the Debian package cups-ipp-utils", suites)
	}
	upstreams := []struct {
		name  string
		start func(t *testing.T) string // returns the printer's URI
	}{
		{"ippeveprinter", func(t *testing.T) string {
			return peertest.IPPEvePrinter(t, peertest.IPPEveOptions{Duplex: true}).URI
		}},
		{"xerox-b235", func(t *testing.T) string {
			uri, _ := replayPrinter(t, "Xerox-B235-Printer-Attributes.ipp")
			return uri
		}},
	}
	for _, up := range upstreams {
		for _, s := range []struct{ file, version string }{
			{"ipp-1.1.test", "1.1"},
			{"ipp-2.0.test", "2.0"},
			{"ipp-everywhere.test", "2.0"},
		} {
			t.Run(up.name+"/"+s.file, func(t *testing.T) {
				e := conformanceEnv(t, up.start(t))
				data := t.TempDir()
				writeSuiteFiles(t, data)
				cmd := exec.Command(ipptool, "-t", "-I", "--stop-after-include-error", "-h", "-T", "60",
					"-V", s.version, "-f", "testfile.jpg", e.uri, filepath.Join(suites, s.file))
				cmd.Dir = data
				out, err := cmd.CombinedOutput()
				r := parseIPPTool(out)
				known := 0
				for _, f := range r.failed {
					if why := suiteError(f); why != "" {
						known++
						t.Logf("FAIL %q is an error of the suite, not of the printer: %s\n%s", f.name, why, strings.Join(f.errors, "\n"))
						continue
					}
					t.Errorf("FAIL %q:\n%s", f.name, strings.Join(f.errors, "\n"))
				}
				t.Logf("%s against %s: %d PASS, %d FAIL (%d of them errors of the suite), %d SKIP, included files counted",
					s.file, up.name, r.pass, len(r.failed), known, r.skip)
				if r.summary != "" {
					t.Logf("ipptool's count of %s's own tests: %s", s.file, r.summary)
				}
				if r.pass == 0 || (err != nil && known < len(r.failed)) {
					t.Errorf("ipptool: %v\n%s", err, out)
				}
			})
		}
	}
}

// suiteErrors are the expectations of the suites that contradict the
// specifications they cite, by test name.
var suiteErrors = map[string]map[string]string{
	"PWG 5100.14 section 5.1/5.2 - Required Operations and Attributes": {
		`EXPECTED: overrides-supported WITH-VALUE "document-number"`: "PWG 5100.6 names the member " +
			`"document-numbers" (as ipp-2.2.test expects); a printer that says so is right`,
	},
}

// suiteError returns why a failed test is an error of the suite, or "" if
// it is not (or not only).
func suiteError(f failedTest) string {
	known := suiteErrors[f.name]
	var why []string
	for _, e := range f.errors {
		if strings.HasPrefix(e, "GOT:") || strings.HasPrefix(e, "RECEIVED:") || strings.HasPrefix(e, "status-code =") {
			continue
		}
		w, ok := known[e]
		if !ok {
			return ""
		}
		why = append(why, w)
	}
	return strings.Join(why, "; ")
}

// ipptoolResult counts an ipptool -t report.
type ipptoolResult struct {
	pass, skip int
	failed     []failedTest
	summary    string // ipptool's count of the named file's own tests
}

type failedTest struct {
	name   string
	errors []string // the report's lines under the test, trimmed
}

var resultLine = regexp.MustCompile(`^\s+(.*?)\s+\[(PASS|FAIL|SKIP)\]\s*$`)

func parseIPPTool(out []byte) ipptoolResult {
	var r ipptoolResult
	var cur *failedTest
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		m := resultLine.FindStringSubmatch(line)
		switch {
		case m != nil:
			cur = nil
			switch m[2] {
			case "PASS":
				r.pass++
			case "SKIP":
				r.skip++
			case "FAIL":
				r.failed = append(r.failed, failedTest{name: m[1]})
				cur = &r.failed[len(r.failed)-1]
			}
		case strings.HasPrefix(line, "Summary:"):
			r.summary = line
			cur = nil
		case cur != nil && strings.HasPrefix(line, "        "):
			cur.errors = append(cur.errors, strings.TrimSpace(line))
		default:
			cur = nil
		}
	}
	return r
}

// conformanceEnv is the agent's printer on a real queue whose printer is
// at uri. It returns once the queue has the printer's attributes.
func conformanceEnv(t *testing.T, uri string) *env {
	t.Helper()
	clock := newWatchClock(false)
	const poll = 5*time.Second + 17*time.Millisecond // a duration the queue uses for nothing else
	e := newEnv(t, printq.Config{PrinterURI: uri, Clock: clock, PollInterval: poll, KeepCompleted: 500},
		Config{Name: "Relais conformance", Location: "test", UUID: PrinterUUID("test", "conformance"),
			JobsPerClientPerMinute: 10000})
	e.run()
	clock.waitFor(t, poll)
	return e
}

// writeSuiteFiles writes the documents that the suites print, which Debian
// does not ship: the files of ipp-1.1.test (and -f testfile.jpg), and the
// PWG raster samples of ipp-everywhere.test, which prints those of the
// resolutions and types the printer supports.
func writeSuiteFiles(t *testing.T, dir string) {
	t.Helper()
	write := func(name string, data []byte) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("testfile.jpg", jpegImage(t, 300, 200, false))
	write("color.jpg", jpegImage(t, 600, 400, false))
	write("gray.jpg", jpegImage(t, 600, 400, true))
	for _, d := range []struct {
		name string
		w, h int
	}{{"a4", 595, 842}, {"letter", 612, 792}} {
		write("document-"+d.name+".pdf", pdfPages(d.w, d.h, "Relais "+d.name, 2))
		write("onepage-"+d.name+".pdf", pdfPages(d.w, d.h, "Relais "+d.name, 1))
		write("document-"+d.name+".ps", postScript(d.w, d.h, "Relais "+d.name, 2))
		write("onepage-"+d.name+".ps", postScript(d.w, d.h, "Relais "+d.name, 1))
	}
	samples := []struct {
		name  string
		w, h  float64
		size  string
		pages int
	}{
		{"color.jpg-4x6", 288, 432, "na_index-4x6_4x6in", 1},
		{"gray.jpg-4x6", 288, 432, "na_index-4x6_4x6in", 1},
		{"document-a4", 595, 842, "iso_a4_210x297mm", 2},
		{"document-letter", 612, 792, "na_letter_8.5x11in", 2},
		{"onepage-a4", 595, 842, "iso_a4_210x297mm", 1},
		{"onepage-letter", 612, 792, "na_letter_8.5x11in", 1},
	}
	// ipptool reads every FILE as it parses the suite, before it skips
	// (SKIP-IF-MISSING notwithstanding): all must exist.
	for _, res := range []int{150, 180, 300, 360, 600, 720} {
		for _, typ := range []string{"black_1", "cmyk_8", "sgray_8", "srgb_8", "srgb_16"} {
			dash := strings.ReplaceAll(typ, "_", "-")
			for _, s := range samples {
				name := fmt.Sprintf("pwg-raster-samples-%ddpi/%s/%s-%s-%ddpi.pwg", res, dash, s.name, dash, res)
				write(name, pwgRaster(s.w, s.h, res, typ, s.size, s.pages))
			}
		}
	}
}
