// Package peertest finds the real programs and files that Relais's interop
// tests talk to: Debian's ippeveprinter, mosquitto, hostapd, scanimage,
// PostgreSQL, Chromium, and the real device dumps in ../shared/testdata. A
// test that lacks one skips, naming the Debian package to install, unless
// RELAIS_REQUIRE_PEERS=1 is set, as in CI, where it fails instead: no interop
// test is ever skipped silently there.
package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether missing peers fail tests (RELAIS_REQUIRE_PEERS=1).
func Required() bool {
	return os.Getenv("RELAIS_REQUIRE_PEERS") == "1"
}

// Missing skips the test, or fails it when peers are required, saying what
// is missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (RELAIS_REQUIRE_PEERS=1)", msg)
	}
	t.Skip(msg)
}

// Program returns the path of a program on PATH or in the sbin directories
// (where Debian puts hostapd), or calls Missing naming pkg, its Debian
// package.
func Program(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/lib/cups/daemon"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, "%s not found: install the Debian package %s", name, pkg)
	return ""
}

// RepoRoot returns the root of the repository that holds the running test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// Device returns the path of a real device dump, such as
// "Xerox-B235-Printer-Attributes.ipp", in ../shared/testdata/devices beside
// the repository. The dumps are never copied into the repository.
func Device(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "testdata", "devices", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "device dump %s not found: tests expect ../shared/testdata/devices beside the repository", p)
	}
	return p
}
