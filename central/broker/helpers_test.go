package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/store"
)

// limit bounds every wait of the tests for a condition.
const limit = 60 * time.Second

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

// openStore opens a real SQLite store in a new directory.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// addAgent registers an agent with a new password and returns it.
func addAgent(t testing.TB, st store.Store, site, agent string) string {
	t.Helper()
	pw, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	h, err := HashSecret(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAgent(context.Background(), store.Agent{Site: site, Agent: agent, SecretHash: h, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return pw
}

// passwordFile writes pw to a file as an agent keeps it.
func passwordFile(t testing.TB, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mqtt-password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newIngester returns an Ingester over st, closed when the test ends
// (after the broker, registered later, is closed).
func newIngester(t testing.TB, st store.Store, o ingest.Options) *ingest.Ingester {
	t.Helper()
	o.Store = st
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	in, err := ingest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// startBroker runs an embedded broker on a loopback port until the test
// ends.
func startBroker(t testing.TB, st store.Store, in *ingest.Ingester, o Options) *Broker {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	o.Store, o.Ingester = st, in
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(context.Background()) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return b
}

// waitFor waits until cond holds, checking every 10 ms, for at most d.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// mqttClient is a raw paho client playing an agent (or anyone), with no
// automatic reconnection: a refused or closed connection shows.
type mqttClient struct {
	t    testing.TB
	c    paho.Client
	lost chan error
	msgs chan paho.Message
}

// dial connects to addr (host:port) as user; it fails the test unless
// the connection is accepted, see tryDial.
func dial(t testing.TB, addr, clientID, user, pw string, will func(*paho.ClientOptions)) *mqttClient {
	t.Helper()
	c, err := tryDial(t, addr, clientID, user, pw, will)
	if err != nil {
		t.Fatalf("%s: connect: %v", user, err)
	}
	return c
}

func tryDial(t testing.TB, addr, clientID, user, pw string, will func(*paho.ClientOptions)) (*mqttClient, error) {
	t.Helper()
	mc := &mqttClient{t: t, lost: make(chan error, 1), msgs: make(chan paho.Message, 1024)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetUsername(user).SetPassword(pw).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(limit).SetOrderMatters(true).
		SetProtocolVersion(4). // else paho tries 3.1 after a refusal: two logins
		SetConnectionLostHandler(func(_ paho.Client, err error) { mc.lost <- err }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { mc.msgs <- m })
	if will != nil {
		will(opts)
	}
	mc.c = paho.NewClient(opts)
	tok := mc.c.Connect()
	if !tok.WaitTimeout(limit) {
		return nil, fmt.Errorf("no CONNACK in %v", limit)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { mc.c.Disconnect(0) })
	return mc, nil
}

// subscribe subscribes and returns the SUBACK code.
func (mc *mqttClient) subscribe(filter string) byte {
	mc.t.Helper()
	tok := mc.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(limit) {
		mc.t.Fatalf("subscribe %s: no SUBACK", filter)
	}
	if err := tok.Error(); err != nil {
		return 0x80
	}
	for _, code := range tok.(*paho.SubscribeToken).Result() { // keyed without $share/group/
		return code
	}
	mc.t.Fatalf("subscribe %s: no result", filter)
	return 0
}

// publish publishes at QoS 1 and waits for the PUBACK.
func (mc *mqttClient) publish(topic string, payload []byte) error {
	mc.t.Helper()
	tok := mc.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(limit) {
		return fmt.Errorf("publish %s: no PUBACK in %v", topic, limit)
	}
	return tok.Error()
}

// next returns the next message received.
func (mc *mqttClient) next(what string) paho.Message {
	mc.t.Helper()
	select {
	case m := <-mc.msgs:
		return m
	case <-time.After(limit):
		mc.t.Fatalf("no message: %s", what)
		return nil
	}
}

// waitLost waits for the connection to be closed by the broker.
func (mc *mqttClient) waitLost(what string) {
	mc.t.Helper()
	select {
	case <-mc.lost:
	case <-time.After(limit):
		mc.t.Fatalf("the broker did not close the connection: %s", what)
	}
}

// eventsPayload encodes events from seq, n of them, with fixed ids per
// agent and seq so that a resend is recognised.
func eventsPayload(t testing.TB, agent string, seq uint64, n int) []byte {
	t.Helper()
	b, err := api.EncodeEvents(testEvents(agent, seq, n)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testEvents(agent string, seq uint64, n int) []api.Event {
	evs := make([]api.Event, n)
	var h uint32
	for _, c := range agent {
		h = h*31 + uint32(c)
	}
	for i := range evs {
		s := seq + uint64(i)
		evs[i] = api.Event{
			Seq: s, ID: fmt.Sprintf("0195a3c2-5e00-7000-8000-%04x%08x", h&0xffff, s),
			Time: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), Type: api.EventButtonPressed, Gesture: api.GestureShort,
		}
	}
	return evs
}

// counter counts calls per key.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
	c.mu.Unlock()
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}
