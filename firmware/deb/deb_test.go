package deb

// What these tests check, and how.
//
// TestVersion and FuzzVersion pin the mapping of git describe to Debian versions, and that
// every version it gives is one dpkg accepts and orders as the commits follow each other
// (dpkg --compare-versions, when dpkg is installed).
//
// TestInstallPurge builds relais-central (or relais-agent) for this machine, packages it, and
// installs it with Debian's dpkg into a throwaway root: dpkg --root=DIR
// --force-script-chrootless runs the maintainer scripts on this machine with DPKG_ROOT=DIR, as
// mmdebstrap's chrootless mode does, so that useradd, groupadd and deb-systemd-helper act on
// DIR's /etc only. It checks the files, their modes, the conffile, the system user and groups,
// the unit enabled through deb-systemd-helper, an upgrade over itself, the removal (conffile
// kept, unit masked) and the purge (state directory, conffile and symlinks gone, user kept),
// and scores the installed unit with systemd-analyze security --offline --root=DIR.
//
// TestLintian runs Debian's lintian on the packages and fails on any error or warning, and on
// an override that no longer matches.
//
// They need dpkg-deb and dpkg (dpkg), useradd (passwd), deb-systemd-helper (init-system-helpers),
// systemd-analyze (systemd) and lintian (lintian), and must run as root (dpkg --root installs
// root-owned files); without them they skip, or fail when RELAIS_REQUIRE_PEERS=1.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

func TestVersion(t *testing.T) {
	cases := []struct {
		describe string
		commits  int
		want     string
	}{
		{"v1.2.0", 0, "1.2.0"},
		{"v1.2.0-dirty", 0, "1.2.0+dirty"},
		{"v1.3.0-rc.1", 0, "1.3.0~rc.1"},
		{"v1.2.0-4-g57e9cda", 0, "1.2.0+git4.57e9cda"},
		{"v1.2.0-4-g57e9cda-dirty", 0, "1.2.0+git4.57e9cda.dirty"},
		{"v1.3.0-rc.1-2-gabcdef0", 0, "1.3.0~rc.1+git2.abcdef0"},
		{"57e9cda", 33, "0~git33.57e9cda"},
		{"57e9cda-dirty", 33, "0~git33.57e9cda+dirty"},
		{"2.0", 0, "2.0"},
	}
	for _, c := range cases {
		got, err := Version(c.describe, c.commits)
		if err != nil || got != c.want {
			t.Errorf("Version(%q, %d) = %q, %v; want %q", c.describe, c.commits, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "devel", "57e9cda", "vnext", "v1.2.0_beta", "release-1", "v1.2.0\n-1"} {
		if v, err := Version(bad, 0); err == nil {
			t.Errorf("Version(%q, 0) = %q, want an error", bad, v)
		}
	}
}

// TestVersionOrder checks with dpkg itself that the versions sort as the commits follow each other.
func TestVersionOrder(t *testing.T) {
	dpkg := peertest.Program(t, "dpkg", "dpkg")
	order := []struct {
		describe string
		commits  int
	}{
		{"57e9cda", 33}, {"0a1b2c3", 34}, {"v0.9.0-rc.1", 0}, {"v0.9.0", 0}, {"v0.9.0-1-gdeadbee", 0},
		{"v0.9.0-12-g0000000", 0}, {"v0.10.0", 0},
	}
	var prev string
	for _, o := range order {
		v, err := Version(o.describe, o.commits)
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if err := exec.Command(dpkg, "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: %v", prev, v, err)
			}
		}
		prev = v
	}
}

func FuzzVersion(f *testing.F) {
	for _, s := range []string{"v1.2.0", "v1.2.0-4-g57e9cda-dirty", "57e9cda", "v1.3.0-rc.1"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, describe string, commits int) {
		v, err := Version(describe, commits)
		if err != nil {
			return
		}
		if err := CheckVersion(v); err != nil {
			t.Fatalf("Version(%q) = %q, which CheckVersion refuses: %v", describe, v, err)
		}
	})
}

func TestClassify(t *testing.T) {
	cases := map[string]string{
		"Apache License\nVersion 2.0, January 2004":                                                       "Apache-2.0",
		"Permission is hereby granted, free of charge, to any person":                                     "Expat",
		"Redistribution and use in source and binary forms ... Neither the name of Google":                "BSD-3-clause",
		"Redistribution and use in source and binary forms, with or without\nmodification, are permitted": "BSD-2-clause",
		"Mozilla Public License Version 2.0":                                                              "MPL-2.0",
		"All rights reserved. No permission.":                                                             "",
	}
	for text, want := range cases {
		if got := classify(text); got != want {
			t.Errorf("classify(%q) = %q, want %q", text, got, want)
		}
	}
}

// --- building and installing ---

// built is a package built once for all the tests of this run.
type built struct {
	path, pkg, arch string
	err             error
}

var (
	buildOnce sync.Map // package name → *sync.Once
	builds    sync.Map // package name → *built
)

// hostArch is the Debian architecture of this machine, for the packages installed here.
func hostArch(t *testing.T) string {
	t.Helper()
	arch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf"}[runtime.GOARCH]
	if !ok {
		t.Skipf("no Debian package is built for GOARCH=%s", runtime.GOARCH)
	}
	return arch
}

// buildPackage builds pkg for this machine's architecture, once per test binary run.
func buildPackage(t *testing.T, pkg string) string {
	t.Helper()
	peertest.Program(t, "dpkg-deb", "dpkg")
	goTool := peertest.Program(t, "go", "golang-go")
	arch := hostArch(t)
	once, _ := buildOnce.LoadOrStore(pkg, new(sync.Once))
	once.(*sync.Once).Do(func() {
		b := &built{pkg: pkg, arch: arch}
		b.path, b.err = buildFor(goTool, peertest.RepoRoot(t), pkg, arch)
		builds.Store(pkg, b)
	})
	v, _ := builds.Load(pkg)
	b := v.(*built)
	if b.err != nil {
		t.Fatalf("building %s: %v", pkg, b.err)
	}
	return b.path
}

// packageDir holds the packages of this test binary run; TestMain removes it.
var packageDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relais-deb-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	packageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildFor(goTool, repo, pkg, arch string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(packageDir, "bin-"+pkg)
	b := &Build{
		Package:    pkg,
		Arch:       arch,
		Version:    "0.9.0+git4.57e9cda",
		Describe:   "v0.9.0-4-g57e9cda",
		Maintainer: "Relais test <test@relais.test>",
		Date:       time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC),
		Repo:       repo,
		Programs:   map[string]string{},
	}
	pkgs := map[string][]string{
		Agent:   {"./agent/cmd/relais-agent", "./firmware/cmd/relais-firstboot"},
		Central: {"./central/cmd/relais-central"},
	}[pkg]
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=v0.9.0-4-g57e9cda", "-o", bin + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	for name := range Programs[pkg] {
		b.Programs[name] = filepath.Join(bin, name)
	}
	out, err := exec.CommandContext(ctx, goTool, "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %v", err)
	}
	b.ModCache = strings.TrimSpace(string(out))
	return b.Write(ctx, packageDir)
}

// root is a throwaway Debian root that dpkg installs into.
type root struct {
	t    *testing.T
	dir  string
	dpkg string
}

// newRoot makes an empty dpkg database and the account files useradd needs.
func newRoot(t *testing.T) *root {
	t.Helper()
	if os.Geteuid() != 0 {
		peertest.Missing(t, "dpkg --root installs root-owned files and runs useradd: run the test as root")
	}
	dpkg := peertest.Program(t, "dpkg", "dpkg")
	peertest.Program(t, "useradd", "passwd")
	peertest.Program(t, "deb-systemd-helper", "init-system-helpers")
	dir := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:20000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
	}
	for name, text := range files {
		mode := fs.FileMode(0o644)
		if strings.Contains(name, "shadow") {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	// useradd --prefix reads the uid ranges of system users from the root's login.defs.
	if defs, err := os.ReadFile("/etc/login.defs"); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "etc/login.defs"), defs, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &root{t: t, dir: dir, dpkg: dpkg}
}

// run runs dpkg on the root; the maintainer scripts run on this machine with DPKG_ROOT set.
// --force-depends: the dependencies (passwd) are this machine's, which runs the scripts.
func (r *root) run(args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 2*time.Minute)
	defer cancel()
	all := append([]string{"--root=" + r.dir, "--force-script-chrootless", "--force-depends", "--force-architecture"}, args...)
	cmd := exec.CommandContext(ctx, r.dpkg, all...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("dpkg %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

func (r *root) path(p string) string { return filepath.Join(r.dir, filepath.FromSlash(p)) }

func (r *root) exists(p string) bool {
	_, err := os.Lstat(r.path(p))
	return err == nil
}

// account finds name in the root's passwd or group file: its fields, or nil.
func (r *root) account(file, name string) []string {
	r.t.Helper()
	f, err := os.Open(r.path("etc/" + file))
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var found []string
	n := 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if fields[0] == name {
			found = fields
			n++
		}
	}
	if n > 1 {
		r.t.Errorf("/etc/%s has %d entries for %s", file, n, name)
	}
	return found
}

func TestInstallPurgeCentral(t *testing.T) {
	testInstallPurge(t, Central, nil)
}

func TestInstallPurgeAgent(t *testing.T) {
	testInstallPurge(t, Agent, func(t *testing.T, r *root) {
		for _, g := range []string{"gpio", "scanner"} {
			grp := r.account("group", g)
			if grp == nil {
				t.Errorf("group %s not created", g)
				continue
			}
			if gid, _ := strconv.Atoi(grp[2]); gid >= 1000 || gid == 0 {
				t.Errorf("group %s: gid %d, want a system group", g, gid)
			}
			if !strings.Contains(","+grp[3]+",", ",relais-agent,") {
				t.Errorf("group %s: members %q, want relais-agent", g, grp[3])
			}
		}
		rules, err := os.ReadFile(r.path("lib/udev/rules.d/60-relais-gpio.rules"))
		if err != nil || !strings.Contains(string(rules), `KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"`) {
			t.Errorf("udev rule: %v\n%s", err, rules)
		}
		if fi, err := os.Stat(r.path("usr/libexec/relais-agent/relais-firstboot")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("relais-firstboot: %v", err)
		}
	})
}

func testInstallPurge(t *testing.T, pkg string, extra func(*testing.T, *root)) {
	deb := buildPackage(t, pkg)
	r := newRoot(t)
	state := "var/lib/" + pkg
	conffile := Conffiles(pkg)[0]

	r.run("--install", deb)

	// Files, modes, owners.
	for _, p := range append(Units(pkg), "/usr/bin/"+pkg, conffile, "/usr/share/doc/"+pkg+"/copyright",
		"/usr/share/doc/"+pkg+"/changelog.gz") {
		fi, err := os.Stat(r.path(p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		want := fs.FileMode(0o644)
		if strings.HasPrefix(p, "/usr/bin/") {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	conffiles, err := os.ReadFile(r.path("var/lib/dpkg/info/" + pkg + ".conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != conffile {
		t.Errorf("%s.conffiles: %q, %v; want %s", pkg, conffiles, err, conffile)
	}
	checkMd5sums(t, r, pkg)

	// The system user and its group.
	user := r.account("passwd", pkg)
	group := r.account("group", pkg)
	switch {
	case user == nil || group == nil:
		t.Fatalf("user %s: %q, group %q: want both created", pkg, user, group)
	case user[3] != group[2]:
		t.Errorf("user %s: primary gid %s, want %s's gid %s", pkg, user[3], pkg, group[2])
	case user[5] != "/"+state || user[6] != "/usr/sbin/nologin":
		t.Errorf("user %s: home %s, shell %s; want /%s, /usr/sbin/nologin", pkg, user[5], user[6], state)
	}
	if uid, _ := strconv.Atoi(user[2]); uid == 0 || uid >= 1000 {
		t.Errorf("user %s: uid %d, want a system uid", pkg, uid)
	}
	if r.exists(state) {
		t.Errorf("/%s exists after install: systemd creates it (StateDirectory=)", state)
	}

	// Enabled through deb-systemd-helper, as dh_installsystemd does.
	unit := filepath.Base(Units(pkg)[0])
	wants := "etc/systemd/system/multi-user.target.wants/" + unit
	if target, err := os.Readlink(r.path(wants)); err != nil || target != "/lib/systemd/system/"+unit {
		t.Errorf("/%s: %q, %v; want a link to /lib/systemd/system/%s", wants, target, err, unit)
	}
	checkSecurity(t, r, unit)
	if extra != nil {
		extra(t, r)
	}

	// Upgrade over itself: the user is not created twice (account checks duplicates), still enabled.
	r.run("--install", deb)
	r.account("passwd", pkg)
	if !r.exists(wants) {
		t.Errorf("/%s gone after reinstalling", wants)
	}

	// Remove: the conffile stays, the unit is masked so that a leftover enablement does not start
	// a missing binary.
	if err := os.MkdirAll(r.path(state), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path(state+"/data"), []byte("state"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.run("--remove", pkg)
	if r.exists("/usr/bin/" + pkg) {
		t.Errorf("/usr/bin/%s left after remove", pkg)
	}
	if !r.exists(conffile) {
		t.Errorf("%s removed with the package: a conffile stays until purge", conffile)
	}
	if target, err := os.Readlink(r.path("etc/systemd/system/" + unit)); err != nil || target != "/dev/null" {
		t.Errorf("after remove, /etc/systemd/system/%s: %q, %v; want a mask (link to /dev/null)", unit, target, err)
	}

	// Purge: conffile, state and every symlink gone; the user stays.
	r.run("--purge", pkg)
	for _, p := range []string{conffile, state, wants, "etc/systemd/system/" + unit} {
		if r.exists(p) {
			t.Errorf("%s left after purge", p)
		}
	}
	if r.account("passwd", pkg) == nil {
		t.Errorf("user %s removed on purge: Debian policy keeps system users", pkg)
	}
	var left []string
	filepath.WalkDir(r.path("var/lib/systemd/deb-systemd-helper-enabled"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("deb-systemd-helper state left after purge: %q", left)
	}
}

// checkMd5sums compares the package's md5sums with the installed files (conffiles excluded).
func checkMd5sums(t *testing.T, r *root, pkg string) {
	t.Helper()
	sums, err := os.ReadFile(r.path("var/lib/dpkg/info/" + pkg + ".md5sums"))
	if err != nil {
		t.Fatalf("md5sums: %v", err)
	}
	cmd := exec.Command("md5sum", "--check", "--quiet", "--strict")
	cmd.Dir = r.dir
	cmd.Stdin = strings.NewReader(string(sums))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("md5sum --check on the installed files: %v\n%s", err, out)
	}
	for _, c := range Conffiles(pkg) {
		if strings.Contains(string(sums), strings.TrimPrefix(c, "/")) {
			t.Errorf("md5sums lists the conffile %s", c)
		}
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+)`)

// checkSecurity scores the installed unit, in the root where its ExecStart= binary is.
func checkSecurity(t *testing.T, r *root, unit string) {
	t.Helper()
	analyze := peertest.Program(t, "systemd-analyze", "systemd")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", "--root="+r.dir, unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --offline=true --root=%s %s: %v\n%s", r.dir, unit, err, out)
		return
	}
	m := exposure.FindStringSubmatch(string(out))
	if m == nil || m[1] != unit {
		t.Errorf("systemd-analyze security: no overall exposure for %s in:\n%s", unit, out)
		return
	}
	score, _ := strconv.ParseFloat(m[2], 64)
	t.Logf("systemd-analyze security --offline=true, installed %s: overall exposure %.1f", unit, score)
	if score > 2.0 {
		t.Errorf("installed %s: overall exposure %.1f, want at most 2.0", unit, score)
	}
}

func TestLintian(t *testing.T) {
	lintian := peertest.Program(t, "lintian", "lintian")
	debs := []string{buildPackage(t, Central), buildPackage(t, Agent)}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	args := append([]string{"--fail-on", "error,warning", "--pedantic", "--display-info", "--no-tag-display-limit"}, debs...)
	cmd := exec.CommandContext(ctx, lintian, args...)
	out, err := cmd.CombinedOutput()
	var problems []string
	for line := range strings.Lines(string(out)) {
		switch {
		case strings.HasPrefix(line, "I: "):
			t.Logf("lintian: %s", strings.TrimSpace(line))
		case strings.HasPrefix(line, "E: "), strings.HasPrefix(line, "W: "), strings.HasPrefix(line, "P: "):
			problems = append(problems, strings.TrimSpace(line))
		}
	}
	for _, p := range problems {
		t.Errorf("lintian: %s", p)
	}
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || len(problems) == 0) {
		t.Errorf("lintian: %v\n%s", err, out)
	}
}
