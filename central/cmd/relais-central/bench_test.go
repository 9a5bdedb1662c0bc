package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/sim/fleet"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/broker"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/central/webapi"
)

// TestBenchFleet is the fleet load scenario of `make bench`
// (RELAIS_BENCH=1): relais-central with its embedded broker and SQLite,
// and RELAIS_BENCH_AGENTS (default 10,000) simulated agents of `relais-sim
// fleet`, each with its own credentials, real outbox and reporter. Once
// every agent is online it measures, over a minute of steady reporting,
// central's resident memory and CPU, and the time to serve the fleet page
// to a logged-in technician (p50, p95).
func TestBenchFleet(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a load scenario for make bench (RELAIS_BENCH=1)")
	}
	agents := 10000
	if v := os.Getenv("RELAIS_BENCH_AGENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RELAIS_BENCH_AGENTS=%q", v)
		}
		agents = n
	}
	const rate, perSite = 200, 2
	simDir, err := os.MkdirTemp("", "relais-sim-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(simDir)
	if out, err := exec.Command("go", "build", "-o", simDir, "github.com/relais-fr/relais/agent/cmd/relais-sim").CombinedOutput(); err != nil {
		t.Fatalf("go build relais-sim: %v\n%s", err, out)
	}

	// Every agent registered, as `relais-central agent add` does, and one
	// technician.
	ctx := context.Background()
	state := t.TempDir()
	st, err := store.Open(ctx, "sqlite:central.db", state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fleet.Config{PerSite: perSite, SitePrefix: fleet.DefaultSitePrefix}
	creds := filepath.Join(t.TempDir(), "credentials")
	f, err := os.Create(creds)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	registered := time.Now()
	for i := range agents {
		id := cfg.AgentID(i)
		pw, err := broker.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		h, err := broker.HashSecret(pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddAgent(ctx, store.Agent{Site: id.Site, Agent: id.Agent, SecretHash: h, Created: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "%s %s %s\n", id.Site, id.Agent, pw)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	hash, _ := auth.HashPassword("bench-password")
	if err := st.AddUser(ctx, store.User{Name: "tech", Role: store.Technician, PasswordHash: hash, Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	token, err := auth.New(auth.Options{Store: st}).NewToken(ctx, "bench", store.Manager)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Logf("%d agents registered in %v", agents, time.Since(registered).Round(time.Second))

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, mqttPort := peertest.FreePort(t), peertest.FreePort(t)
	conf := filepath.Join(t.TempDir(), "central.toml")
	os.WriteFile(conf, nil, 0o600)
	notify := peertest.ListenNotify(t)
	central := exec.Command(exe, "run", "--config", conf, "--set", "storage.dir="+state,
		"--set", fmt.Sprintf("http.listen=127.0.0.1:%d", httpPort), "--set", fmt.Sprintf("broker.listen=127.0.0.1:%d", mqttPort))
	central.Env = append(os.Environ(), "RELAIS_TEST_MAIN=1", "NOTIFY_SOCKET="+notify.Path)
	var centralErr peertest.SyncBuffer
	central.Stderr = &centralErr
	if err := central.Start(); err != nil {
		t.Fatal(err)
	}
	defer central.Process.Kill()
	notify.Await(t, "READY=1", 60*time.Second)
	started, err := peertest.Usage(central.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	shm := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		shm = "/dev/shm"
	}
	fleetState, err := os.MkdirTemp(shm, "relais-bench-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(fleetState)
	sim := exec.Command(filepath.Join(simDir, "relais-sim"), "fleet", "--agents", strconv.Itoa(agents),
		"--rate", strconv.Itoa(rate), "--per-site", strconv.Itoa(perSite),
		"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort), "--credentials", creds, "--state", fleetState,
		"--ramp", "60s", "--drain", "1m")
	var simOut peertest.SyncBuffer
	sim.Stdout, sim.Stderr = &simOut, &simOut
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Process.Kill()

	// Peak RSS is sampled throughout.
	var mu sync.Mutex
	var peak int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if u, err := peertest.Usage(central.Process.Pid); err == nil {
				mu.Lock()
				peak = max(peak, u.RSS)
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(500 * time.Millisecond): // sampling period
			}
		}
	}()

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", httpPort)
	online := func() int {
		r, _ := http.NewRequest("GET", api+"sites", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var list struct{ Sites []webapi.Site }
		json.NewDecoder(resp.Body).Decode(&list)
		n := 0
		for _, s := range list.Sites {
			for _, a := range s.Agents {
				if a.Online {
					n++
				}
			}
		}
		return n
	}
	connectStart := time.Now()
	deadline := connectStart.Add(6 * time.Minute)
	for n := online(); n < agents; n = online() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d agents online after %v\nfleet:\n%s\ncentral:\n%s", n, agents, time.Since(connectStart), tail(simOut.String()), tail(centralErr.String()))
		}
		time.Sleep(2 * time.Second) // polling the API while the fleet connects
	}
	connected := time.Since(connectStart)

	// A minute of steady reporting, during which a technician loads the
	// fleet page every 3 s.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: time.Minute}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	login(t, client, base, "tech", "bench-password")
	before, _ := peertest.Usage(central.Process.Pid)
	window := time.Minute
	var pages []time.Duration
	for end := time.Now().Add(window); time.Now().Before(end); {
		t0 := time.Now()
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fleet page: %s", resp.Status)
		}
		pages = append(pages, time.Since(t0))
		time.Sleep(3 * time.Second) // the technician's pace
	}
	after, _ := peertest.Usage(central.Process.Pid)
	elapsed := window + 3*time.Second
	close(stopSampling)
	<-sampled

	sim.Process.Signal(syscall.SIGTERM)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Wait() }()
	select {
	case err := <-simDone:
		if err != nil {
			t.Errorf("relais-sim fleet: %v\n%s", err, tail(simOut.String()))
		}
	case <-time.After(4 * time.Minute):
		t.Errorf("relais-sim fleet did not stop\n%s", tail(simOut.String()))
	}
	// Not a failure: what is still pending stays in the agents' outboxes
	// for their next connection; how much is a figure of the run.
	acked := regexp.MustCompile(`all \d+ events acked|\d+ events still pending[^\n]*`).FindString(simOut.String())

	slices.Sort(pages)
	p50, p95 := pages[len(pages)/2], pages[(len(pages)*95+99)/100-1]
	cpu := float64(after.CPU-before.CPU) / float64(elapsed) * 100
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("\nFleet: %d agents (relais-sim fleet, %d events/s) on the embedded broker + SQLite: all online %v after the start of the ramp (60 s);\n"+
		"central RSS at start %.0f MiB, peak %.0f MiB; CPU %.0f %% of a core over %v; fleet page p50 %v p95 %v (%d loads); fleet: %s\n",
		agents, rate, connected.Round(time.Second), mib(started.RSS), mib(peak), cpu, window,
		p50.Round(time.Millisecond), p95.Round(time.Millisecond), len(pages), acked)
	n := strconv.Itoa(agents)
	peertest.BenchRow(t, n+" agents: central peak RSS (MiB)", fmt.Sprintf("%.0f", mib(peak)), "limit: 1 GiB VM", "1024", fmt.Sprintf("%.2fx", mib(peak)/1024))
	peertest.BenchRow(t, n+" agents: central CPU (% of a core)", fmt.Sprintf("%.0f", cpu), "limit: one core", "100", fmt.Sprintf("%.2fx", cpu/100))
	peertest.BenchRow(t, n+" agents: fleet page p95 (ms)", fmt.Sprintf("%.0f", float64(p95)/float64(time.Millisecond)),
		"limit: 1 s", "1000", fmt.Sprintf("%.2fx", float64(p95)/float64(time.Second)))

	central.Process.Signal(syscall.SIGTERM)
	central.Wait()
}

// login logs client in through the dashboard's form.
func login(t *testing.T, client *http.Client, base, name, password string) {
	t.Helper()
	resp, err := client.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	var b [64 << 10]byte
	n, _ := resp.Body.Read(b[:])
	resp.Body.Close()
	m := regexp.MustCompile(`name="login_token" value="([^"]+)"`).FindSubmatch(b[:n])
	if m == nil {
		t.Fatal("no login token in the form")
	}
	resp, err = client.PostForm(base+"/login", url.Values{"login_token": {string(m[1])}, "name": {name}, "password": {password}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// tail is the end of a log, for failure messages.
func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
