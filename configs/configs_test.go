package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

func TestExamplesLoad(t *testing.T) {
	a, err := LoadAgent("agent.example.toml", Overrides{Env: noEnv})
	if err != nil {
		t.Fatalf("agent.example.toml: %v", err)
	}
	if a.Site.ID != "mairie-exemple" || a.Printer.URI != "ipp://192.0.2.10/ipp/print" {
		t.Errorf("agent example decoded as %+v", a.Site)
	}
	c, err := LoadCentral("central.example.toml", Overrides{Env: noEnv})
	if err != nil {
		t.Fatalf("central.example.toml: %v", err)
	}
	if !reflect.DeepEqual(*c, DefaultCentral()) {
		t.Errorf("central example differs from the defaults:\n got %+v\nwant %+v", *c, DefaultCentral())
	}
}

// TestExamplesDocumentEveryKey keeps the example files complete: every key
// of the configuration appears in its section, set or commented out, under
// a comment.
func TestExamplesDocumentEveryKey(t *testing.T) {
	for _, tc := range []struct {
		file string
		cfg  any
	}{
		{"agent.example.toml", &Agent{}},
		{"central.example.toml", &Central{}},
	} {
		data, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for _, key := range keysOf(reflect.TypeOf(tc.cfg).Elem(), "") {
			section, name, _ := strings.Cut(key, ".")
			re := regexp.MustCompile(`^#?` + regexp.QuoteMeta(name) + ` = `)
			table, found := "", false
			for i, l := range lines {
				if strings.HasPrefix(l, "[") {
					table = strings.Trim(l, "[]")
				}
				if table == section && re.MatchString(l) {
					found = true
					if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
						t.Errorf("%s:%d: %s has no comment above it", tc.file, i+1, key)
					}
				}
			}
			if !found {
				t.Errorf("%s does not document %s", tc.file, key)
			}
		}
	}
}

func TestExamplesMatchEmbedded(t *testing.T) {
	for file, embedded := range map[string]string{"agent.example.toml": AgentExample, "central.example.toml": CentralExample} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != embedded {
			t.Errorf("%s differs from the embedded copy", file)
		}
	}
}

const minimalAgent = `[site]
id = "ccas-nord"
agent = "pi-1"

[panel]
simulate = true
`

func TestUnknownKeyHasLine(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent+`
[printer]
urii = "ipp://192.0.2.1/ipp/print"
`)
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	want := `agent.toml:9: printer.urii: unknown key; known keys in [printer]: uri, hold, hold_expiry, quota_pages_per_day`
	if err == nil || err.Error() != want {
		t.Fatalf("got error %v\nwant %s", err, want)
	}
}

func TestUnknownSectionReportedOnce(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent+`
[printr]
uri = "x"
hold = true
`)
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	if e := errs[0]; e.Source != "agent.toml:8" || e.Key != "printr" || !strings.Contains(e.Msg, "[printer]") {
		t.Errorf("got %q", e)
	}
}

func TestWrongTypeHasLine(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent+`
[printer]
hold = "yes"
`)
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	var e *Error
	if !errors.As(err, &e) || e.Source != "agent.toml:9" || e.Key != "printer.hold" {
		t.Fatalf("got %#v", err)
	}
}

func TestBadDurationHasLine(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent+`
[scans]
retention = "quinze minutes"
`)
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	var e *Error
	if !errors.As(err, &e) || e.Source != "agent.toml:9" || e.Key != "scans.retention" {
		t.Fatalf("got %#v", err)
	}
}

func TestInvalidValuesListEveryProblem(t *testing.T) {
	p := writeFile(t, "agent.toml", `[site]
id = "Mairie"
agent = "pi-1"

[scanner]
driver = "twain"

[scans]
retention = "30s"
`)
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	got := map[string]string{}
	for _, e := range errs {
		got[e.Key] = e.Source
	}
	want := map[string]string{"site.id": "agent.toml:2", "scanner.driver": "agent.toml:6", "scans.retention": "agent.toml:9"}
	for k, src := range want {
		if got[k] != src {
			t.Errorf("%s reported at %q, want %q (all: %v)", k, got[k], src, err)
		}
	}
	if !strings.Contains(err.Error(), "want escl, sane or none") {
		t.Errorf("error does not say what would be accepted: %v", err)
	}
}

func TestMissingRequiredKeyNamed(t *testing.T) {
	p := writeFile(t, "agent.toml", "[panel]\nsimulate = true\n")
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "site.id: \"\" is not an id") {
		t.Fatalf("got %v", err)
	}
}

func TestOverrides(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent)
	env := map[string]string{
		"RELAIS_PRINTER_URI":     "ipp://192.0.2.5/ipp/print",
		"RELAIS_SCANS_RETENTION": "5m",
		"RELAIS_WEB_ALLOW":       "192.0.2.0/24, 198.51.100.0/24",
		"RELAIS_PRINTER_HOLD":    "true",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	a, err := LoadAgent(p, Overrides{Env: lookup, Sets: []string{"printer.hold=false", "ipp.listen=127.0.0.1:8631"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Printer.URI != "ipp://192.0.2.5/ipp/print" || a.Scans.Retention != 5*time.Minute ||
		!reflect.DeepEqual(a.Web.Allow, []string{"192.0.2.0/24", "198.51.100.0/24"}) ||
		a.Printer.Hold || a.IPP.Listen != "127.0.0.1:8631" {
		t.Errorf("overrides not applied: %+v", a)
	}
}

func TestBadOverrideNamed(t *testing.T) {
	p := writeFile(t, "agent.toml", minimalAgent)
	lookup := func(k string) (string, bool) {
		if k == "RELAIS_PRINTER_HOLD" {
			return "peut-être", true
		}
		return "", false
	}
	_, err := LoadAgent(p, Overrides{Env: lookup})
	if err == nil || !strings.Contains(err.Error(), "RELAIS_PRINTER_HOLD: printer.hold: \"peut-être\" is not a boolean") {
		t.Errorf("got %v", err)
	}
	_, err = LoadAgent(p, Overrides{Env: noEnv, Sets: []string{"printer.huld=true"}})
	if err == nil || !strings.Contains(err.Error(), "--set: printer.huld: unknown key") {
		t.Errorf("got %v", err)
	}
	// A value set outside the file is reported with its origin when invalid.
	_, err = LoadAgent(p, Overrides{Env: noEnv, Sets: []string{"ipp.listen=631"}})
	if err == nil || !strings.Contains(err.Error(), "--set ipp.listen: ipp.listen:") {
		t.Errorf("got %v", err)
	}
}

func TestCentralDefaultsWithoutFile(t *testing.T) {
	c, err := LoadCentral(filepath.Join(t.TempDir(), "absent.toml"), Overrides{Env: noEnv})
	if err == nil {
		t.Fatalf("a missing file named explicitly must fail, got %+v", c)
	}
	var (
		dir  = t.TempDir()
		path = filepath.Join(dir, "central.toml")
	)
	if err := os.WriteFile(path, []byte("[broker]\nembedded = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCentral(path, Overrides{Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "central.toml:2: broker.embedded") {
		t.Errorf("got %v", err)
	}
}

func TestTooLargeFile(t *testing.T) {
	p := writeFile(t, "agent.toml", strings.Repeat("# padding\n", MaxFileBytes/10+1))
	_, err := LoadAgent(p, Overrides{Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v", err)
	}
}

func FuzzLoadAgent(f *testing.F) {
	f.Add(AgentExample)
	f.Add(minimalAgent)
	f.Add("[site]\nid = 1\n[[panel]]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		p := filepath.Join(t.TempDir(), "agent.toml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := LoadAgent(p, Overrides{Env: noEnv})
		if err == nil && a.validate() != nil {
			t.Fatalf("accepted an invalid configuration: %v", a.validate())
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func TestSettings(t *testing.T) {
	a, err := LoadAgent("agent.example.toml", Overrides{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range a.Settings() {
		got[s.Key] = s.Value
	}
	want := map[string]string{
		"site.id":           `"mairie-exemple"`,
		"printer.hold":      "false",
		"scans.retention":   "15m0s",
		"ipp.max_job_bytes": "67108864",
		"web.allow":         "[127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, fe80::/10]",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if len(got) != len(keysOf(reflect.TypeOf(a).Elem(), "")) {
		t.Errorf("%d settings for %d keys", len(got), len(keysOf(reflect.TypeOf(a).Elem(), "")))
	}
}
