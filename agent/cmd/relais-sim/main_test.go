package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/peertest"
)

// TestMain lets a test run this test binary as relais-sim itself.
func TestMain(m *testing.M) {
	if os.Getenv("RELAIS_SIM_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestOtherSimulatorsNotYet(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"printr"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "printer") {
		t.Errorf("unknown simulator: exit %d, %q", code, errb.String())
	}
}

func TestPrinterHelpAndBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"printer", "--help"}, &out, &errb); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, want := range []string{"-attributes FILE.ipp", "-control ADDR", "media-empty [on|off]", "slow DURATION", "curl -d"} {
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
		{[]string{"--control", "192.0.2.1:8632"}, 1, "not a loopback address"},
		{[]string{"--attributes", "/nonexistent.ipp"}, 1, "--attributes"},
		{[]string{"--max-document", "0"}, 1, "--max-document"},
		{[]string{"--listen", "127.0.0.1:0", "extra"}, 2, "unexpected argument"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // should it start, it stops at once
		if code := runPrinter(ctx, tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

var (
	uriLine     = regexp.MustCompile(`uri=(ipp://\S+)`)
	controlLine = regexp.MustCompile(`control=(http://\S+)`)
)

// addresses reads the simulator's log until it has named its URI and
// control address, and keeps draining it afterwards.
func addresses(t *testing.T, log io.Reader) (uri, control string) {
	t.Helper()
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(log)
		var got [2]string
		sent := false
		for sc.Scan() {
			if m := uriLine.FindStringSubmatch(sc.Text()); m != nil {
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
		t.Fatal("relais-sim printer did not log its addresses")
		return "", ""
	}
}

func TestPrinterReplaysAndTakesCommands(t *testing.T) {
	dump := peertest.Device(t, "Xerox-B235-Printer-Attributes.ipp")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- runPrinter(ctx, []string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
			"--attributes", dump, "--name", "Mairie de Vif"}, io.Discard, logW)
		logW.Close()
	}()
	uri, control := addresses(t, logR)

	c := &upstream.Client{URI: uri}
	attrs, err := c.PrinterAttributes(context.Background(), "printer-name", "printer-make-and-model", "printer-state-reasons")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"printer-name":           "Mairie de Vif",
		"printer-make-and-model": "Xerox(R) B235 MFP",
		"printer-state-reasons":  "none",
	} {
		if v := upstream.Find(attrs, name); len(v) != 1 || v[0].V.String() != want {
			t.Errorf("%s = %v, want %s", name, v, want)
		}
	}

	resp, err := http.Post(control, "text/plain", strings.NewReader("media-empty on\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("control: HTTP %s", resp.Status)
	}
	attrs, err = c.PrinterAttributes(context.Background(), "printer-state", "printer-state-reasons")
	if err != nil {
		t.Fatal(err)
	}
	if v := upstream.Find(attrs, "printer-state-reasons"); len(v) != 1 || v[0].V.String() != "media-empty-error" {
		t.Errorf("after media-empty: %v", v)
	}
	if v := upstream.Find(attrs, "printer-state"); len(v) != 1 || v[0].V != goipp.Integer(5) {
		t.Errorf("after media-empty: printer-state %v", v)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after the context ended", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relais-sim printer did not stop")
	}
	if _, err := c.PrinterAttributes(context.Background()); err == nil {
		t.Error("the printer still answers after stopping")
	}
}

// TestPrinterStopsOnSIGTERM runs relais-sim printer as its own process, as
// systemd or a shell would, and stops it with SIGTERM.
func TestPrinterStopsOnSIGTERM(t *testing.T) {
	keep := t.TempDir()
	cmd := exec.Command(os.Args[0], "printer", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--keep", keep)
	// Under -race, a process sleeps 1 s before exiting unless told not to.
	cmd.Env = append(os.Environ(), "RELAIS_SIM_AS_MAIN=1", "GORACE=atexit_sleep_ms=0")
	// A pipe of our own, not StderrPipe: Wait must not close it while
	// addresses still drains it.
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
	uri, _ := addresses(t, stderr)

	c := &upstream.Client{URI: uri}
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttr("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	doc := peertest.PDF(2)
	if _, err := c.Do(context.Background(), req, bytes.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(keep)
	if err != nil || len(entries) != 1 {
		t.Fatalf("kept %v (%v)", entries, err)
	}
	if got, _ := os.ReadFile(keep + "/" + entries[0].Name()); !bytes.Equal(got, doc) {
		t.Error("the kept document differs from the one sent")
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
		t.Fatal("relais-sim printer did not stop on SIGTERM")
	}
}
