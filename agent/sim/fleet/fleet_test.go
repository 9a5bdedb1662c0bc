package fleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/sim/fleet"
	"github.com/relais-fr/relais/agent/sim/fleet/fleettest"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/configs"
)

// limit bounds every wait of the tests.
const limit = 30 * time.Second

// brokerConf lets the test's central fall behind a burst without
// mosquitto dropping QoS 1 messages to it (its queue is bounded to 1000 by
// default), and sends small packets (acks) at once.
const brokerConf = "allow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay true\n"

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

// start starts a fleet and stops it, if the test has not, when it ends.
func start(t *testing.T, cfg fleet.Config) *fleet.Fleet {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, slog.LevelWarn)
	}
	f, err := fleet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f.Stop(ctx) // refused if the test stopped it
	})
	return f
}

// waitFor waits until cond holds, at most limit, checking it after every
// message central receives; otherwise it fails the test with the fleet's
// figures.
func waitFor(t *testing.T, ce *fleettest.Central, f *fleet.Fleet, what string, cond func() bool) {
	t.Helper()
	if !ce.WaitFor(limit, cond) {
		t.Fatalf("timed out after %v waiting for %s; fleet: %+v; central: %d events", limit, what, f.Stats(), ce.Distinct())
	}
}

// poll waits until cond holds, checking it every 10 ms, for at most limit.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
	}
}

// stop stops f with a drain of at most limit.
func stop(t *testing.T, f *fleet.Fleet) fleet.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	s, err := f.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("final: %+v", s)
	return s
}

// checkExactlyOnce checks that central has, from every agent, every seq
// from 1 to the last with one id each (Central checks ids), that is
// every event recorded, once after deduplication.
func checkExactlyOnce(t *testing.T, ce *fleettest.Central, cfg fleet.Config, s fleet.Stats) {
	t.Helper()
	if bad := ce.Bad(); len(bad) > 0 {
		t.Errorf("central refused or saw inconsistent payloads: %q", bad)
	}
	if s.Pending != 0 || s.Acked != s.Recorded || s.Recorded == 0 || s.Failures != 0 {
		t.Errorf("after the drain: %+v; want every recorded event acked, none pending or failed", s)
	}
	var total uint64
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		ag := ce.Agent(id.Site, id.Agent)
		if uint64(len(ag.Events)) != ag.High {
			t.Errorf("%s: %d distinct events but seqs contiguous only up to %d", id, len(ag.Events), ag.High)
		}
		total += ag.High
	}
	if total != s.Recorded || uint64(ce.Distinct()) != s.Recorded {
		t.Errorf("central has %d contiguous events (%d distinct ids); the fleet recorded %d", total, ce.Distinct(), s.Recorded)
	}
}

// TestFleetDeliversEveryEventOnce runs 20 agents (10 sites of 2) at 400
// events per second (or as many as the machine records) against a real mosquitto and a central that acks:
// every recorded event arrives, once after deduplication, and is acked;
// the retained status is online for every agent while it runs and offline
// after Stop; metrics and commands work.
func TestFleetDeliversEveryEventOnce(t *testing.T) {
	url := "tcp://" + peertest.Mosquitto(t, brokerConf)
	ce := fleettest.Start(t, url)
	cfg := fleet.Config{
		Agents: 20, PerSite: 2, SitePrefix: "test", Rate: 400, Seed: 7, FaultShare: 0.1,
		Ramp: 200 * time.Millisecond, MQTT: configs.AgentMQTT{Broker: url},
		MetricsInterval: 300 * time.Millisecond, PollInterval: 200 * time.Millisecond,
		ReportLogger: testLogger(t, slog.LevelWarn),
	}
	yesterday := time.Now().AddDate(0, 0, -1).Format(time.DateOnly)
	f := start(t, cfg)

	waitFor(t, ce, f, "every agent online with metrics, and 300 events", func() bool {
		for i := range cfg.Agents {
			id := cfg.AgentID(i)
			if ag := ce.Agent(id.Site, id.Agent); ag.Status == nil || !ag.Status.Online || len(ag.Metrics) < 2 {
				return false
			}
		}
		return ce.Distinct() >= 300
	})
	ret := fleettest.Retained(t, url, api.AgentFilter(api.KindStatus))
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		st, err := api.DecodeStatus([]byte(ret[api.StatusTopic(id.Site, id.Agent)]))
		if err != nil || !st.Online || st.Version != fleet.DefaultVersion {
			t.Errorf("%s: retained status %+v, %v; want online", id, st, err)
		}
	}
	if s := f.Stats(); s.Connected != cfg.Agents || s.Recorded < 300 || s.Reconnects != 0 {
		t.Errorf("while running: %+v", s)
	}

	// Commands, answered on cmd-result; test-page prints a page.
	id := cfg.AgentID(3)
	for _, name := range []string{api.CommandIdentify, api.CommandTestPage, api.CommandRefresh, api.CommandCancelJobs} {
		ce.Command(id.Site, id.Agent, name, "req-"+name)
	}
	waitFor(t, ce, f, "4 command results", func() bool { return len(ce.Agent(id.Site, id.Agent).Results) >= 4 })
	for _, r := range ce.Agent(id.Site, id.Agent).Results {
		if !r.OK || !strings.HasPrefix(r.Req, "req-") {
			t.Errorf("command result %+v; want ok", r)
		}
	}
	waitFor(t, ce, f, "the test page", func() bool {
		for _, e := range ce.Agent(id.Site, id.Agent).Events {
			if e.Type == api.EventPrintCompleted && e.Source == api.SourceCentral {
				return true
			}
		}
		return false
	})

	s := stop(t, f)
	checkExactlyOnce(t, ce, cfg, s)
	if s.Commands != 3 { // refresh is the reporter's own
		t.Errorf("%d commands run; want 3", s.Commands)
	}

	// What the agents said, as central read it.
	types := map[string]int{}
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		ag := ce.Agent(id.Site, id.Agent)
		open := map[string]bool{}
		daily := 0
		for seq := uint64(1); seq <= ag.High; seq++ {
			e := ag.Events[seq]
			key := string(e.Type)
			if e.Type == api.EventPrintCompleted {
				key += "/" + string(e.Source)
			}
			types[key]++
			switch e.Type {
			case api.EventFaultRaised, api.EventFaultCleared:
				code := e.Fault.Code
				if open[code] == (e.Type == api.EventFaultRaised) {
					t.Errorf("%s seq %d: %s %s out of turn", id, seq, e.Type, code)
				}
				open[code] = e.Type == api.EventFaultRaised
			case api.EventWiFiDaily:
				daily++
				// The day before Start; the clock may have passed midnight since.
				after := e.Time.Local().AddDate(0, 0, -1).Format(time.DateOnly)
				if e.Day != yesterday && e.Day != after || *e.Visitors <= 0 {
					t.Errorf("%s: wifi.daily for %s, %d visitors; want %s", id, e.Day, *e.Visitors, yesterday)
				}
			}
		}
		if daily != 1 {
			t.Errorf("%s: %d wifi.daily; want 1 (the day before)", id, daily)
		}
		for _, m := range ag.Metrics {
			if m.Printer == nil || len(m.Printer.Markers) != 1 || m.WiFi == nil || m.Host == nil || m.Scanner == nil {
				t.Errorf("%s: metrics %+v lack a part", id, m)
				break
			}
		}
		if ag.Status == nil || ag.Status.Online {
			t.Errorf("%s: last status %+v; want offline", id, ag.Status)
		}
	}
	t.Logf("event types: %v", types)
	for _, want := range []string{"print.completed/pc", "print.completed/phone", "print.completed/central", "copy.completed",
		"scan.completed", "button.pressed", "fault.raised", "fault.cleared", "wifi.daily"} {
		if types[want] == 0 {
			t.Errorf("no %s event", want)
		}
	}

	ret = fleettest.Retained(t, url, api.AgentFilter(api.KindStatus))
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		if p := ret[api.StatusTopic(id.Site, id.Agent)]; p != string(api.OfflineWill()) {
			t.Errorf("%s: retained status after Stop %q; want %s", id, p, api.OfflineWill())
		}
	}
}

// TestFleetOutages runs agents that go offline half of the time, for
// short outages: they reconnect, and their backlog is delivered, once after
// deduplication.
func TestFleetOutages(t *testing.T) {
	url := "tcp://" + peertest.Mosquitto(t, brokerConf)
	ce := fleettest.Start(t, url)
	cfg := fleet.Config{
		Agents: 8, Rate: 200, Seed: 3, OfflineShare: 0.5, OfflineMean: 300 * time.Millisecond,
		MQTT: configs.AgentMQTT{Broker: url}, PollInterval: 200 * time.Millisecond,
	}
	f := start(t, cfg)
	waitFor(t, ce, f, "8 reconnections and 200 events", func() bool {
		return f.Stats().Reconnects >= 8 && ce.Distinct() >= 200
	})
	s := stop(t, f)
	checkExactlyOnce(t, ce, cfg, s)
	back := 0
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		if ce.Agent(id.Site, id.Agent).Online >= 2 {
			back++
		}
	}
	if back == 0 || s.Reconnects < 8 {
		t.Errorf("%d agents came back online, %d reconnections; want outages", back, s.Reconnects)
	}
}

// TestFleetCredentials connects agents with their own passwords to a
// mosquitto that refuses anonymous clients and lets each username
// {site}/{agent} use only its own topics, as relais-central's broker does.
func TestFleetCredentials(t *testing.T) {
	passwd := peertest.Program(t, "mosquitto_passwd", "mosquitto")
	dir := t.TempDir()
	pwFile, aclFile := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	cfg := fleet.Config{Agents: 3, Rate: 100, Seed: 1, SitePrefix: "auth", PollInterval: 200 * time.Millisecond}
	var creds strings.Builder
	users := map[string]string{"central": "central-secret"}
	for i := range cfg.Agents {
		id := cfg.AgentID(i)
		pw := fmt.Sprintf("pw-%d-secret", i)
		users[id.Username()] = pw
		fmt.Fprintf(&creds, "%s %s %s\n", id.Site, id.Agent, pw)
	}
	if err := os.WriteFile(pwFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for u, pw := range users {
		if out, err := exec.Command(passwd, "-b", pwFile, u, pw).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl := "user central\ntopic readwrite relais/#\n\npattern readwrite relais/v1/%u/#\n"
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	// mosquitto started as root drops to the user mosquitto before it
	// reads these files, which the test's private directory hides from it.
	conf := fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\n", pwFile, aclFile)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	url := "tcp://" + peertest.Mosquitto(t, conf)
	ce := fleettest.Start(t, url, fleettest.Login("central", users["central"]))

	var err error
	if cfg.Credentials, err = fleet.ReadCredentials(strings.NewReader(creds.String())); err != nil {
		t.Fatal(err)
	}
	cfg.MQTT = configs.AgentMQTT{Broker: url}
	cfg.StateDir = t.TempDir()
	f := start(t, cfg)
	waitFor(t, ce, f, "50 events", func() bool { return ce.Distinct() >= 50 })
	s := stop(t, f)
	checkExactlyOnce(t, ce, cfg, s)
	fi, err := os.Stat(filepath.Join(cfg.StateDir, "auth-0001", "pi-1", "mqtt-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v, %v; want mode 0600", fi, err)
	}

	// A fleet without the passwords is refused by the broker: nothing
	// is delivered and the drain gives up with the events pending.
	cfg.Credentials, cfg.StateDir = nil, t.TempDir()
	cfg.ReportLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
	f = start(t, cfg)
	before := ce.Distinct()
	poll(t, "20 events recorded", func() bool { return f.Stats().Recorded >= 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, err = f.Stop(ctx)
	if err != nil || s.Pending < 20 || s.Acked != 0 || s.Published != 0 || s.Reconnects != 0 || ce.Distinct() != before {
		t.Errorf("anonymous fleet: %+v, %v; want events pending, none acked", s, err)
	}
}

func TestConfigErrors(t *testing.T) {
	good := fleet.Config{Agents: 1, StateDir: t.TempDir(), MQTT: configs.AgentMQTT{Broker: "tcp://127.0.0.1:1"}}
	for _, tc := range []struct {
		change func(*fleet.Config)
		want   string
	}{
		{func(c *fleet.Config) { c.Agents = 0 }, "0 agents"},
		{func(c *fleet.Config) { c.Agents = fleet.MaxAgents + 1 }, "agents"},
		{func(c *fleet.Config) { c.Rate = -1 }, "rate"},
		{func(c *fleet.Config) { c.Rate = fleet.MaxRate + 1 }, "rate"},
		{func(c *fleet.Config) { c.FaultShare = 1.5 }, "fault share"},
		{func(c *fleet.Config) { c.OfflineShare = 0.95 }, "offline share"},
		{func(c *fleet.Config) { c.Ramp = -time.Second }, "negative"},
		{func(c *fleet.Config) { c.Day = time.Millisecond }, "simulated day"},
		{func(c *fleet.Config) { c.SitePrefix = "Bad_Prefix" }, "site prefix"},
		{func(c *fleet.Config) { c.SitePrefix = strings.Repeat("a", 60) }, "site prefix"},
		{func(c *fleet.Config) { c.StateDir = "" }, "state directory"},
		{func(c *fleet.Config) { c.MQTT.Broker = "" }, "broker"},
		{func(c *fleet.Config) { c.OutboxBytes = 1000 }, "outbox"},
		{func(c *fleet.Config) { c.Credentials = fleet.Credentials{{Site: "x", Agent: "y"}: "pw"} }, "no password for sim-0001/pi-1"},
	} {
		cfg := good
		tc.change(&cfg)
		if _, err := fleet.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an error about %q", cfg, err, tc.want)
		}
	}
	if _, err := fleet.New(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestStateDirLocked(t *testing.T) {
	cfg := fleet.Config{Agents: 1, ReportLogger: slog.New(slog.NewTextHandler(io.Discard, nil)), StateDir: t.TempDir(), MQTT: configs.AgentMQTT{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", peertest.FreePort(t))}}
	start(t, cfg)
	f, err := fleet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err == nil || !strings.Contains(err.Error(), "in use by another fleet") {
		t.Errorf("second fleet on the same state: %v; want refused", err)
	}
	// Another share of the same fleet may use the same directory.
	cfg.First = 1
	start(t, cfg)
}
