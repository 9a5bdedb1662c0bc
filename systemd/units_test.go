package systemd

// What these tests check, and what they cannot.
//
// TestUnitDirectives reads the unit files and needs nothing installed: it pins the directives the
// binaries and the packaging rely on (Type=notify, watchdog, user, directories, devices,
// capabilities).
//
// TestUnitVerify runs `systemd-analyze verify` on a copy of each unit in a temporary directory.
// The copy is byte for byte the unit, except that an ExecStart= binary that is not installed on
// this machine is replaced with the test binary itself: verify requires the path to be executable,
// and that is all it looks at. verify reports unknown directives, values that do not parse,
// commands that cannot be executed and dependencies that cannot be loaded; the test fails on any
// line of its output that names the unit, whatever its level, and on a non-zero exit status.
// verify does not resolve User=, Group= or SupplementaryGroups= (the Debian package creates them;
// a missing group only shows at start as status 216/GROUP), nor the device classes of DeviceAllow=
// (looked up in /proc/devices at start), nor man pages (--man=no: the units link no man page), and
// it runs neither generators nor the service: whether the sandbox lets the binaries do their job
// is checked on a device, not here. The output is forced to the console at info level so that a
// test run from a service (stderr connected to the journal) or with SYSTEMD_LOG_LEVEL=debug
// neither hides nor adds messages; TestVerifyReportsBadDirectives makes sure a broken unit is
// still caught.
//
// TestUnitSecurity runs `systemd-analyze security --offline=true` on the same copy and requires an
// overall exposure of at most 2.0. The score depends on the systemd version (252 on Debian
// bookworm); offline mode needs systemd 250 or later. TestSecurityScoresWeakUnitHigh makes sure
// the parsing and the threshold still tell a bare unit from a hardened one.
//
// Without systemd-analyze the last four tests are skipped, or fail when RELAIS_REQUIRE_PEERS=1.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	missingAnalyze = "systemd-analyze not found: install the Debian package systemd"
	// maxExposure is the highest overall exposure accepted (systemd-analyze security, 0 to 10).
	maxExposure = 2.0
	// minSystemd is the first version with `security --offline` and `verify --recursive-errors`.
	minSystemd = 250
)

// unitSpec describes one unit file of this directory and what it must contain.
type unitSpec struct {
	file      string // unit file name, also the unit name
	binary    string // program of ExecStart=
	execStart string // whole ExecStart= value
	user      string // User=, also the name of the state directory
	check     func(t *testing.T, u *unitFile)
}

var specs = []unitSpec{
	{
		file:      "relais-agent.service",
		binary:    "/usr/bin/relais-agent",
		execStart: "/usr/bin/relais-agent run --config /etc/relais/agent.toml",
		user:      "relais-agent",
		check:     checkAgent,
	},
	{
		file:      "relais-central.service",
		binary:    "/usr/bin/relais-central",
		execStart: "/usr/bin/relais-central run --config /etc/relais/central.toml",
		user:      "relais-central",
		check:     checkCentral,
	},
}

func TestUnitDirectives(t *testing.T) {
	for _, spec := range specs {
		t.Run(spec.file, func(t *testing.T) {
			text := readUnit(t, spec.file)
			checkHeader(t, text)
			u := parseUnit(text)
			checkCommon(t, spec, u)
			spec.check(t, u)
		})
	}
}

func TestUnitVerify(t *testing.T) {
	analyze := analyzer(t)
	for _, spec := range specs {
		t.Run(spec.file, func(t *testing.T) {
			path := unitCopy(t, spec, nil)
			out, err := verify(t, analyze, path)
			mine, others := splitByUnit(out, spec.file)
			for _, line := range others {
				t.Logf("verify, about another unit (ignored): %s", line)
			}
			for _, line := range mine {
				t.Errorf("verify: %s", line)
			}
			if err != nil {
				t.Errorf("systemd-analyze verify %s: %v\n%s", spec.file, err, out)
			}
		})
	}
}

func TestUnitSecurity(t *testing.T) {
	analyze := analyzer(t)
	for _, spec := range specs {
		t.Run(spec.file, func(t *testing.T) {
			path := unitCopy(t, spec, nil)
			score, out := security(t, analyze, path, spec.file)
			t.Logf("systemd-analyze security --offline=true %s: overall exposure %.1f (max %.1f)",
				spec.file, score, maxExposure)
			if score > maxExposure {
				t.Errorf("%s: overall exposure %.1f, want at most %.1f; failed checks:\n%s",
					spec.file, score, maxExposure, failedChecks(out))
			}
		})
	}
}

// TestVerifyReportsBadDirectives makes sure TestUnitVerify would notice a broken unit: verify
// exits 0 on unknown keys, so only its output tells.
func TestVerifyReportsBadDirectives(t *testing.T) {
	analyze := analyzer(t)
	spec := specs[0]
	path := unitCopy(t, spec, func(text string) string {
		return strings.Replace(text, "\n[Service]\n",
			"\n[Service]\nRelaisNoSuchDirective=yes\nProtectSystem=sometimes\n", 1)
	})
	out, _ := verify(t, analyze, path)
	mine, _ := splitByUnit(out, spec.file)
	joined := strings.Join(mine, "\n")
	for _, want := range []string{"RelaisNoSuchDirective", "sometimes"} {
		if !strings.Contains(joined, want) {
			t.Errorf("verify output names no problem with %q; lines about the unit:\n%s\nwhole output:\n%s",
				want, joined, out)
		}
	}
}

// TestSecurityScoresWeakUnitHigh makes sure the score is parsed and the threshold means something.
func TestSecurityScoresWeakUnitHigh(t *testing.T) {
	analyze := analyzer(t)
	exe := testExecutable(t)
	path := filepath.Join(t.TempDir(), "relais-weak.service")
	text := "[Service]\nExecStart=" + execPath(exe) + " run\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	score, out := security(t, analyze, path, "relais-weak.service")
	t.Logf("bare unit: overall exposure %.1f", score)
	if score <= maxExposure {
		t.Errorf("a unit with no hardening scores %.1f, not above %.1f: the check is meaningless\n%s",
			score, maxExposure, out)
	}
}

// --- directives ---

func checkHeader(t *testing.T, text string) {
	t.Helper()
	n := 0
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(line, "#") {
			break
		}
		n++
	}
	if n < 2 || n > 4 {
		t.Errorf("the unit starts with %d comment lines, want a 2 to 4 line header saying what it is and why its exceptions", n)
	}
}

func checkCommon(t *testing.T, spec unitSpec, u *unitFile) {
	t.Helper()
	want := map[string]string{
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"Restart":                 "on-failure",
		"ExecStart":               spec.execStart,
		"User":                    spec.user,
		"Group":                   spec.user,
		"StateDirectoryMode":      "0750",
		"ConfigurationDirectory":  "relais",
		"UMask":                   "0077",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"RestrictNamespaces":      "yes",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"SystemCallArchitectures": "native",
	}
	for key, value := range want {
		expectValue(t, u, key, value)
	}
	if got := u.list("Service", "ExecStart"); len(got) != 1 {
		t.Errorf("[Service] has %d ExecStart= lines, want 1", len(got))
	}
	if v, ok := u.value("Service", "DynamicUser"); ok && v != "no" {
		t.Errorf("[Service] DynamicUser=%s: the unit runs as the static user %s", v, spec.user)
	}
	if !slices.Contains(u.words("Service", "StateDirectory"), spec.user) {
		t.Errorf("[Service] StateDirectory= %q does not contain %s", u.words("Service", "StateDirectory"), spec.user)
	}
	for _, key := range []string{"WatchdogSec", "TimeoutStopSec"} {
		v, ok := u.value("Service", key)
		if !ok {
			t.Errorf("[Service] %s= is missing", key)
			continue
		}
		d, err := parseTimespan(v)
		if err != nil || d <= 0 {
			t.Errorf("[Service] %s=%s: want a positive time span (err %v)", key, v, err)
		}
	}
	filter := u.list("Service", "SystemCallFilter")
	if len(filter) == 0 || filter[0] != "@system-service" {
		t.Errorf("[Service] SystemCallFilter= %q: want an allow list starting with @system-service", filter)
	}
	if !slices.Contains(filter, "~@privileged @resources") {
		t.Errorf("[Service] SystemCallFilter= %q: want ~@privileged @resources", filter)
	}
}

func checkAgent(t *testing.T, u *unitFile) {
	t.Helper()
	expectValue(t, u, "DevicePolicy", "closed")
	expectValue(t, u, "CapabilityBoundingSet", "CAP_NET_BIND_SERVICE")
	expectValue(t, u, "AmbientCapabilities", "CAP_NET_BIND_SERVICE")
	devices := u.list("Service", "DeviceAllow")
	for _, want := range []string{"char-gpiochip rw", "char-usb_device rw"} {
		if !slices.Contains(devices, want) {
			t.Errorf("[Service] DeviceAllow= %q does not contain %q", devices, want)
		}
	}
	if !slices.Contains(u.words("Service", "SupplementaryGroups"), "gpio") {
		t.Errorf("[Service] SupplementaryGroups= %q does not contain gpio (owner of /dev/gpiochip*)",
			u.words("Service", "SupplementaryGroups"))
	}
	if !slices.Contains(u.words("Service", "RuntimeDirectory"), "relais-agent") {
		t.Errorf("[Service] RuntimeDirectory= %q does not contain relais-agent (control and hostapd sockets)",
			u.words("Service", "RuntimeDirectory"))
	}
	families := u.words("Service", "RestrictAddressFamilies")
	slices.Sort(families)
	if want := []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"}; !slices.Equal(families, want) {
		t.Errorf("[Service] RestrictAddressFamilies= %q, want %q", families, want)
	}
}

func checkCentral(t *testing.T, u *unitFile) {
	t.Helper()
	expectValue(t, u, "PrivateDevices", "yes")
	if v, ok := u.value("Service", "CapabilityBoundingSet"); !ok || v != "" {
		t.Errorf("[Service] CapabilityBoundingSet=%q (set: %v), want an empty set: central needs no capability", v, ok)
	}
	if v, _ := u.value("Service", "AmbientCapabilities"); v != "" {
		t.Errorf("[Service] AmbientCapabilities=%s, want none", v)
	}
	families := u.words("Service", "RestrictAddressFamilies")
	slices.Sort(families)
	if want := []string{"AF_INET", "AF_INET6", "AF_UNIX"}; !slices.Equal(families, want) {
		t.Errorf("[Service] RestrictAddressFamilies= %q, want %q", families, want)
	}
}

func expectValue(t *testing.T, u *unitFile, key, want string) {
	t.Helper()
	got, ok := u.value("Service", key)
	switch {
	case !ok:
		t.Errorf("[Service] %s= is missing, want %s=%s", key, key, want)
	case got != want:
		t.Errorf("[Service] %s=%s, want %s=%s", key, got, key, want)
	}
}

// unitFile is a parsed unit: section, then key, then the assignments in order.
type unitFile struct {
	sections map[string]map[string][]string
}

// parseUnit reads the subset of the unit file syntax used here: sections, key=value lines,
// comments and backslash continuations.
func parseUnit(text string) *unitFile {
	u := &unitFile{sections: map[string]map[string][]string{}}
	section := ""
	pending := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u.sections[section] == nil {
				u.sections[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			continue
		}
		key = strings.TrimSpace(key)
		u.sections[section][key] = append(u.sections[section][key], strings.TrimSpace(value))
	}
	return u
}

// value is the last assignment of key, which is the one systemd keeps for single-valued settings.
func (u *unitFile) value(section, key string) (string, bool) {
	values := u.sections[section][key]
	if len(values) == 0 {
		return "", false
	}
	return values[len(values)-1], true
}

// list is the assignments of a list-valued key since the last empty one, which resets the list.
func (u *unitFile) list(section, key string) []string {
	var out []string
	for _, v := range u.sections[section][key] {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Join(strings.Fields(v), " "))
	}
	return out
}

// words is list split on white space, for settings such as StateDirectory=a b.
func (u *unitFile) words(section, key string) []string {
	var out []string
	for _, v := range u.list(section, key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

var timespanUnits = map[string]time.Duration{
	"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"us": time.Microsecond, "usec": time.Microsecond, "ms": time.Millisecond, "msec": time.Millisecond,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

var timespanPart = regexp.MustCompile(`^\s*([0-9]+)\s*([a-z]*)`)

// parseTimespan parses the systemd time spans these units use, such as 30s, 90 or 1min 30s.
func parseTimespan(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return 0, errors.New("empty time span")
	}
	var total time.Duration
	for rest := s; strings.TrimSpace(rest) != ""; {
		m := timespanPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("time span %q: cannot parse %q", s, rest)
		}
		unit, ok := timespanUnits[m[2]]
		if !ok {
			return 0, fmt.Errorf("time span %q: unknown unit %q", s, m[2])
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("time span %q: %w", s, err)
		}
		total += time.Duration(n) * unit
		rest = rest[len(m[0]):]
	}
	return total, nil
}

// --- systemd-analyze ---

type analyzeTool struct {
	path    string
	version int
	problem string // why the tests cannot run, empty when they can
}

var findAnalyzer = sync.OnceValue(func() analyzeTool {
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		for _, p := range []string{"/usr/bin/systemd-analyze", "/bin/systemd-analyze"} {
			if isExecutable(p) {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return analyzeTool{problem: missingAnalyze}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return analyzeTool{problem: fmt.Sprintf("%s --version: %v", path, err)}
	}
	// "systemd 252 (252.39-1~deb12u2)"
	fields := strings.Fields(string(out))
	if len(fields) < 2 || fields[0] != "systemd" {
		return analyzeTool{problem: fmt.Sprintf("%s --version: unexpected output %q", path, out)}
	}
	version, err := strconv.Atoi(fields[1])
	if err != nil {
		return analyzeTool{problem: fmt.Sprintf("%s --version: unexpected version %q", path, fields[1])}
	}
	if version < minSystemd {
		return analyzeTool{problem: fmt.Sprintf("systemd-analyze of systemd %d is too old: security --offline needs systemd %d or later", version, minSystemd)}
	}
	return analyzeTool{path: path, version: version}
})

// analyzer returns the path of systemd-analyze, or skips the test (fails it when
// RELAIS_REQUIRE_PEERS=1) when it cannot be used.
func analyzer(t *testing.T) string {
	t.Helper()
	tool := findAnalyzer()
	if tool.problem != "" {
		if os.Getenv("RELAIS_REQUIRE_PEERS") == "1" {
			t.Fatal(tool.problem)
		}
		t.Skip(tool.problem)
	}
	return tool.path
}

// runAnalyze runs systemd-analyze with its messages on the console, at info level, uncoloured.
func runAnalyze(t *testing.T, analyze string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, args...)
	cmd.Env = append(os.Environ(),
		"SYSTEMD_LOG_LEVEL=info",
		"SYSTEMD_LOG_TARGET=console",
		"SYSTEMD_LOG_COLOR=0",
		"SYSTEMD_COLORS=0",
		"SYSTEMD_PAGER=",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func verify(t *testing.T, analyze, path string) (string, error) {
	t.Helper()
	return runAnalyze(t, analyze, "verify", "--man=no", "--generators=no", "--recursive-errors=yes", path)
}

var overallExposure = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9]+(?:\.[0-9]+)?)`)

// security returns the overall exposure systemd-analyze gives the unit file at path, and its output.
func security(t *testing.T, analyze, path, name string) (float64, string) {
	t.Helper()
	out, err := runAnalyze(t, analyze, "security", "--offline=true", "--no-pager", path)
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=true %s: %v\n%s", path, err, out)
	}
	m := overallExposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: no overall exposure in its output:\n%s", path, out)
	}
	if m[1] != name {
		t.Fatalf("systemd-analyze security %s: exposure given for %s, want %s", path, m[1], name)
	}
	score, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatalf("systemd-analyze security %s: exposure %q: %v", path, m[2], err)
	}
	return score, out
}

// failedChecks keeps the rows of the security table that add to the exposure.
func failedChecks(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "✗") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// splitByUnit separates the output lines that name the unit from those about other units (the
// dependencies verify loads from this machine).
func splitByUnit(out, name string) (mine, others []string) {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.Contains(line, name):
			mine = append(mine, line)
		default:
			others = append(others, line)
		}
	}
	return mine, others
}

// --- unit copies ---

func readUnit(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unitCopy writes the unit to a temporary directory under its own name, with its ExecStart=
// binary replaced with this test binary when it is not installed, then applies edit if any.
func unitCopy(t *testing.T, spec unitSpec, edit func(string) string) string {
	t.Helper()
	text := readUnit(t, spec.file)
	if !isExecutable(spec.binary) {
		old := "\nExecStart=" + spec.binary + " "
		if n := strings.Count(text, old); n != 1 {
			t.Fatalf("%s: %d lines start with %q, want 1", spec.file, n, strings.TrimSpace(old))
		}
		text = strings.Replace(text, old, "\nExecStart="+execPath(testExecutable(t))+" ", 1)
	}
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(t.TempDir(), spec.file)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func testExecutable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary to stand for the service binary: %v", err)
	}
	return exe
}

// execPath writes a program path for ExecStart=, quoted when needed and with % escaped.
func execPath(p string) string {
	p = strings.ReplaceAll(p, "%", "%%")
	if !strings.ContainsAny(p, " \t\"'\\;") {
		return p
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(p) + `"`
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
