package dashboard

import (
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// verbRe matches the fmt verbs of a format.
var verbRe = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// TestCatalogue checks that French and English have the same keys, and the
// same verbs in the same order for each.
func TestCatalogue(t *testing.T) {
	t.Parallel()
	for k, fr := range french {
		en, ok := english[k]
		if !ok {
			t.Errorf("%q is in French only", k)
			continue
		}
		if fv, ev := verbRe.FindAllString(fr, -1), verbRe.FindAllString(en, -1); !slices.Equal(verbs(fv), verbs(ev)) {
			t.Errorf("%q: French verbs %q, English verbs %q", k, fv, ev)
		}
		if strings.TrimSpace(fr) == "" || strings.TrimSpace(en) == "" {
			t.Errorf("%q is empty", k)
		}
	}
	for k := range english {
		if _, ok := french[k]; !ok {
			t.Errorf("%q is in English only", k)
		}
	}
}

// verbs drops the flags and widths that may differ between languages.
func verbs(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v[len(v)-1:]
	}
	return out
}

// TestCatalogueCoversUses checks that every key the code and templates use
// is in the catalogue: literal keys, and the keys made from a value.
func TestCatalogueCoversUses(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	tmplKey := regexp.MustCompile(`\.T "([a-z0-9.-]+)"`)
	goKey := regexp.MustCompile(`\bT\("([a-z0-9.-]+)"|"((?:error|login|usage|site|faults|fleet|dur|time|fmt|unit|nav|live|why|punct)\.[a-z0-9.-]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := templateFS.ReadFile(p)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gofiles, _ := fs.Glob(os.DirFS("."), "*.go")
	for _, f := range gofiles {
		if strings.HasSuffix(f, "_test.go") || f == "words.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			if k := m[1] + m[2]; !strings.HasSuffix(k, ".") { // not a prefix such as "cmd."
				used[k] = true
			}
		}
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys in use: the patterns are wrong", len(used))
	}
	// Keys made from values.
	for _, l := range []level{levelOK, levelWarn, levelOffline, levelFault} {
		used["health."+l.String()] = true
	}
	for _, s := range []api.Severity{api.SeverityWarn, api.SeverityFault} {
		used["severity."+string(s)] = true
	}
	for _, d := range []api.Device{api.DevicePrinter, api.DeviceScanner, api.DeviceWiFi, api.DeviceHost, api.DeviceAgent} {
		used["device."+string(d)] = true
	}
	for _, s := range []api.PrinterState{api.PrinterIdle, api.PrinterProcessing, api.PrinterStopped, api.PrinterUnknown} {
		used["printer."+string(s)] = true
	}
	for _, s := range []api.ScannerState{api.ScannerIdle, api.ScannerProcessing, api.ScannerTesting, api.ScannerStopped, api.ScannerDown, api.ScannerUnknown} {
		used["scanner."+string(s)] = true
	}
	for _, c := range api.Commands() {
		used["cmd."+c], used["cmd."+c+".help"] = true, true
	}
	for _, r := range []store.Role{store.Admin, store.Technician, store.Manager} {
		used["role."+string(r)] = true
	}
	for _, p := range []store.Period{store.Day, store.Week, store.Month} {
		used["usage.period."+string(p)] = true
	}
	for _, s := range []string{"open", "closed", "all"} {
		used["faults.state."+s] = true
	}
	for m := 1; m <= 12; m++ {
		used["month."+strconv.Itoa(m)] = true
	}
	for _, c := range csvColumns {
		used[c.key] = true
	}
	for k := range used {
		if _, ok := french[k]; !ok {
			t.Errorf("%q is used but not in the catalogue", k)
		}
	}
	// Fault codes are data: the catalogue names more than the agent raises.
	for k := range french {
		if !used[k] && !strings.HasPrefix(k, "fault.") {
			t.Errorf("%q is in the catalogue but not used", k)
		}
	}
}

// TestFaultWords checks that the codes the agent raises read as words.
func TestFaultWords(t *testing.T) {
	t.Parallel()
	codes := []string{
		"media-empty", "media-jam", "toner-low", "marker-supply-low", "door-open", "printer-unreachable",
		"scanner-unreachable", "scanner-jam", "scanner-cover-open", "wifi-ap-down", "disk-full", "disk-low",
		"disk-near-full", "outbox-near-full", "clock-unsynced", "under-voltage", "under-voltage-occurred", "cpu-hot",
	}
	for _, l := range []string{"fr", "en"} {
		w := words{lang: l, loc: time.UTC}
		for _, c := range codes {
			if got := w.Fault(c); got == c || got == "" {
				t.Errorf("%s: fault %q has no words", l, c)
			}
		}
		if got := w.Fault("brand-new-code"); got != "brand-new-code" {
			t.Errorf("%s: an unknown code reads %q, want the code", l, got)
		}
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	fr, en := words{lang: "fr", loc: time.UTC}, words{lang: "en", loc: time.UTC}
	for d, want := range map[time.Duration][2]string{
		-time.Hour:                      {"moins d'une minute", "less than a minute"},
		59 * time.Second:                {"moins d'une minute", "less than a minute"},
		time.Minute:                     {"1 min", "1 min"},
		59*time.Minute + 59*time.Second: {"59 min", "59 min"},
		2 * time.Hour:                   {"2 h", "2 h"},
		130 * time.Minute:               {"2 h 10", "2 h 10 min"},
		125 * time.Minute:               {"2 h 05", "2 h 05 min"},
		76 * time.Hour:                  {"3 j 4 h", "3 d 4 h"},
		72 * time.Hour:                  {"3 j", "3 d"},
		10*24*time.Hour + time.Hour:     {"10 j", "10 d"},
	} {
		if got := fr.Dur(d); got != want[0] {
			t.Errorf("fr %v: %q, want %q", d, got, want[0])
		}
		if got := en.Dur(d); got != want[1] {
			t.Errorf("en %v: %q, want %q", d, got, want[1])
		}
	}
}
