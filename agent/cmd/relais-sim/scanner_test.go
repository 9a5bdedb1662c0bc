package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/central/peertest"
)

func TestScannerHelpAndBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"scanner", "--help"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Errorf("--help: exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"-capabilities FILE.xml", "-control ADDR", "-adf N", "-listen ADDR", "jam [on|off|N]", "busy [on|off]", "curl -d"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--control", "0.0.0.0:0"}, 1, "not a loopback address"},
		{[]string{"--control", "192.0.2.1:8634"}, 1, "not a loopback address"},
		{[]string{"--capabilities", "/nonexistent.xml"}, 1, "--capabilities"},
		{[]string{"--adf", "-1"}, 1, "feeder"},
		{[]string{"--listen", "127.0.0.1:0", "extra"}, 2, "unexpected argument"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // should it start, it stops at once
		if code := runScanner(ctx, tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

var urlLine = regexp.MustCompile(`url=(http://\S+)`)

// scannerAddresses reads the simulator's log until it has named its eSCL
// root and control address, and keeps draining it afterwards.
func scannerAddresses(t *testing.T, log io.Reader) (url, control string) {
	t.Helper()
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(log)
		var got [2]string
		sent := false
		for sc.Scan() {
			if m := urlLine.FindStringSubmatch(sc.Text()); m != nil {
				got[0] = m[1]
			}
			if m := controlLine.FindStringSubmatch(sc.Text()); m != nil {
				got[1] = m[1]
			}
			if !sent && got[0] != "" && got[1] != "" {
				found <- got
				sent = true
			}
		}
	}()
	select {
	case got := <-found:
		return got[0], got[1]
	case <-time.After(10 * time.Second):
		t.Fatal("relais-sim scanner did not log its addresses")
		return "", ""
	}
}

func TestScannerReplaysAndTakesCommands(t *testing.T) {
	dump := peertest.Device(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- runScanner(ctx, []string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
			"--capabilities", dump, "--adf", "1"}, io.Discard, logW)
		logW.Close()
	}()
	url, control := scannerAddresses(t, logR)

	e, err := scan.NewESCL(url, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Status(context.Background())
	if err != nil || st.Model != "HP LaserJet MFP M426fdn" || st.ADF != "loaded" {
		t.Fatalf("status %+v, %v", st, err)
	}

	resp, err := http.Post(control, "text/plain", strings.NewReader("adf 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		ADF int `json:"adf"`
	}
	json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || state.ADF != 2 {
		t.Fatalf("control: HTTP %s, %+v", resp.Status, state)
	}
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 75}, io.Discard)
	if err != nil || res.Pages != 2 || res.Source != scan.SourceFeeder {
		t.Fatalf("scan: %+v, %v", res, err)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after the context ended", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relais-sim scanner did not stop")
	}
	if _, err := e.Status(context.Background()); scan.ReasonOf(err) != scan.Unreachable {
		t.Errorf("after stopping: %v, want unreachable", err)
	}
}

// TestScannerStopsOnSIGTERM runs relais-sim scanner as its own process and
// stops it with SIGTERM.
func TestScannerStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "scanner", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "RELAIS_SIM_AS_MAIN=1", "GORACE=atexit_sleep_ms=0")
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	url, _ := scannerAddresses(t, stderr)
	e, err := scan.NewESCL(url, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.Status(context.Background()); err != nil || st.State != "idle" || st.Model != "Relais Sim Scanner" {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relais-sim scanner did not stop on SIGTERM")
	}
}
