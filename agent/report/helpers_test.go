package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/configs"
)

const (
	site  = "mairie-test"
	agent = "pi-1"
	// limit bounds every wait of the tests for a condition.
	limit = 60 * time.Second
)

// Fixtures that must never appear in anything the agent publishes: they
// are given to the code under test (job and client data behind the
// metrics, errors of command handlers, hostile payloads).
var (
	fixtureJobName  = "Attestation CAF Mme Dupont"
	fixtureFileName = "releve-bancaire-mars.pdf"
	fixtureMACs     = []string{"b8:27:eb:4f:12:9a", "dc:a6:32:01:02:03", "3c:22:fb:aa:bb:cc"}
	macRe           = regexp.MustCompile(`[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}`)
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// signal wakes every waiter when something changed.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel closed at the next broadcast.
func (s *signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// waitFor waits until cond holds, re-checking it whenever sig fires (nil:
// every 10 ms), for at most d.
func waitFor(t testing.TB, what string, d time.Duration, sig *signal, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	var tick <-chan time.Time
	if sig == nil {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		var changed <-chan struct{}
		if sig != nil {
			changed = sig.C() // before cond, so that no change is missed
		}
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-tick:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// broker is a real mosquitto on a fixed loopback port, without
// persistence, that a test can stop and start again.
type broker struct {
	t    testing.TB
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
}

func newBroker(t testing.TB) *broker { return newBrokerNoDelay(t, true) }

// newBrokerNoDelay is newBroker with mosquitto's set_tcp_nodelay, off by
// default in mosquitto: small packets (acks) then wait for Nagle's
// algorithm and delayed ACKs, which the benchmark shows.
func newBrokerNoDelay(t testing.TB, nodelay bool) *broker {
	t.Helper()
	b := &broker{t: t, bin: peertest.Program(t, "mosquitto", "mosquitto")}
	port := peertest.FreePort(t)
	b.addr = fmt.Sprintf("127.0.0.1:%d", port)
	b.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"+
		"log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"+
		"max_queued_messages 100000\nmax_inflight_messages 100\nset_tcp_nodelay %v\n", port, nodelay)
	if err := os.WriteFile(b.conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *broker) url() string { return "tcp://" + b.addr }

func (b *broker) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	if err := peertest.StartAndWait(b.t, b.cmd, " running", 20*time.Second); err != nil {
		b.t.Fatalf("mosquitto: %v", err)
	}
}

func (b *broker) stop() {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
}

// client connects a paho client that plays central or a test peer, with
// automatic reconnection; subscribe runs on every connection.
func client(t testing.TB, b *broker, id string, subscribe func(mqtt.Client)) mqtt.Client {
	t.Helper()
	up := make(chan struct{}, 1)
	opts := mqtt.NewClientOptions().AddBroker(b.url()).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetKeepAlive(5 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) {
			if subscribe != nil {
				subscribe(c)
			}
			select {
			case up <- struct{}{}:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	c.Connect()
	select {
	case <-up:
	case <-time.After(limit):
		t.Fatalf("%s: not connected to %s", id, b.addr)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// subscribeWait subscribes and waits for the SUBACK.
func subscribeWait(c mqtt.Client, topic string, qos byte, h mqtt.MessageHandler) {
	tok := c.Subscribe(topic, qos, h)
	tok.WaitTimeout(limit)
}

// central plays relais-central for one agent: it decodes every events
// message, deduplicates by id, and acks {"upto":N} with N the highest seq
// it has every seq up to, after every message (duplicates too, so that an
// agent that lost an ack learns it again).
type central struct {
	t      testing.TB
	c      mqtt.Client
	sig    signal
	mu     sync.Mutex
	ids    map[uint64]string // seq → id
	byID   map[string]uint64
	high   uint64 // every seq up to high received
	most   uint64 // highest seq received
	msgs   int
	bytes  int
	dups   int
	bad    []string
	noAck  bool
	ackReq chan struct{}
	// light makes central read only seq and id, for the benchmark, so
	// that the strict decoding of real central is not what is measured.
	light bool
}

func newCentral(t testing.TB, b *broker) *central {
	t.Helper()
	ce := &central{t: t, ids: map[uint64]string{}, byID: map[string]uint64{}, ackReq: make(chan struct{}, 1)}
	ce.c = client(t, b, "central", func(c mqtt.Client) {
		subscribeWait(c, api.AgentFilter(api.KindEvents), 1, ce.onEvents)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go ce.acker(ctx, done)
	t.Cleanup(func() { cancel(); <-done })
	return ce
}

func (ce *central) onEvents(_ mqtt.Client, m mqtt.Message) {
	var es []api.Event
	var err error
	if ce.light {
		var b struct {
			Events []api.Event `json:"events"`
		}
		err = json.Unmarshal(m.Payload(), &b)
		es = b.Events
	} else {
		es, err = api.DecodeEvents(m.Payload())
	}
	ce.mu.Lock()
	ce.msgs++
	ce.bytes += len(m.Payload())
	if err != nil {
		ce.bad = append(ce.bad, err.Error())
	}
	for _, e := range es {
		switch id, ok := ce.ids[e.Seq]; {
		case ok && id == e.ID:
			ce.dups++
		case ok:
			ce.bad = append(ce.bad, fmt.Sprintf("seq %d came with ids %s and %s", e.Seq, id, e.ID))
		case ce.byID[e.ID] != 0:
			ce.bad = append(ce.bad, fmt.Sprintf("id %s came with seqs %d and %d", e.ID, ce.byID[e.ID], e.Seq))
		default:
			ce.ids[e.Seq] = e.ID
			ce.byID[e.ID] = e.Seq
			ce.most = max(ce.most, e.Seq)
		}
	}
	for ce.ids[ce.high+1] != "" {
		ce.high++
	}
	ce.mu.Unlock()
	select {
	case ce.ackReq <- struct{}{}:
	default:
	}
	ce.sig.broadcast()
}

// acker publishes the current ack after every message received, coalescing
// those that arrive while it publishes: acks go out in batches.
func (ce *central) acker(ctx context.Context, done chan struct{}) {
	defer close(done)
	topic := api.AckTopic(site, agent)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ce.ackReq:
		}
		ce.mu.Lock()
		high, noAck := ce.high, ce.noAck
		ce.mu.Unlock()
		if high == 0 || noAck {
			continue
		}
		b, _ := api.Encode(api.Ack{Upto: high})
		ce.c.Publish(topic, 1, false, b).WaitTimeout(5 * time.Second)
	}
}

func (ce *central) setNoAck(v bool) {
	ce.mu.Lock()
	ce.noAck = v
	ce.mu.Unlock()
	if !v {
		select {
		case ce.ackReq <- struct{}{}:
		default:
		}
	}
}

type centralStats struct {
	high            uint64
	distinct        int
	msgs, dups      int
	bytes           int
	bad             []string
	minSeq, maxSeen uint64
}

func (ce *central) stats() centralStats {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return centralStats{high: ce.high, distinct: len(ce.ids), msgs: ce.msgs, bytes: ce.bytes, dups: ce.dups,
		bad: slices.Clone(ce.bad), maxSeen: ce.most}
}

// waitHigh waits until central has every seq up to n.
func (ce *central) waitHigh(n uint64, d time.Duration) {
	ce.t.Helper()
	waitFor(ce.t, fmt.Sprintf("central to have seqs 1..%d", n), d, &ce.sig, func() bool { return ce.stats().high >= n })
}

// capture records every message on relais/# and, when the test ends,
// checks that nothing the agent published (status, events, metrics,
// cmd-result) holds a MAC address or a fixture job or file name.
type capture struct {
	t    testing.TB
	sig  signal
	mu   sync.Mutex
	msgs []captured
}

type captured struct {
	topic   string
	payload string
	kind    string
}

func newCapture(t testing.TB, b *broker) *capture {
	t.Helper()
	cp := &capture{t: t}
	client(t, b, "capture", func(c mqtt.Client) {
		subscribeWait(c, "relais/#", 1, cp.on)
	})
	t.Cleanup(cp.check)
	return cp
}

func (cp *capture) on(_ mqtt.Client, m mqtt.Message) {
	kind := ""
	if tp, err := api.ParseTopic(m.Topic()); err == nil {
		kind = tp.Kind
	}
	cp.mu.Lock()
	cp.msgs = append(cp.msgs, captured{m.Topic(), string(m.Payload()), kind})
	cp.mu.Unlock()
	cp.sig.broadcast()
}

// find returns the messages of a kind whose payload satisfies match.
func (cp *capture) find(kind string, match func(string) bool) []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []string
	for _, m := range cp.msgs {
		if m.kind == kind && (match == nil || match(m.payload)) {
			out = append(out, m.payload)
		}
	}
	return out
}

func (cp *capture) waitFind(kind, what string, n int, match func(string) bool) []string {
	cp.t.Helper()
	var got []string
	waitFor(cp.t, what, limit, &cp.sig, func() bool { got = cp.find(kind, match); return len(got) >= n })
	return got
}

func (cp *capture) check() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	agentKinds := []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult}
	n := 0
	for _, m := range cp.msgs {
		if !slices.Contains(agentKinds, m.kind) {
			continue
		}
		n++
		if mac := macRe.FindString(m.payload); mac != "" {
			cp.t.Errorf("privacy: MAC address %s published on %s: %.200s", mac, m.topic, m.payload)
		}
		for _, s := range []string{fixtureJobName, fixtureFileName} {
			if strings.Contains(m.payload, s) {
				cp.t.Errorf("privacy: %q published on %s", s, m.topic)
			}
		}
	}
	if n == 0 {
		cp.t.Errorf("privacy: nothing captured from the agent")
	}
	cp.t.Logf("privacy: %d payloads published by the agent checked: no MAC address, job or file name", n)
}

// retained returns the retained payload of topic, read by a new
// subscription; "" if there is none. A marker message published after
// subscribing comes back after any retained message, in order.
func retained(t testing.TB, b *broker, topic string) string {
	t.Helper()
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	marker := "probe/" + id
	msgs := make(chan mqtt.Message, 8)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.url()).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(limit) || tok.Error() != nil {
		t.Fatalf("probe: connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	h := func(_ mqtt.Client, m mqtt.Message) { msgs <- m }
	for _, tp := range []string{topic, marker} {
		if tok := c.Subscribe(tp, 1, h); !tok.WaitTimeout(limit) || tok.Error() != nil {
			t.Fatalf("probe: subscribe: %v", tok.Error())
		}
	}
	c.Publish(marker, 1, false, "x")
	found := ""
	for {
		select {
		case m := <-msgs:
			if m.Topic() == marker {
				return found
			}
			if m.Retained() {
				found = string(m.Payload())
			}
		case <-time.After(limit):
			t.Fatal("probe: marker message did not come back")
		}
	}
}

// waitRetained waits until the retained status satisfies match.
func waitRetained(t testing.TB, b *broker, what string, match func(api.Status) bool) api.Status {
	t.Helper()
	var st api.Status
	waitFor(t, what, limit, nil, func() bool {
		s, err := api.DecodeStatus([]byte(retained(t, b, api.StatusTopic(site, agent))))
		st = s
		return err == nil && match(s)
	})
	return st
}

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c   *fakeClock
	ch  chan time.Time
	at  time.Time
	off bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.ch <- c.now
		t.off = true
	} else {
		c.timers = append(c.timers, t)
	}
	return t
}

// Advance moves the clock and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.off:
		case !t.at.After(c.now):
			t.ch <- c.now
			t.off = true
		default:
			keep = append(keep, t)
		}
	}
	clear(c.timers[len(keep):])
	c.timers = keep
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.off
	t.off = true
	return was
}

// openOutbox opens an outbox in a new directory.
func openOutbox(t testing.TB) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

// fixtureJob is what the print queue knows of a job: the name, file and
// client address must stay on the Pi.
type fixtureJob struct {
	name, file, clientMAC string
	pages                 int
	color, duplex         bool
}

func jobFor(n uint64) fixtureJob {
	return fixtureJob{
		name: fixtureJobName, file: fixtureFileName, clientMAC: fixtureMACs[n%uint64(len(fixtureMACs))],
		pages: 1 + int(n%7), color: n%3 == 0, duplex: n%2 == 0,
	}
}

// eventFor is the event the agent records for the n-th fixture action:
// counts only.
func eventFor(n uint64) api.Event {
	if n%10 == 0 {
		return api.Event{Type: api.EventButtonPressed, Gesture: api.GestureShort}
	}
	j := jobFor(n)
	sheets := j.pages
	if j.duplex {
		sheets = (j.pages + 1) / 2
	}
	return api.Event{Type: api.EventPrintCompleted, Pages: new(j.pages), Sheets: new(sheets),
		Color: new(j.color), Duplex: new(j.duplex), Source: api.SourcePC, Format: "application/pdf",
		Bytes: new(int64(1000 * j.pages))}
}

// fixtureSource is a Source over the outbox's faults and fixture data that
// holds personal details the Reporter must not publish.
type fixtureSource struct {
	ob       *outbox.Outbox
	mu       sync.Mutex
	stations []string // MAC addresses of associated Wi-Fi clients
	jobs     []fixtureJob
	health   api.Health
}

func newFixtureSource(ob *outbox.Outbox) *fixtureSource {
	return &fixtureSource{ob: ob, stations: fixtureMACs, jobs: []fixtureJob{jobFor(1), jobFor(2)}}
}

func (s *fixtureSource) Status() (api.Health, []api.Fault) {
	fs, _ := s.ob.OpenFaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health, fs
}

func (s *fixtureSource) Metrics() api.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return api.Metrics{
		Printer: &api.Printer{State: api.PrinterIdle, Markers: []api.Marker{{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 42}}},
		Queue:   &api.Queue{Pending: len(s.jobs)},
		WiFi:    &api.WiFi{Up: true, SSID: "Mairie-Public", Channel: 6, Clients: len(s.stations)},
	}
}

func (s *fixtureSource) setHealth(h api.Health) {
	s.mu.Lock()
	s.health = h
	s.mu.Unlock()
}

// baseConfig is a Reporter configuration for b with short delays.
func baseConfig(t testing.TB, b *broker) Config {
	return Config{
		MQTT: configs.AgentMQTT{Broker: b.url()},
		Site: site, Agent: agent, Version: "1.2.3-test",
		AckTimeout: 3 * time.Second, PollInterval: 50 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		KeepAlive: 2 * time.Second, Logger: testLogger(t),
	}
}

// run starts r and stops it when the test ends; the returned function
// stops it earlier and returns Run's error.
func run(t testing.TB, r *Reporter) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(limit):
				err = fmt.Errorf("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// record records n fixture events and returns the last seq.
func record(t testing.TB, ob *outbox.Outbox, from, n uint64) uint64 {
	t.Helper()
	var last uint64
	for i := from; i < from+n; i++ {
		e, err := ob.RecordEvent(eventFor(i))
		if err != nil {
			t.Fatal(err)
		}
		last = e.Seq
	}
	return last
}

func lastAck(t testing.TB, ob *outbox.Outbox) uint64 {
	t.Helper()
	s, err := ob.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.LastAck
}
