package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/sim/fleet/fleettest"
	"github.com/relais-fr/relais/central/peertest"
)

// fleetBroker starts a mosquitto that lets the test's central fall behind
// without dropping messages, and a central that acks.
func fleetBroker(t *testing.T) (string, *fleettest.Central) {
	t.Helper()
	url := "tcp://" + peertest.Mosquitto(t, "allow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay true\n")
	return url, fleettest.Start(t, url)
}

func TestFleetHelpAndBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"fleet", "--help"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Errorf("--help: exit %d, %q", code, errb.String())
	}
	for _, want := range []string{"usage: relais-sim fleet", "-agents N", "-rate R", "-broker URL", "-credentials FILE",
		"-offline-share F", "-ramp D", "-drain D", "(default 1m0s)", "site agent password"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
	for _, hidden := range []string{"-worker", "-first"} {
		if strings.Contains(out.String(), hidden) {
			t.Errorf("--help shows the internal flag %s", hidden)
		}
	}
	dir := t.TempDir()
	badCreds := filepath.Join(dir, "creds")
	if err := os.WriteFile(badCreds, []byte("sim-0001 pi-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []string{"--agents", "2", "--broker", "tcp://127.0.0.1:1883"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--broker", "tcp://127.0.0.1:1883"}, 2, "--agents N is required"},
		{[]string{"--agents", "200000", "--broker", "tcp://127.0.0.1:1883"}, 2, "at most 100000"},
		{[]string{"--agents", "2"}, 2, "--broker URL is required"},
		{append(ok, "--rate", "-1"), 2, "--rate"},
		{append(ok, "--rate", "NaN"), 2, "--rate"},
		{[]string{"--agents", "2", "--broker", "http://127.0.0.1:1883"}, 2, "want tcp://"},
		{[]string{"--agents", "2", "--broker", "tcp://127.0.0.1"}, 2, "HOST:PORT"},
		{append(ok, "--offline-share", "0.95"), 2, "--offline-share"},
		{append(ok, "--fault-share", "2"), 2, "--fault-share"},
		{append(ok, "--ramp", "soon"), 2, "--ramp"},
		{append(ok, "--duration", "-1s"), 2, "--duration"},
		{append(ok, "--day", "10ms"), 2, "--day"},
		{append(ok, "--procs", "100"), 2, "--procs"},
		{append(ok, "--per-site", "0"), 2, "--per-site"},
		{append(ok, "--site-prefix", "Mairie"), 2, "--site-prefix"},
		{append(ok, "--credentials", filepath.Join(dir, "none")), 2, "no such file"},
		{append(ok, "--credentials", badCreds), 2, "line 1: 2 fields"},
		{append(ok, "extra"), 2, "unexpected argument"},
		{append(ok, "--nope"), 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		if code := Main(append([]string{"fleet"}, tc.args...), &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

var ackedLine = regexp.MustCompile(`(?m)^all (\d+) events acked$`)

// acked returns N of "all N events acked" in out, or fails the test.
func acked(t *testing.T, out string) int {
	t.Helper()
	m := ackedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no \"all N events acked\" line in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestFleetRunsForDuration runs the command for a short --duration against
// a real mosquitto and a central that acks: it prints its progress, drains,
// says that every event was acked and exits 0; run again on the same
// --state, the agents go on from their outboxes' last seq.
func TestFleetRunsForDuration(t *testing.T) {
	url, ce := fleetBroker(t)
	state := t.TempDir()
	args := []string{"fleet", "--agents", "6", "--per-site", "2", "--site-prefix", "cli", "--rate", "100",
		"--broker", url, "--duration", "1s", "--drain", "30s", "--ramp", "100ms", "--state", state}
	total := 0
	for run := 1; run <= 2; run++ {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code != 0 {
			t.Fatalf("run %d: exit %d\n%s\n%s", run, code, out.String(), errb.String())
		}
		t.Logf("run %d:\n%s", run, out.String())
		for _, want := range []string{"started 6 agents (cli-0001/pi-1 to cli-0003/pi-2)", "stopping:", "summary: 6 agents"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %d: no %q in the output", run, want)
			}
		}
		total += acked(t, out.String())
		if got := ce.Distinct(); got != total {
			t.Errorf("after run %d: central has %d distinct events; the runs recorded %d", run, got, total)
		}
	}
	high := 0
	for _, site := range []string{"cli-0001", "cli-0002", "cli-0003"} {
		for _, agent := range []string{"pi-1", "pi-2"} {
			high += int(ce.Agent(site, agent).High)
		}
	}
	if high != total {
		t.Errorf("central has seqs contiguous up to a total of %d; want %d: the second run did not go on from the first", high, total)
	}
	if bad := ce.Bad(); len(bad) > 0 {
		t.Errorf("central refused: %q", bad)
	}
}

// TestFleetSharedOutStopsOnSIGTERM runs the command as a process that
// shares 4 agents out among 2 worker processes (this test binary again),
// and stops it with SIGTERM: the workers drain, and the summary adds up.
func TestFleetSharedOutStopsOnSIGTERM(t *testing.T) {
	url, ce := fleetBroker(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "fleet", "--agents", "4", "--procs", "2", "--rate", "100", "--broker", url,
		"--drain", "30s", "--ramp", "0s")
	cmd.Env = append(os.Environ(), "RELAIS_SIM_AS_MAIN=1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	read := func(until string) {
		t.Helper()
		deadline := time.After(fleettest.Limit)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q:\n%s\n%s", until, out.String(), errb.String())
				}
				out.WriteString(l + "\n")
				if strings.Contains(l, until) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q after %v:\n%s", until, fleettest.Limit, out.String())
			}
		}
	}
	read("in 2 processes")
	if !ce.WaitFor(fleettest.Limit, func() bool { return ce.Distinct() >= 50 }) {
		t.Fatalf("central has %d events; want 50", ce.Distinct())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	read("events acked")
	for range lines {
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleettest.Limit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s\n%s", err, out.String(), errb.String())
		}
	case <-ctx.Done():
		t.Fatal("relais-sim fleet did not exit after SIGTERM")
	}
	t.Logf("output:\n%s", out.String())
	if n := acked(t, out.String()); n != ce.Distinct() || n < 50 {
		t.Errorf("%d events acked; central has %d distinct", n, ce.Distinct())
	}
	for i := 1; i <= 4; i++ {
		site := fmt.Sprintf("sim-%04d", i)
		if ag := ce.Agent(site, "pi-1"); ag.Status == nil || ag.Status.Online {
			t.Errorf("%s: last status %+v; want offline", site, ag.Status)
		}
	}
}
