package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// The test binary doubles as relais-central when RELAIS_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("RELAIS_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	peertest.Main(m)
}

func TestBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "central.toml")
	os.WriteFile(path, []byte("[http]\nlisten = \":8080\"\nlisen = \":80\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := Main([]string{"--config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "central.toml:3: http.lisen: unknown key") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}

// TestRunLifecycle runs central as systemd would and checks READY=1,
// /healthz, the published schema, and a clean stop on SIGTERM.
func TestRunLifecycle(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePort(t)
	notify := peertest.ListenNotify(t)
	var out, errb bytes.Buffer
	// A named file that does not exist is an error; the default path is not.
	if code := Main([]string{"run", "--config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb); code != 1 {
		t.Fatalf("a missing --config file: exit %d", code)
	}
	cmd := exec.Command(exe, "--set", fmt.Sprintf("http.listen=127.0.0.1:%d", port), "--set", "storage.dir="+t.TempDir(),
		"--set", fmt.Sprintf("broker.listen=127.0.0.1:%d", peertest.FreePort(t)))
	cmd.Env = append(os.Environ(), "RELAIS_TEST_MAIN=1", "NOTIFY_SOCKET="+notify.Path, "RELAIS_CONFIG=/etc/relais/central.toml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	notify.Await(t, "READY=1", 30*time.Second)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]string
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health["status"] != "ok" {
		t.Errorf("healthz: %v", health)
	}
	resp, err = http.Get(base + "/api/v1/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema bytes.Buffer
	schema.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(schema.Bytes(), api.Schema()) {
		t.Error("the served schema differs from the contract's")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	notify.Await(t, "STOPPING=1", 30*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
}
