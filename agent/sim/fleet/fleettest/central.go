// Package fleettest plays relais-central's side of the wire contract for
// tests that run many agents against a real broker: Central subscribes to
// every agent's status, events, metrics and command results, decodes them
// strictly with central/api, deduplicates events by id and acks each agent
// with {"upto":N}, N the highest seq it has every event up to, after every
// events message (duplicates included), as relais-central's ingest does.
// It keeps what it received for the test to check, and Retained reads the
// broker's retained messages.
package fleettest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
)

// Limit bounds every wait of this package.
const Limit = 30 * time.Second

// Key names an agent.
type Key struct{ Site, Agent string }

// Agent is what Central received from one agent.
type Agent struct {
	Events  map[uint64]api.Event // by seq, as first received
	High    uint64               // every seq up to High received
	Msgs    int                  // events messages
	Dups    int                  // events received again
	Status  *api.Status          // the last status received
	Online  int                  // online statuses received
	Metrics []api.Metrics
	Results []api.CommandResult
}

// Central is a stand-in for relais-central's ingest.
type Central struct {
	t      testing.TB
	broker string
	c      mqtt.Client

	mu     sync.Mutex
	agents map[Key]*Agent
	ids    map[string]Key // every event id received, for uniqueness across agents
	bad    []string
	dirty  map[Key]bool // agents to ack
	change chan struct{}

	wake chan struct{}
	done chan struct{}
	quit chan struct{}
}

// Option changes the MQTT options of Central and Retained.
type Option func(*mqtt.ClientOptions)

// Login connects with a username and password.
func Login(user, password string) Option {
	return func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(password) }
}

// Start connects a Central to broker (such as tcp://127.0.0.1:1883) and
// subscribes; it stops when the test ends.
func Start(t testing.TB, broker string, opts ...Option) *Central {
	t.Helper()
	ce := &Central{t: t, broker: broker, agents: map[Key]*Agent{}, ids: map[string]Key{}, dirty: map[Key]bool{},
		change: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
	ce.c = connect(t, broker, fmt.Sprintf("central-%d", time.Now().UnixNano()), opts)
	for _, kind := range []string{api.KindEvents, api.KindStatus, api.KindMetrics, api.KindCommandResult} {
		tok := ce.c.Subscribe(api.AgentFilter(kind), 1, ce.on)
		if !tok.WaitTimeout(Limit) || tok.Error() != nil {
			t.Fatalf("central: subscribe to %s: %v", kind, tok.Error())
		}
	}
	go ce.acker()
	t.Cleanup(func() {
		close(ce.quit)
		<-ce.done
		ce.c.Disconnect(0)
	})
	return ce
}

func connect(t testing.TB, broker, id string, opts []Option) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(10 * time.Second)
	for _, opt := range opts {
		opt(o)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(Limit) || tok.Error() != nil {
		t.Fatalf("%s: connect to %s: %v", id, broker, tok.Error())
	}
	return c
}

// on takes in one message, on paho's router goroutine.
func (ce *Central) on(_ mqtt.Client, m mqtt.Message) {
	tp, err := api.ParseTopic(m.Topic())
	ce.mu.Lock()
	defer ce.mu.Unlock()
	defer ce.broadcast()
	if err != nil {
		ce.bad = append(ce.bad, err.Error())
		return
	}
	key := Key{tp.Site, tp.Agent}
	ag := ce.agents[key]
	if ag == nil {
		ag = &Agent{Events: map[uint64]api.Event{}}
		ce.agents[key] = ag
	}
	fail := func(err error) { ce.bad = append(ce.bad, fmt.Sprintf("%s: %v", m.Topic(), err)) }
	switch tp.Kind {
	case api.KindEvents:
		es, err := api.DecodeEvents(m.Payload())
		if err != nil {
			fail(err)
			return
		}
		ag.Msgs++
		for _, e := range es {
			ce.take(key, ag, e)
		}
		ce.dirty[key] = true
		select {
		case ce.wake <- struct{}{}:
		default:
		}
	case api.KindStatus:
		st, err := api.DecodeStatus(m.Payload())
		if err != nil {
			fail(err)
			return
		}
		ag.Status = &st
		if st.Online {
			ag.Online++
		}
	case api.KindMetrics:
		mt, err := api.DecodeMetrics(m.Payload())
		if err != nil {
			fail(err)
			return
		}
		ag.Metrics = append(ag.Metrics, mt)
	case api.KindCommandResult:
		r, err := api.DecodeCommandResult(m.Payload())
		if err != nil {
			fail(err)
			return
		}
		ag.Results = append(ag.Results, r)
	}
}

// take records one event; mu is held.
func (ce *Central) take(key Key, ag *Agent, e api.Event) {
	if prev, ok := ag.Events[e.Seq]; ok {
		if prev.ID != e.ID {
			ce.bad = append(ce.bad, fmt.Sprintf("%v: seq %d came with ids %s and %s", key, e.Seq, prev.ID, e.ID))
		}
		ag.Dups++
		return
	}
	if other, ok := ce.ids[e.ID]; ok {
		ce.bad = append(ce.bad, fmt.Sprintf("%v: id %s already came from %v under another seq", key, e.ID, other))
		return
	}
	ce.ids[e.ID] = key
	ag.Events[e.Seq] = e
	for {
		if _, ok := ag.Events[ag.High+1]; !ok {
			break
		}
		ag.High++
	}
}

// acker publishes the acks of the agents that sent events, coalescing
// what arrives while it publishes.
func (ce *Central) acker() {
	defer close(ce.done)
	for {
		select {
		case <-ce.quit:
			return
		case <-ce.wake:
		}
		ce.mu.Lock()
		acks := map[Key]uint64{}
		for k := range ce.dirty {
			if h := ce.agents[k].High; h > 0 {
				acks[k] = h
			}
		}
		clear(ce.dirty)
		ce.mu.Unlock()
		var toks []mqtt.Token
		for k, h := range acks {
			b, err := api.Encode(api.Ack{Upto: h})
			if err != nil {
				panic(err) // h > 0
			}
			toks = append(toks, ce.c.Publish(api.AckTopic(k.Site, k.Agent), 1, false, b))
		}
		for _, tok := range toks {
			tok.WaitTimeout(Limit)
		}
	}
}

func (ce *Central) broadcast() {
	close(ce.change)
	ce.change = make(chan struct{})
}

// Agent returns a copy of what Central received from one agent.
func (ce *Central) Agent(site, agent string) Agent {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	ag := ce.agents[Key{site, agent}]
	if ag == nil {
		return Agent{}
	}
	cp := *ag
	cp.Events = make(map[uint64]api.Event, len(ag.Events))
	for k, v := range ag.Events {
		cp.Events[k] = v
	}
	if ag.Status != nil {
		st := *ag.Status
		cp.Status = &st
	}
	cp.Metrics = slices.Clone(ag.Metrics)
	cp.Results = slices.Clone(ag.Results)
	return cp
}

// Distinct returns the number of distinct events received from all agents.
func (ce *Central) Distinct() int {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return len(ce.ids)
}

// Bad returns the problems seen: payloads or topics the contract refuses,
// a seq with two ids, an id under two seqs.
func (ce *Central) Bad() []string {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return slices.Clone(ce.bad)
}

// WaitFor waits until cond holds, checking it after every message
// received, for at most d, and reports whether it does.
func (ce *Central) WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ce.mu.Lock()
		changed := ce.change
		ce.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// Command publishes command name with request id req to an agent.
func (ce *Central) Command(site, agent, name, req string) {
	ce.t.Helper()
	b, err := api.Encode(api.Command{Name: name, Req: req})
	if err != nil {
		ce.t.Fatal(err)
	}
	if tok := ce.c.Publish(api.CommandTopic(site, agent, name), 1, false, b); !tok.WaitTimeout(Limit) || tok.Error() != nil {
		ce.t.Fatalf("publish %s: %v", name, tok.Error())
	}
}

// Retained returns the retained messages whose topics match filter, topic
// to payload, read by a new subscription: a marker message published after
// subscribing comes back after every retained one.
func Retained(t testing.TB, broker, filter string, opts ...Option) map[string]string {
	t.Helper()
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	marker := "probe/" + id
	msgs := make(chan mqtt.Message, 1024)
	c := connect(t, broker, id, opts)
	defer c.Disconnect(0)
	h := func(_ mqtt.Client, m mqtt.Message) { msgs <- m }
	for _, tp := range []string{filter, marker} {
		if tok := c.Subscribe(tp, 1, h); !tok.WaitTimeout(Limit) || tok.Error() != nil {
			t.Fatalf("probe: subscribe to %s: %v", tp, tok.Error())
		}
	}
	c.Publish(marker, 1, false, "x")
	found := map[string]string{}
	deadline := time.NewTimer(Limit)
	defer deadline.Stop()
	for {
		select {
		case m := <-msgs:
			if m.Topic() == marker {
				return found
			}
			if m.Retained() {
				found[m.Topic()] = string(m.Payload())
			}
		case <-deadline.C:
			t.Fatal("probe: the marker message did not come back")
		}
	}
}
