package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/central/peertest"
)

// The test binary doubles as relais-agent when RELAIS_TEST_MAIN is set, so
// that tests run the real command as a separate process.
func TestMain(m *testing.M) {
	if os.Getenv("RELAIS_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Texts are checked in French, the default language: whatever the
	// machine's locale, the tests run in the default one.
	os.Unsetenv("LC_ALL")
	os.Unsetenv("LC_MESSAGES")
	os.Setenv("LANG", "C.UTF-8")
	os.Exit(m.Run())
}

func agentCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "RELAIS_TEST_MAIN=1", "LANG=C.UTF-8", "LC_ALL=")
	return cmd
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

func writeConfig(t *testing.T, body string) (path, storage string) {
	t.Helper()
	dir := t.TempDir()
	storage = filepath.Join(dir, "state")
	path = filepath.Join(dir, "agent.toml")
	// Tests listen on loopback only and never multicast: DNS-SD is off.
	cfg := fmt.Sprintf("[site]\nid = \"ccas-nord\"\nagent = \"pi-1\"\nname = \"CCAS Nord\"\n\n[storage]\ndir = %q\n\n[ipp]\nlisten = \"127.0.0.1:0\"\ndnssd = false\n\n[web]\nlisten = \"127.0.0.1:0\"\n%s", storage, body)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, storage
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "relais-agent ") {
		t.Errorf("version: %q, exit %d", out, code)
	}
}

func TestUsage(t *testing.T) {
	if _, errs, code := run(t); code != 2 || !strings.Contains(errs, "check") {
		t.Errorf("no command: exit %d, %q", code, errs)
	}
	if _, errs, code := run(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errs)
	}
}

func TestCheckReportsTypoWithLine(t *testing.T) {
	path, _ := writeConfig(t, "\n[panel]\nsimulate = true\nbuton = \"GPIO4\"\n")
	out, _, code := run(t, "check", "--config", path)
	if code != 1 || !strings.Contains(out, "agent.toml:18: panel.buton: unknown key") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestCheckAllLocal(t *testing.T) {
	path, storage := writeConfig(t, "\n[panel]\nsimulate = true\n")
	out, _, code := run(t, "check", "--config", path)
	if code != 0 || !strings.Contains(out, "OK     bouton et voyant") || !strings.Contains(out, storage) ||
		!strings.Contains(out, "Tout répond.") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestCheckUnreachablePrinter(t *testing.T) {
	port := peertest.FreePort(t)
	path, _ := writeConfig(t, fmt.Sprintf("\n[panel]\nsimulate = true\n\n[printer]\nuri = \"ipp://127.0.0.1:%d/ipp/print\"\n", port))
	t.Setenv("LANG", "en_GB.UTF-8")
	out, _, code := run(t, "check", "--config", path)
	if code != 1 || !strings.Contains(out, "FAIL   printer") || !strings.Contains(out, "connection refused") ||
		!strings.Contains(out, "1 problem(s) found.") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestRunRefusesWithoutGPIO(t *testing.T) {
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Skip("this machine has GPIO")
	}
	path, _ := writeConfig(t, "")
	_, errs, code := run(t, "run", "--config", path)
	if code != 1 || !strings.Contains(errs, "simulate = true") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

// TestRunLifecycle runs the agent as systemd would: it must say READY=1,
// answer on its control socket, refuse a second agent on the same storage,
// and on SIGTERM say STOPPING=1 and exit 0.
func TestRunLifecycle(t *testing.T) {
	path, storage := writeConfig(t, "\n[panel]\nsimulate = true\n")
	notify := peertest.ListenNotify(t)
	webPort := peertest.FreePort(t)
	cmd := agentCommand(t, "run", "--config", path, "--set", fmt.Sprintf("web.listen=127.0.0.1:%d", webPort))
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify.Path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	notify.Await(t, "READY=1", 30*time.Second)

	resp, err := ctl.Call(context.Background(), storage, ctl.Request{Command: "status", Lang: "en"})
	if err != nil || !strings.Contains(resp.Text, "site ccas-nord, agent pi-1 (CCAS Nord)") {
		t.Errorf("status: %+v, %v", resp, err)
	}
	// The aidant's local page answers, in French.
	page, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.Contains(string(body), "CCAS Nord") || !strings.Contains(string(body), `lang="fr"`) {
		t.Errorf("local page: %s\n%s", page.Status, body)
	}
	out, _, code := run(t, "ctl", "--config", path, "--json", "status")
	if code != 0 || !strings.Contains(out, `"site": "ccas-nord"`) {
		t.Errorf("ctl --json status: exit %d, %s", code, out)
	}
	// The simulated button: a short press with no scanner and no held
	// print is acknowledged, and recorded as a gesture and a failed scan.
	out, errs, code := run(t, "ctl", "--config", path, "press", "short")
	if code != 0 {
		t.Errorf("ctl press short: exit %d, %q", code, errs)
	}
	if out, _, code := run(t, "ctl", "--config", path, "--json", "led"); code != 0 || !strings.Contains(out, `"pattern"`) {
		t.Errorf("ctl led: exit %d, %s", code, out)
	}
	if _, errs, code := run(t, "ctl", "--config", path, "press", "hard"); code != 1 || !strings.Contains(errs, `"hard"`) {
		t.Errorf("ctl press hard: exit %d, %q", code, errs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ = run(t, "ctl", "--config", path, "queue")
		if strings.Contains(out, `"type":"button.pressed","gesture":"short"`) && strings.Contains(out, `"type":"scan.failed","reason":"no-scanner"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no button.pressed and scan.failed events:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition
	}
	_, errs, code = run(t, "run", "--config", path, "--set", "panel.simulate=true")
	if code != 1 || !strings.Contains(errs, "another relais-agent is running") {
		t.Errorf("second agent: exit %d, %q", code, errs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notify.Await(t, "STOPPING=1", 30*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if _, err := ctl.Call(context.Background(), storage, ctl.Request{Command: "status"}); err == nil {
		t.Error("the control socket still answers after stop")
	}
}
