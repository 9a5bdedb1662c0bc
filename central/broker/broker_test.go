package broker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/report"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/configs"
)

const (
	site  = "mairie-test"
	agent = "pi-1"
)

func agentState(t testing.TB, st store.Store, site, agent string) store.AgentState {
	t.Helper()
	s, err := st.AgentState(context.Background(), site, agent)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return s
}

func rejections(t testing.TB, st store.Store) map[string]int64 {
	t.Helper()
	r, err := st.Rejections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAgentEndToEnd runs a real agent Reporter, with a real outbox, against
// the embedded broker: its events reach the store exactly once and the
// outbox learns they are delivered, its birth is the agent's status, a
// command goes to its handler and its result to the store, and its
// goodbye marks it offline.
func TestAgentEndToEnd(t *testing.T) {
	st := openStore(t)
	var changes counter
	in := newIngester(t, st, ingest.Options{OnChange: func(s, a string) { changes.add(s + "/" + a) }})
	b := startBroker(t, st, in, Options{})
	pw := addAgent(t, st, site, agent)

	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	const n = 300
	for i := range n {
		e := api.Event{Type: api.EventButtonPressed, Gesture: api.GestureShort}
		if i%3 == 0 {
			e = api.Event{Type: api.EventPrintCompleted, Pages: new(1 + i%5), Source: api.SourcePC}
		}
		if _, err := ob.RecordEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	var cmdMu sync.Mutex
	var cmds []api.Command
	r, err := report.New(report.Config{
		MQTT: configs.AgentMQTT{Broker: "tcp://" + b.Addr().String(), Username: Username(site, agent), PasswordFile: passwordFile(t, pw)},
		Site: site, Agent: agent, Version: "1.2.3-test",
		Batch: 50, Window: 120, AckTimeout: 5 * time.Second, PollInterval: 50 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond, KeepAlive: 5 * time.Second,
		Commands: report.CommandFunc(func(ctx context.Context, c api.Command) error {
			cmdMu.Lock()
			cmds = append(cmds, c)
			cmdMu.Unlock()
			return nil
		}),
		Logger: testLogger(t),
	}, ob)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	waitFor(t, "every event committed and acked in the outbox", limit, func() bool {
		s, err := ob.Stats()
		return err == nil && s.LastAck == n && s.Depth == 0
	})
	as := agentState(t, st, site, agent)
	if as.Upto != n || as.Events != n || !as.Registered {
		t.Errorf("store: upto %d, %d events, registered %v; want %d exactly once", as.Upto, as.Events, as.Registered, n)
	}
	if !as.Status.Online || as.Status.Version != "1.2.3-test" || as.StatusAt.IsZero() {
		t.Errorf("status after the birth: %+v", as.Status)
	}
	if s := r.State(); !s.Connected || s.LastAck != n || s.RejectedAcks != 0 {
		t.Errorf("reporter state %+v", s)
	}
	if s := in.Stats(); s.Inserted != n || s.StoreErrors != 0 || s.Rejected[ingest.ReasonTopic]+s.Rejected[ingest.ReasonInvalid] != 0 {
		t.Errorf("ingest stats %+v", s)
	}
	if changes.get(site+"/"+agent) == 0 {
		t.Error("OnChange was not called")
	}
	if ret := b.srv.Topics.Retained.GetAll(); len(ret) > 0 {
		for topic := range ret {
			if strings.HasPrefix(topic, api.Root) {
				t.Errorf("the broker retained %s: the store is the retained state", topic)
			}
		}
	}

	// A command round trip: recorded, sent, run, answered, stored.
	cmd := store.Command{Req: "req-identify-1", Site: site, Agent: agent, Name: api.CommandIdentify, By: "tech", At: time.Now()}
	if err := st.AddCommand(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if err := b.SendCommand(context.Background(), site, agent, api.Command{Name: api.CommandIdentify, Req: cmd.Req, Seconds: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the command's result in the store", limit, func() bool {
		cs, err := st.Commands(context.Background(), site, agent, 5)
		return err == nil && len(cs) == 1 && !cs[0].Done.IsZero()
	})
	cs, _ := st.Commands(context.Background(), site, agent, 5)
	cmdMu.Lock()
	if !cs[0].OK || len(cmds) != 1 || cmds[0].Req != cmd.Req || cmds[0].Seconds != 3 {
		t.Errorf("command %+v, handler got %+v", cs[0], cmds)
	}
	cmdMu.Unlock()
	if err := b.SendCommand(context.Background(), site, "pi-absent", api.Command{Name: api.CommandRefresh, Req: "r"}); !errors.Is(err, ErrOffline) {
		t.Errorf("command to an agent not connected: %v", err)
	}
	if err := b.SendCommand(context.Background(), site, agent, api.Command{Name: "reboot", Req: "r"}); err == nil {
		t.Error("an unknown command was sent")
	}

	// Stopping the agent publishes its offline status.
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	waitFor(t, "the offline status", limit, func() bool { return !agentState(t, st, site, agent).Status.Online })
}

// TestWillAndTakeover: a second connection of an agent replaces the first
// without its will; a connection that dies publishes the agent's will
// (offline); another agent's connection with the same client id replaces
// nothing.
func TestWillAndTakeover(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	b := startBroker(t, st, in, Options{})
	addr := b.Addr().String()
	pw := addAgent(t, st, site, agent)
	pw2 := addAgent(t, st, site, "pi-2")
	will := func(o *paho.ClientOptions) { o.SetBinaryWill(api.StatusTopic(site, agent), api.OfflineWill(), 1, true) }
	birth, err := api.Encode(api.Status{Online: true, Time: time.Now().UTC().Truncate(time.Millisecond), Version: "1.0.0", Health: api.HealthOK})
	if err != nil {
		t.Fatal(err)
	}

	c1 := dial(t, addr, "same-id", Username(site, agent), pw, will)
	if err := c1.publish(api.StatusTopic(site, agent), birth); err != nil {
		t.Fatal(err)
	}
	if !agentState(t, st, site, agent).Status.Online {
		t.Fatal("birth not committed before its PUBACK")
	}
	// A new connection of the agent takes c1 over: c1's will is cancelled.
	raw := rawConnect(t, addr, Username(site, agent), pw, api.StatusTopic(site, agent), api.OfflineWill(), 60)
	c1.waitLost("taken over")
	if !agentState(t, st, site, agent).Status.Online {
		t.Fatal("the will of the connection taken over was recorded")
	}
	// The new connection dies (closed without DISCONNECT): its will is
	// recorded.
	raw.Close()
	waitFor(t, "the will recorded", limit, func() bool { return !agentState(t, st, site, agent).Status.Online })

	// Takeover: c3 replaces c2; c2's will is not recorded.
	c2 := dial(t, addr, "first", Username(site, agent), pw, will)
	if err := c2.publish(api.StatusTopic(site, agent), birth); err != nil {
		t.Fatal(err)
	}
	c3 := dial(t, addr, "second", Username(site, agent), pw, will)
	c2.waitLost("taken over")
	if err := c3.publish(api.EventsTopic(site, agent), eventsPayload(t, agent, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if !agentState(t, st, site, agent).Status.Online {
		t.Error("the will of the connection taken over was recorded")
	}
	if b.takeovers.Load() != 2 {
		t.Errorf("%d takeovers, want 2", b.takeovers.Load())
	}

	// Another agent with the same client id: both stay connected.
	c4 := dial(t, addr, "second", Username(site, "pi-2"), pw2, nil)
	if err := c4.publish(api.EventsTopic(site, "pi-2"), eventsPayload(t, "pi-2", 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c3.publish(api.EventsTopic(site, agent), eventsPayload(t, agent, 2, 1)); err != nil {
		t.Errorf("pi-1 after pi-2 connected with its client id: %v", err)
	}
	// Events are acknowledged once queued, and committed right after.
	waitFor(t, "the events of both agents committed", limit, func() bool {
		return agentState(t, st, site, agent).Upto == 2 && agentState(t, st, site, "pi-2").Upto == 1
	})
}

// TestLoginRefused: a wrong password, an unknown agent, a username that
// is no agent, and a will on another agent's topic are refused.
func TestLoginRefused(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	b := startBroker(t, st, in, Options{})
	addr := b.Addr().String()
	pw := addAgent(t, st, site, agent)
	pw2 := addAgent(t, st, site, "pi-2")

	cases := []struct {
		name, user, pw string
		will           func(*paho.ClientOptions)
	}{
		{"wrong password", Username(site, agent), pw2, nil},
		{"empty password", Username(site, agent), "", nil},
		{"unknown agent", Username(site, "pi-9"), pw, nil},
		{"not site/agent", site + "-" + agent, pw, nil},
		{"will on another agent's status", Username(site, agent), pw, func(o *paho.ClientOptions) {
			o.SetBinaryWill(api.StatusTopic(site, "pi-2"), api.OfflineWill(), 1, true)
		}},
		{"will saying online", Username(site, agent), pw, func(o *paho.ClientOptions) {
			o.SetWill(api.StatusTopic(site, agent), `{"online":true,"ts":"2026-03-10T09:00:00Z","version":"1","health":"ok"}`, 1, true)
		}},
	}
	for _, c := range cases {
		if _, err := tryDial(t, addr, "x", c.user, c.pw, c.will); err == nil {
			t.Errorf("%s: connected", c.name)
		}
	}
	if r := rejections(t, st); r[ingest.ReasonTopic] != 1 || r[ingest.ReasonInvalid] != 1 {
		t.Errorf("rejections %v: want the two bad wills counted", r)
	}
	// The right password still works, also from the cache.
	for range 2 {
		c := dial(t, addr, "x", Username(site, agent), pw, nil)
		c.c.Disconnect(0)
	}
	// A new password replaces the old one at once, cache or not.
	h, err := HashSecret("new-password-for-pi-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAgentSecret(context.Background(), site, agent, h); err != nil {
		t.Fatal(err)
	}
	if _, err := tryDial(t, addr, "x", Username(site, agent), pw, nil); err == nil {
		t.Error("the old password still works")
	}
	dial(t, addr, "x", Username(site, agent), "new-password-for-pi-1", nil)
}

// TestACL: an agent may publish only its own agent topics and subscribe
// only to its own ack and commands; anything else is refused, counted
// and ends the connection.
func TestACL(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	b := startBroker(t, st, in, Options{})
	addr := b.Addr().String()
	pw := addAgent(t, st, site, agent)
	addAgent(t, st, site, "pi-2")
	user := Username(site, agent)

	c := dial(t, addr, "a", user, pw, nil)
	for _, f := range []string{api.AckTopic(site, agent), api.CommandFilter(site, agent)} {
		if code := c.subscribe(f); code != 1 {
			t.Errorf("subscribe %s: code %#x, want QoS 1", f, code)
		}
	}
	for _, topic := range []string{api.StatusTopic(site, agent), api.MetricsTopic(site, agent)} {
		payload := api.OfflineWill()
		if strings.HasSuffix(topic, api.KindMetrics) {
			payload = []byte(`{"ts":"2026-03-10T09:00:00Z"}`)
		}
		if err := c.publish(topic, payload); err != nil {
			t.Errorf("publish %s: %v", topic, err)
		}
	}
	// Its own ack comes back after its events.
	if err := c.publish(api.EventsTopic(site, agent), eventsPayload(t, agent, 1, 3)); err != nil {
		t.Fatal(err)
	}
	if m := c.next("ack"); m.Topic() != api.AckTopic(site, agent) || string(m.Payload()) != `{"upto":3}` {
		t.Errorf("got %s %s, want the ack of 3", m.Topic(), m.Payload())
	}

	refused := []struct {
		name      string
		subscribe bool
		topic     string
	}{
		{"publish another agent's events", false, api.EventsTopic(site, "pi-2")},
		{"publish another agent's status", false, api.StatusTopic(site, "pi-2")},
		{"publish its own ack", false, api.AckTopic(site, agent)},
		{"publish a command", false, api.CommandTopic(site, agent, api.CommandIdentify)},
		{"publish outside the contract", false, "relais/v1/" + site},
		{"subscribe to another agent's ack", true, api.AckTopic(site, "pi-2")},
		{"subscribe to another agent's commands", true, api.CommandFilter(site, "pi-2")},
		{"subscribe to everything", true, "#"},
		{"subscribe to every agent's events", true, api.AgentFilter(api.KindEvents)},
		{"subscribe to its own events", true, api.EventsTopic(site, agent)},
	}
	for i, r := range refused {
		c := dial(t, addr, "a", user, pw, nil)
		if r.subscribe {
			if code := c.subscribe(r.topic); code <= 2 {
				t.Errorf("%s: granted QoS %d", r.name, code)
			}
		} else {
			c.publish(r.topic, []byte(`{"upto":1}`)) // the PUBACK does not come
		}
		c.waitLost(r.name)
		if got := rejections(t, st)[ingest.ReasonTopic]; got != int64(i+1) {
			t.Errorf("%s: %d refusals counted, want %d", r.name, got, i+1)
		}
	}
	if agentState(t, st, site, "pi-2").StatusAt.IsZero() == false {
		t.Error("pi-2's status was written by pi-1")
	}
}

// TestTooLarge: a payload over the contract's limit is acknowledged and
// counted; a packet over the broker's limit ends the connection and is
// counted too.
func TestTooLarge(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	b := startBroker(t, st, in, Options{})
	pw := addAgent(t, st, site, agent)
	c := dial(t, b.Addr().String(), "a", Username(site, agent), pw, nil)

	over := []byte(`{"events":[` + strings.Repeat(" ", api.MaxPayloadBytes) + `]}`)
	if err := c.publish(api.EventsTopic(site, agent), over); err != nil {
		t.Fatalf("a payload over the contract: %v", err)
	}
	// A status is refused before its PUBACK; events just after.
	if err := c.publish(api.StatusTopic(site, agent), over); err != nil {
		t.Fatalf("a payload over the contract: %v", err)
	}
	waitFor(t, "both counted", limit, func() bool { return rejections(t, st)[ingest.ReasonTooLarge] == 2 })
	c.c.Publish(api.EventsTopic(site, agent), 1, false, make([]byte, MaxPacketBytes))
	c.waitLost("packet over MaxPacketBytes")
	waitFor(t, "the oversized packet counted", limit, func() bool { return rejections(t, st)[ingest.ReasonTooLarge] == 3 })
}
