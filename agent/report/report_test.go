package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
)

// TestDeliveryStatusAndReconnect publishes events and status through a real
// mosquitto to a central that acks, changes the faults, restarts the broker
// (birth, subscriptions and delivery resume), and stops the Reporter
// (offline status).
func TestDeliveryStatusAndReconnect(t *testing.T) {
	b := newBroker(t)
	b.start()
	cp := newCapture(t, b)
	ce := newCentral(t, b)
	ob := openOutbox(t)
	last := record(t, ob, 1, 300)
	if err := ob.Raise(api.DevicePrinter, "media-empty", api.SeverityFault); err != nil {
		t.Fatal(err)
	}
	last++
	cfg := baseConfig(t, b)
	cfg.Batch, cfg.Window = 50, 120
	r, err := New(cfg, ob)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, r)

	ce.waitHigh(last, limit)
	waitFor(t, "the outbox to record the ack", limit, nil, func() bool { return lastAck(t, ob) == last })
	st := waitRetained(t, b, "online status with the fault", func(s api.Status) bool { return s.Online && len(s.Faults) == 1 })
	if st.Health != api.HealthFault || st.Faults[0].Code != "media-empty" || st.Version != "1.2.3-test" {
		t.Errorf("status %+v", st)
	}
	for _, p := range cp.find(api.KindEvents, nil) {
		es, err := api.DecodeEvents([]byte(p))
		if err != nil || len(es) > cfg.Batch {
			t.Errorf("events payload of %d events: %v", len(es), err)
		}
	}

	// A cleared fault is published at once (Kick), with its event.
	if err := ob.Clear(api.DevicePrinter, "media-empty"); err != nil {
		t.Fatal(err)
	}
	last++
	r.Kick()
	waitRetained(t, b, "status without faults", func(s api.Status) bool { return s.Online && s.Health == api.HealthOK && len(s.Faults) == 0 })
	ce.waitHigh(last, limit)

	// Restart the broker: the Reporter reconnects, publishes its birth again
	// and resubscribes, so new events are acked.
	b.stop()
	waitFor(t, "the Reporter to notice", limit, nil, func() bool { return !r.State().Connected })
	last = record(t, ob, 1000, 100)
	r.Kick()
	b.start()
	waitFor(t, "the Reporter to reconnect", limit, nil, func() bool { return r.State().Connected })
	waitRetained(t, b, "birth after reconnection", func(s api.Status) bool { return s.Online })
	waitFor(t, "events recorded offline to be acked after reconnection", limit, nil, func() bool { return lastAck(t, ob) == last })
	s := r.State()
	if s.Connects != 2 || s.LastAck != last || s.Published != last || s.InFlight != 0 || s.LastError == "" {
		t.Errorf("state after reconnection %+v", s)
	}
	cs := ce.stats()
	if cs.distinct != int(last) || len(cs.bad) > 0 {
		t.Errorf("central: %d distinct events, want %d; problems %v", cs.distinct, last, cs.bad)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := retained(t, b, api.StatusTopic(site, agent)); got != `{"online":false}` {
		t.Errorf("retained status after stop: %s", got)
	}
	if r.State().Connected {
		t.Error("still connected after Run returned")
	}
	t.Logf("%d events, %d messages, %d duplicates", cs.distinct, cs.msgs, cs.dups)
}

// TestAckTimeoutResend withholds acks: after AckTimeout on the injected
// clock the Reporter sends every unacked event again; an ack then lets it
// go on.
func TestAckTimeoutResend(t *testing.T) {
	b := newBroker(t)
	b.start()
	newCapture(t, b)
	ce := newCentral(t, b)
	ce.setNoAck(true)
	ob := openOutbox(t)
	last := record(t, ob, 1, 40)
	clock := newFakeClock()
	cfg := baseConfig(t, b)
	cfg.Clock, cfg.Batch, cfg.Window = clock, 10, 30
	r, err := New(cfg, ob)
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)

	ce.waitHigh(30, limit) // the window: 30 of 40
	if s := r.State(); s.InFlight != 30 || s.Published != 30 || s.Resends != 0 {
		t.Fatalf("state before the timeout %+v", s)
	}
	if cs := ce.stats(); cs.maxSeen != 30 || cs.dups != 0 {
		t.Fatalf("central before the timeout: %+v", cs)
	}
	clock.Advance(cfg.AckTimeout)
	waitFor(t, "the unacked events sent again", limit, &ce.sig, func() bool { return ce.stats().dups >= 30 })
	if s := r.State(); s.Resends != 1 {
		t.Errorf("resends %d, want 1", s.Resends)
	}
	ce.setNoAck(false)
	waitFor(t, "all events acked", limit, nil, func() bool {
		clock.Advance(ackFlush) // acks reach the outbox every ackFlush
		return lastAck(t, ob) == last
	})
	if cs := ce.stats(); cs.distinct != int(last) || len(cs.bad) > 0 {
		t.Errorf("central: %+v", cs)
	}
}

// TestMetricsOffline takes snapshots while the broker is down: they wait in
// the outbox and are published oldest first once connected.
func TestMetricsOffline(t *testing.T) {
	b := newBroker(t) // not started yet
	ob := openOutbox(t)
	clock := newFakeClock()
	start := clock.Now()
	cfg := baseConfig(t, b)
	cfg.Clock, cfg.MetricsInterval = clock, time.Minute
	// Reconnection waits an hour on the injected clock, so that it happens
	// only once the test has its capture ready.
	cfg.ReconnectMin, cfg.ReconnectMax = time.Hour, time.Hour
	cfg.Source = newFixtureSource(ob)
	r, err := New(cfg, ob)
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	waitFor(t, "the first connection to fail", limit, nil, func() bool { return r.State().LastError != "" })
	for i := 1; i <= 3; i++ {
		clock.Advance(time.Minute)
		waitFor(t, "a snapshot stored", limit, nil, func() bool {
			s, err := ob.Stats()
			return err == nil && s.Metrics == int64(i)
		})
	}
	b.start()
	cp := newCapture(t, b)
	clock.Advance(time.Hour)
	waitFor(t, "connection", limit, nil, func() bool { return r.State().Connected })
	ms := cp.waitFind(api.KindMetrics, "the snapshots", 4, nil)
	var prev time.Time
	for i, p := range ms {
		m, err := api.DecodeMetrics([]byte(p))
		if err != nil {
			t.Fatalf("metrics %d: %v", i, err)
		}
		if i < 3 && !m.Time.Equal(start.Add(time.Duration(i+1)*time.Minute)) || m.Time.Before(prev) {
			t.Errorf("metrics %d out of order: %s", i, p)
		}
		if m.WiFi == nil || m.WiFi.Clients != len(fixtureMACs) {
			t.Errorf("metrics %d: %s", i, p)
		}
		prev = m.Time
	}
	waitFor(t, "published snapshots deleted", limit, nil, func() bool {
		s, err := ob.Stats()
		return err == nil && s.Metrics == 0
	})
}

// TestCommands sends commands to a real Reporter: known ones reach the
// handler and their results are published, failures are explained without
// private details, malformed and unknown ones get an error, a command that
// runs too long is answered when its time is up, and the queue is bounded.
func TestCommands(t *testing.T) {
	b := newBroker(t)
	b.start()
	cp := newCapture(t, b)
	ob := openOutbox(t)
	clock := newFakeClock()
	started := make(chan string, 16)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []api.Command
	handler := CommandFunc(func(ctx context.Context, cmd api.Command) error {
		mu.Lock()
		got = append(got, cmd)
		mu.Unlock()
		if cmd.Req == "slow" || cmd.Req == "block" {
			started <- cmd.Req
		}
		switch cmd.Req {
		case "public":
			return fmt.Errorf("test page: %w", PublicError("printer unreachable"))
		case "private":
			return fmt.Errorf("cannot cancel %q (%s) from %s", fixtureJobName, fixtureFileName, fixtureMACs[0])
		case "slow":
			<-ctx.Done()
			return ctx.Err()
		case "block":
			<-release
		case "panic":
			panic("handler bug")
		}
		return nil
	})
	cfg := baseConfig(t, b)
	cfg.Clock, cfg.Commands, cfg.CommandTimeout = clock, handler, 20*time.Second
	src := newFixtureSource(ob)
	cfg.Source = src
	r, err := New(cfg, ob)
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	waitFor(t, "connection", limit, nil, func() bool { return r.State().Connected })
	ctl := client(t, b, "central-cmd", nil)
	send := func(name, payload string) {
		t.Helper()
		if tok := ctl.Publish(api.CommandTopic(site, agent, name), 1, false, payload); !tok.WaitTimeout(limit) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	result := func(req string) api.CommandResult {
		t.Helper()
		p := cp.waitFind(api.KindCommandResult, "result of "+req, 1, func(p string) bool { return strings.Contains(p, `"req":"`+req+`"`) })
		res, err := api.DecodeCommandResult([]byte(p[0]))
		if err != nil {
			t.Fatalf("result %s: %v", p[0], err)
		}
		return res
	}
	expect := func(req string, ok bool, errText string) {
		t.Helper()
		if res := result(req); res.OK != ok || res.Error != errText {
			t.Errorf("result of %s: %+v, want ok %v error %q", req, res, ok, errText)
		}
	}

	send(api.CommandIdentify, `{"req":"id-1","seconds":5}`)
	expect("id-1", true, "")
	mu.Lock()
	if len(got) != 1 || got[0].Name != api.CommandIdentify || got[0].Seconds != 5 {
		t.Errorf("handler got %+v", got)
	}
	mu.Unlock()
	send(api.CommandTestPage, `{"req":"public"}`)
	expect("public", false, "printer unreachable")
	send(api.CommandCancelJobs, `{"req":"private"}`)
	expect("private", false, "failed; see the agent's log")
	send(api.CommandPurgeScans, `{"req":"panic"}`)
	expect("panic", false, "failed; see the agent's log")

	// Refused before the handler.
	send("format-disk", `{"req":"unknown-1"}`)
	expect("unknown-1", false, `invalid command: unknown command`)
	send(api.CommandIdentify, `{"req":"bad-json",`)
	expect("unknown", false, "malformed JSON")
	send(api.CommandTestPage, `{"req":"extra-1","`+fixtureMACs[1]+`":1}`)
	expect("extra-1", false, "invalid command: unknown field")
	send(api.CommandTestPage, `{"req":"sec-1","seconds":3}`)
	expect("sec-1", false, "invalid command: seconds: not allowed for command test-page")

	// refresh is the Reporter's own: status and metrics again.
	statuses := len(cp.find(api.KindStatus, nil))
	send(api.CommandRefresh, `{"req":"refresh-1"}`)
	expect("refresh-1", true, "")
	cp.waitFind(api.KindStatus, "status after refresh", statuses+1, nil)

	// A change of health from the Source is published at the next poll.
	src.setHealth(api.HealthWarn)
	waitFor(t, "the warn status", limit, nil, func() bool {
		clock.Advance(cfg.PollInterval)
		return len(cp.find(api.KindStatus, func(p string) bool { return strings.Contains(p, `"health":"warn"`) })) == 1
	})

	// A command past its time bound is answered, and the next waits for
	// the handler to return.
	send(api.CommandTestPage, `{"req":"slow"}`)
	if req := <-started; req != "slow" {
		t.Fatalf("started %s", req)
	}
	waitFor(t, "the timeout", limit, nil, func() bool {
		clock.Advance(cfg.CommandTimeout)
		return len(cp.find(api.KindCommandResult, func(p string) bool { return strings.Contains(p, `"slow"`) })) > 0
	})
	expect("slow", false, "timed out after 20s")

	// One running, commandQueue waiting, the next refused.
	send(api.CommandTestPage, `{"req":"block"}`)
	if req := <-started; req != "block" {
		t.Fatalf("started %s", req)
	}
	for i := range commandQueue {
		send(api.CommandIdentify, fmt.Sprintf(`{"req":"queued-%d"}`, i))
	}
	send(api.CommandIdentify, `{"req":"one-too-many"}`)
	expect("one-too-many", false, "busy: too many commands waiting")
	close(release)
	expect("block", true, "")
	for i := range commandQueue {
		expect(fmt.Sprintf("queued-%d", i), true, "")
	}
	if s := r.State(); s.RejectedCommands != 5 {
		t.Errorf("rejected commands %d, want 5", s.RejectedCommands)
	}
}

// TestHostileInputs publishes garbage on the ack and cmd topics: nothing
// crashes, each is counted, and delivery goes on.
func TestHostileInputs(t *testing.T) {
	b := newBroker(t)
	b.start()
	cp := newCapture(t, b)
	ce := newCentral(t, b)
	ob := openOutbox(t)
	last := record(t, ob, 1, 20)
	cfg := baseConfig(t, b)
	r, err := New(cfg, ob)
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	ce.waitHigh(last, limit)
	waitFor(t, "the ack", limit, nil, func() bool { return lastAck(t, ob) == last })

	huge := strings.Repeat("9", 1<<20)
	binary := string([]byte{0xff, 0xfe, 0x00, 0x01, '{', 0x80})
	acks := []string{
		`{"upto":` + huge + `}`, binary, `{"upto":5`, `[1,2]`, `{"upto":-1}`, `{"upto":0}`,
		`{"upto":1.5}`, `{"upto":"20"}`, `{"upto":20,"upto":20}`, `{"UPTO":20}`, `null`, ``,
		`{"upto":18446744073709551615}`, `{"upto":21}`, // beyond what was published
	}
	cmds := []struct{ name, payload string }{
		{api.CommandIdentify, `{"req":"` + huge + `"}`}, {api.CommandIdentify, binary},
		{api.CommandTestPage, `{"req":"x","seconds":"ten"}`}, {api.CommandRefresh, `{}`},
		{api.CommandCancelJobs, `{"req":"` + strings.Repeat("a", 65) + `"}`}, {"../../status", `{"req":"r"}`},
		{api.CommandPurgeScans, ``}, {api.CommandIdentify, `{"req":"a","seconds":100000}`},
	}
	ctl := client(t, b, "attacker", nil)
	pub := func(topic, payload string) {
		if tok := ctl.Publish(topic, 1, false, payload); !tok.WaitTimeout(limit) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	for _, p := range acks {
		pub(api.AckTopic(site, agent), p)
	}
	for _, c := range cmds {
		pub(api.Root+"/"+site+"/"+agent+"/cmd/"+c.name, c.payload)
	}
	// "../../status" is not one level: the broker does not route it to
	// cmd/+, so it is neither answered nor counted.
	wantCmds := uint64(len(cmds) - 1)
	waitFor(t, "every hostile input counted", limit, nil, func() bool {
		s := r.State()
		return s.RejectedAcks == uint64(len(acks)) && s.RejectedCommands == wantCmds
	})
	results := cp.waitFind(api.KindCommandResult, "error results", int(wantCmds), nil)
	for _, p := range results {
		res, err := api.DecodeCommandResult([]byte(p))
		if err != nil || res.OK || len(p) > 400 {
			t.Errorf("result %.300s: %v", p, err)
		}
	}
	// Still delivering, and the hostile acks changed nothing.
	if got := lastAck(t, ob); got != last {
		t.Errorf("last ack %d after hostile acks, want %d", got, last)
	}
	last = record(t, ob, 100, 5)
	r.Kick()
	waitFor(t, "delivery after hostile inputs", limit, nil, func() bool { return lastAck(t, ob) == last })
	t.Logf("rejected %d acks and %d commands: %+v", len(acks), wantCmds, r.State())
}

// TestNew checks the configuration.
func TestNew(t *testing.T) {
	ob := openOutbox(t)
	good := Config{MQTT: configs.AgentMQTT{Broker: "tcp://127.0.0.1:1"}, Site: site, Agent: agent, Version: "1.0.0"}
	r, err := New(good, ob)
	if err != nil {
		t.Fatal(err)
	}
	if r.clientID != "mairie-test-pi-1" || r.cfg.Window != DefaultWindow || r.cfg.Batch != DefaultBatch ||
		r.cfg.AckTimeout != DefaultAckTimeout || r.cfg.MetricsInterval != DefaultMetricsInterval {
		t.Errorf("defaults: %s %+v", r.clientID, r.cfg)
	}
	for name, mod := range map[string]func(*Config){
		"site":    func(c *Config) { c.Site = "Mairie" },
		"agent":   func(c *Config) { c.Agent = "" },
		"version": func(c *Config) { c.Version = "1.0 beta" },
		"broker":  func(c *Config) { c.MQTT.Broker = "" },
	} {
		c := good
		mod(&c)
		if _, err := New(c, ob); err == nil {
			t.Errorf("bad %s accepted", name)
		}
	}
	c := good
	c.Batch, c.Window = 1000, 100000
	if r, err := New(c, ob); err != nil || r.cfg.Batch != api.MaxBatchEvents || r.cfg.Window != MaxWindow {
		t.Errorf("bounds: %+v %v", r.cfg, err)
	}
	if _, err := New(good, nil); err == nil {
		t.Error("nil outbox accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run with a cancelled context: %v", err)
	}
	if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, time.Minute
	want := lo
	for n := range 70 {
		if n > 0 {
			want = min(hi, 2*want)
		}
		for range 20 {
			if d := backoff(n, lo, hi); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v not in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestNormalizeStatus(t *testing.T) {
	since := time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	var faults []api.Fault
	for i := range 40 {
		sev := api.SeverityWarn
		if i%10 == 9 {
			sev = api.SeverityFault
		}
		faults = append(faults, api.Fault{Code: fmt.Sprintf("code-%d", i), Device: api.DeviceHost, Severity: sev, Since: since})
	}
	faults = append(faults, faults[0], api.Fault{Code: "Bad Code", Device: api.DeviceHost, Severity: api.SeverityWarn, Since: since})
	h, fs := normalizeStatus(api.HealthOK, faults)
	if h != api.HealthFault || len(fs) != maxFaults {
		t.Fatalf("health %s, %d faults", h, len(fs))
	}
	for i := range 4 {
		if fs[i].Severity != api.SeverityFault {
			t.Errorf("fault %d: %+v, want the severe ones first", i, fs[i])
		}
	}
	if err := (api.Status{Online: true, Time: since.UTC(), Version: "1", Health: h, Faults: fs}).Validate(); err != nil {
		t.Error(err)
	}
	if h, fs := normalizeStatus("", nil); h != api.HealthOK || fs != nil {
		t.Errorf("empty: %s %v", h, fs)
	}
	if h, _ := normalizeStatus(api.HealthWarn, nil); h != api.HealthWarn {
		t.Errorf("source's warn lowered to %s", h)
	}
}

func TestEncodeBatch(t *testing.T) {
	evs := make([]api.Event, api.MaxBatchEvents)
	for i := range evs {
		e := eventFor(uint64(i + 1))
		e.Seq, e.ID, e.Time = uint64(i+1), "01950000-0000-7000-8000-000000000000", time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		e.Type, e.Gesture = api.EventPrintCompleted, ""
		e.Pages, e.Sheets, e.Color, e.Duplex, e.Bytes, e.Source, e.Format =
			new(100000), new(100000), new(true), new(true), new(int64(1<<50)), api.SourcePhone, "application/vnd.relais-test-format+xml"
		evs[i] = e
	}
	b, got, err := encodeBatch(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == len(evs) || len(b) > api.MaxPayloadBytes {
		t.Fatalf("%d events in %d bytes: not split", len(got), len(b))
	}
	back, err := api.DecodeEvents(b)
	if err != nil || len(back) != len(got) || back[len(back)-1].Seq != got[len(got)-1].Seq {
		t.Fatalf("decoded %d events: %v", len(back), err)
	}
	if _, _, err := encodeBatch([]api.Event{{Seq: 1}}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("invalid event: %v", err)
	}
}

func TestDescribeEchoesNothing(t *testing.T) {
	for _, p := range []string{`{"req":"a","` + fixtureMACs[0] + `":1}`, `{"` + fixtureFileName + `":1}`} {
		_, err := api.DecodeCommand(api.CommandIdentify, []byte(p))
		if d := describe(err); err == nil || strings.Contains(d, fixtureMACs[0]) || strings.Contains(d, fixtureFileName) {
			t.Errorf("%s: %q", p, d)
		}
	}
	_, err := api.DecodeCommand("rm -rf "+fixtureFileName, []byte(`{"req":"a"}`))
	if d := describe(err); strings.Contains(d, fixtureFileName) || d != "invalid command: unknown command" {
		t.Errorf("unknown command: %q", d)
	}
}
