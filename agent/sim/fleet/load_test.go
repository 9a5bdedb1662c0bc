package fleet_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/sim/fleet"
	"github.com/relais-fr/relais/agent/sim/fleet/fleettest"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/configs"
)

// rssKiB returns this process's resident set size.
func rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestLoad measures a fleet against a real mosquitto and a central that
// acks: memory per agent and events recorded per second. It runs only
// when asked, with RELAIS_FLEET_LOAD=AGENTS,RATE,DURATION[,STATEDIR], such
// as
//
//	RELAIS_FLEET_LOAD=1000,200,60s go test -run TestLoad -v -timeout 30m ./agent/sim/fleet
//
// (one process holds 4 files per agent: see ulimit -n). It checks that
// every event recorded was delivered once and acked.
func TestLoad(t *testing.T) {
	spec := os.Getenv("RELAIS_FLEET_LOAD")
	if spec == "" {
		t.Skip("set RELAIS_FLEET_LOAD=AGENTS,RATE,DURATION[,STATEDIR] to measure a fleet")
	}
	var agents int
	var rate float64
	var d time.Duration
	parts := strings.Split(spec, ",")
	_, err := fmt.Sscanf(strings.Join(parts[:min(3, len(parts))], " "), "%d %g", &agents, &rate)
	if err == nil && len(parts) >= 3 {
		d, err = time.ParseDuration(parts[2])
	}
	if err != nil || len(parts) < 3 || len(parts) > 4 {
		t.Fatalf("RELAIS_FLEET_LOAD=%q: want AGENTS,RATE,DURATION[,STATEDIR]", spec)
	}
	state := t.TempDir()
	if len(parts) == 4 {
		state = parts[3]
	}
	url := "tcp://" + peertest.Mosquitto(t, brokerConf+"max_inflight_messages 100\n")
	ce := fleettest.Start(t, url)
	before := rssKiB(t)
	cfg := fleet.Config{
		Agents: agents, Rate: rate, Seed: 1, FaultShare: 0.02, StateDir: state,
		Ramp: time.Duration(float64(agents) / 200 * float64(time.Second)), MQTT: configs.AgentMQTT{Broker: url},
	}
	f := start(t, cfg)
	if !ce.WaitFor(cfg.Ramp+limit, func() bool { return f.Stats().Connected == agents }) {
		t.Fatalf("not every agent connected: %+v", f.Stats())
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	peak := 0
measure:
	for {
		peak = max(peak, rssKiB(t))
		select {
		case <-deadline.C:
			break measure
		case <-tick.C:
		}
	}
	s := stop(t, f)
	checkExactlyOnce(t, ce, cfg, s)
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		if st := ce.Agent(id.Site, id.Agent).Status; st == nil || st.Online {
			t.Errorf("%s: last status %+v; want offline", id, st)
		}
	}
	t.Logf("%d agents: RSS %d MiB before Start, peak %d MiB: %d KiB per agent (central's copy of the events included)",
		agents, before>>10, peak>>10, (peak-before)/agents)
	t.Logf("%d events recorded in %.1f s: %.1f events/s (%v asked, plus one wifi.daily per agent), %d skipped",
		s.Recorded, s.Elapsed, float64(s.Recorded)/s.Elapsed, rate, s.Skipped)
}
