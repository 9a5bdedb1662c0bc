package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/central/webapi"
)

var agentBin struct {
	once sync.Once
	path string
	err  error
}

// buildAgent builds relais-agent once for the package's tests, in the
// build cache's neighbourhood: the first test's temporary directory would
// be gone for the next, so it goes to a directory of the user's cache,
// replaced at every run.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentBin.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "relais-test", "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			agentBin.err = err
			return
		}
		out, err := exec.Command("go", "build", "-o", dir, "github.com/relais-fr/relais/agent/cmd/relais-agent").CombinedOutput()
		if err != nil {
			agentBin.err = fmt.Errorf("go build relais-agent: %v\n%s", err, out)
		}
		agentBin.path = filepath.Join(dir, "relais-agent")
	})
	if agentBin.err != nil {
		t.Fatal(agentBin.err)
	}
	return agentBin.path
}

// TestRegionMode runs central as a region runs it: PostgreSQL and an
// external mosquitto, with a real agent reporting through that mosquitto.
// A PC prints a 2-page job through the agent; the JSON API (with an API
// token) shows the agent online and the 2 pages in the day's usage.
func TestRegionMode(t *testing.T) {
	db := peertest.Postgres(t)
	broker := peertest.Mosquitto(t, "allow_anonymous true\nset_tcp_nodelay true")
	agentExe := buildAgent(t)

	// An API token for the test, made in the store central will use.
	ctx := context.Background()
	st, err := store.Open(ctx, db, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.New(auth.Options{Store: st}).NewToken(ctx, "test", store.Manager)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	httpPort := peertest.FreePort(t)
	notify := peertest.ListenNotify(t)
	conf := filepath.Join(t.TempDir(), "central.toml") // empty: the flags say it all
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	central := exec.Command(exe, "run", "--config", conf,
		"--set", fmt.Sprintf("http.listen=127.0.0.1:%d", httpPort), "--set", "storage.dir="+t.TempDir(),
		"--set", "db.url="+db, "--set", "broker.embedded=false", "--set", "broker.url=mqtt://"+broker)
	central.Env = append(os.Environ(), "RELAIS_TEST_MAIN=1", "NOTIFY_SOCKET="+notify.Path)
	var centralErr peertest.SyncBuffer
	central.Stderr = &centralErr
	if err := central.Start(); err != nil {
		t.Fatal(err)
	}
	defer central.Process.Kill()
	notify.Await(t, "READY=1", 60*time.Second)

	p, err := printer.New(printer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := t.TempDir()
	ippPort := peertest.FreePort(t)
	cfg := fmt.Sprintf(`[site]
id = "region-test"
agent = "pi-1"
[printer]
uri = %q
[panel]
simulate = true
[ipp]
listen = "127.0.0.1:%d"
dnssd = false
[web]
listen = "127.0.0.1:%d"
[mqtt]
broker = "mqtt://%s"
username = "region-test/pi-1"
[storage]
dir = %q
`, p.URI(), ippPort, peertest.FreePort(t), broker, filepath.Join(dir, "state"))
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "agent.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agentNotify := peertest.ListenNotify(t)
	agent := exec.Command(agentExe, "run", "--config", filepath.Join(dir, "agent.toml"))
	agent.Env = append(os.Environ(), "NOTIFY_SOCKET="+agentNotify.Path)
	var agentErr peertest.SyncBuffer
	agent.Stderr = &agentErr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer agent.Process.Kill()
	agentNotify.Await(t, "READY=1", 60*time.Second)

	c := &upstream.Client{URI: fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", ippPort)}
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String("aidant")))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.Do(pctx, req, bytes.NewReader(peertest.PDF(2)))
	cancel()
	if err != nil {
		t.Fatalf("print through the agent: %v", err)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", httpPort)
	apiGet := func(path string, v any) {
		t.Helper()
		r, _ := http.NewRequest("GET", base+path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().UTC().Format("2006-01-02")
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list struct{ Sites []webapi.Site }
		apiGet("sites", &list)
		sites := list.Sites
		var u struct{ Rows []webapi.Usage }
		apiGet("usage?period=day&from="+day+"&to="+day, &u)
		usage := u.Rows
		online := len(sites) == 1 && sites[0].Site == "region-test" && sites[0].Online
		pages := int64(0)
		for _, u := range usage {
			pages += u.Pages
		}
		if online && pages == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sites %+v, usage %+v\ncentral:\n%s\nagent:\n%s", sites, usage, centralErr.String(), agentErr.String())
		}
		time.Sleep(250 * time.Millisecond) // polling the API for the report
	}

	agent.Process.Signal(syscall.SIGTERM)
	agent.Wait()
	central.Process.Signal(syscall.SIGTERM)
	notify.Await(t, "STOPPING=1", 30*time.Second)
	if err := central.Wait(); err != nil {
		t.Errorf("central after SIGTERM: %v\n%s", err, centralErr.String())
	}
}
