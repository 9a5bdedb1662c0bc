package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

const (
	site  = "mairie-test"
	agent = "pi-1"
)

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	t0    = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	me    = Identity{Site: site, Agent: agent}
)

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

// clock is a settable func() time.Time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func newIngester(t testing.TB, o Options) *Ingester {
	t.Helper()
	if o.Store == nil {
		o.Store = openStore(t)
	}
	if o.Now == nil {
		o.Now = (&clock{now: t0}).Now
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// events returns n print events numbered from seq.
func events(seq uint64, n int) []api.Event {
	evs := make([]api.Event, n)
	for i := range evs {
		evs[i] = api.Event{
			Seq: seq + uint64(i), ID: uuid.Must(uuid.NewV7()).String(), Time: t0,
			Type: api.EventPrintCompleted, Pages: new(2), Source: api.SourcePC,
		}
	}
	return evs
}

func encodeEvents(t testing.TB, evs ...api.Event) []byte {
	t.Helper()
	b, err := api.EncodeEvents(evs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode(t testing.TB, p api.Payload) []byte {
	t.Helper()
	b, err := api.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func state(t testing.TB, st store.Store, site, agent string) store.AgentState {
	t.Helper()
	s, err := st.AgentState(context.Background(), site, agent)
	if err != nil {
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

// TestEventsAck commits events, acks them, acks a duplicate again, and
// calls OnChange only when something was inserted.
func TestEventsAck(t *testing.T) {
	st := openStore(t)
	var mu sync.Mutex
	var changes []string
	in := newIngester(t, Options{Store: st, OnChange: func(s, a string) {
		mu.Lock()
		changes = append(changes, s+"/"+a)
		mu.Unlock()
	}})
	ctx := context.Background()
	topic := api.EventsTopic(site, agent)
	evs := events(1, 3)

	// seq 2 and 3 alone: committed, but seq 1 is missing, so no ack.
	r, err := in.Handle(ctx, me, topic, encodeEvents(t, evs[1:]...))
	if err != nil || r != nil {
		t.Fatalf("events 2-3: reply %+v, err %v; want no ack yet", r, err)
	}
	r, err = in.Handle(ctx, me, topic, encodeEvents(t, evs[0]))
	if err != nil || r == nil || r.Upto != 3 || r.Topic != api.AckTopic(site, agent) || string(r.Payload) != `{"upto":3}` {
		t.Fatalf("event 1: reply %+v, err %v; want the ack of 3", r, err)
	}
	if _, err := api.DecodeAck(r.Payload); err != nil {
		t.Errorf("the ack breaks the contract: %v", err)
	}
	// Sent again (a lost ack): acked again, nothing inserted.
	r, err = in.Handle(ctx, me, topic, encodeEvents(t, evs...))
	if err != nil || r == nil || r.Upto != 3 {
		t.Fatalf("duplicate: reply %+v, err %v; want the ack of 3", r, err)
	}
	s := in.Stats()
	if s.Inserted != 3 || s.Duplicates != 3 || s.Transactions != 3 || s.Messages != 3 {
		t.Errorf("stats %+v", s)
	}
	if as := state(t, st, site, agent); as.Upto != 3 || as.Events != 3 {
		t.Errorf("store: upto %d, %d events", as.Upto, as.Events)
	}
	mu.Lock()
	if len(changes) != 2 || changes[0] != site+"/"+agent {
		t.Errorf("OnChange calls %v, want 2 (the duplicate changes nothing)", changes)
	}
	mu.Unlock()
	// Without an identity (external broker) the topic names the agent.
	r, err = in.Handle(ctx, Identity{}, api.EventsTopic(site, "pi-2"), encodeEvents(t, events(1, 1)...))
	if err != nil || r == nil || r.Upto != 1 || r.Topic != api.AckTopic(site, "pi-2") {
		t.Fatalf("unauthenticated: reply %+v, err %v", r, err)
	}
}

// TestStatusMetricsResult stores the other kinds.
func TestStatusMetricsResult(t *testing.T) {
	st := openStore(t)
	clk := &clock{now: t0}
	in := newIngester(t, Options{Store: st, Now: clk.Now})
	ctx := context.Background()

	since := t0.Add(-time.Hour)
	status := api.Status{Online: true, Time: t0, Version: "1.0.0", Health: api.HealthFault,
		Faults: []api.Fault{{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: since}}}
	if r, err := in.Handle(ctx, me, api.StatusTopic(site, agent), encode(t, status)); err != nil || r != nil {
		t.Fatalf("status: %+v, %v", r, err)
	}
	metrics := api.Metrics{Time: t0, Queue: &api.Queue{Pending: 2}}
	if _, err := in.Handle(ctx, me, api.MetricsTopic(site, agent), encode(t, metrics)); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	as := state(t, st, site, agent)
	if !as.Status.Online || as.Status.Health != api.HealthFault || len(as.Status.Faults) != 1 || !as.StatusAt.Equal(t0) {
		t.Errorf("status stored: %+v at %v", as.Status, as.StatusAt)
	}
	if as.Metrics.Queue == nil || as.Metrics.Queue.Pending != 2 {
		t.Errorf("metrics stored: %+v", as.Metrics)
	}
	open := true
	if fs, err := st.Faults(ctx, store.FaultQuery{Site: site, Agent: agent, Open: &open}); err != nil || len(fs) != 1 || fs[0].Code != "media-empty" {
		t.Errorf("open faults %+v, %v", fs, err)
	}

	// The will closes nothing.
	clk.mu.Lock()
	clk.now = t0.Add(time.Minute)
	clk.mu.Unlock()
	if _, err := in.Handle(ctx, me, api.StatusTopic(site, agent), api.OfflineWill()); err != nil {
		t.Fatalf("will: %v", err)
	}
	if as := state(t, st, site, agent); as.Status.Online {
		t.Errorf("after the will: %+v", as.Status)
	}

	// A command result finds its command; an unknown one is refused.
	cmd := store.Command{Req: "req-1", Site: site, Agent: agent, Name: api.CommandIdentify, By: "tech", At: t0}
	if err := st.AddCommand(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	res := api.CommandResult{Req: "req-1", OK: false, Error: "no LED"}
	if _, err := in.Handle(ctx, me, api.CommandResultTopic(site, agent), encode(t, res)); err != nil {
		t.Fatalf("cmd-result: %v", err)
	}
	cs, err := st.Commands(ctx, site, agent, 10)
	if err != nil || len(cs) != 1 || cs[0].Done.IsZero() || cs[0].OK || cs[0].Error != "no LED" {
		t.Errorf("commands %+v, %v", cs, err)
	}
	_, err = in.Handle(ctx, me, api.CommandResultTopic(site, agent), encode(t, api.CommandResult{Req: "req-unknown", OK: true}))
	if Reason(err) != ReasonInvalid {
		t.Errorf("result of an unknown command: %v", err)
	}
}

// TestRejections refuses every kind of bad message, by reason, counts
// each in the store and in Stats, and commits nothing of them.
func TestRejections(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, Options{Store: st})
	ctx := context.Background()
	good := encodeEvents(t, events(1, 1)...)
	huge := []byte(`{"seq":1,"id":"` + strings.Repeat("a", api.MaxPayloadBytes) + `"}`)
	tooMany := encodeEvents(t, events(1, api.MaxBatchEvents)...)
	tooMany = []byte(strings.Replace(string(tooMany), `{"events":[`, `{"events":[`+string(encodeEvents(t, events(1000, 1)...))+`,`, 1))
	other := Identity{Site: site, Agent: "pi-2"}
	cases := []struct {
		name    string
		from    Identity
		topic   string
		payload []byte
		reason  string
	}{
		{"another agent's topic", other, api.EventsTopic(site, agent), good, ReasonTopic},
		{"an ack from an agent", me, api.AckTopic(site, agent), []byte(`{"upto":1}`), ReasonTopic},
		{"a command from an agent", me, api.CommandTopic(site, agent, api.CommandIdentify), []byte(`{"req":"x"}`), ReasonTopic},
		{"no topic of the contract", me, "relais/v2/" + site + "/" + agent + "/events", good, ReasonTopic},
		{"wildcard", Identity{}, "relais/v1/+/" + agent + "/events", good, ReasonTopic},
		{"bad id, unauthenticated", Identity{}, "relais/v1/Mairie/pi/events", good, ReasonTopic},
		{"too large", me, api.EventsTopic(site, agent), huge, ReasonTooLarge},
		{"batch too long", me, api.EventsTopic(site, agent), tooMany, ReasonTooLarge},
		{"malformed", me, api.StatusTopic(site, agent), []byte(`{"online":tru`), ReasonMalformed},
		{"not UTF-8", me, api.MetricsTopic(site, agent), []byte("{\"ts\":\"\xff\"}"), ReasonMalformed},
		{"invalid event", me, api.EventsTopic(site, agent), []byte(`{"seq":0,"id":"x","ts":"2026-03-10T09:00:00Z","type":"print.completed"}`), ReasonInvalid},
		{"unknown field", me, api.StatusTopic(site, agent), []byte(`{"online":false,"user":"Mme Dupont"}`), ReasonInvalid},
		{"invalid result", me, api.CommandResultTopic(site, agent), []byte(`{"req":"","ok":true}`), ReasonInvalid},
		{"empty", me, api.MetricsTopic(site, agent), nil, ReasonMalformed},
	}
	want := map[string]int64{}
	for _, c := range cases {
		r, err := in.Handle(ctx, c.from, c.topic, c.payload)
		var re *RejectedError
		if !errors.As(err, &re) || re.Reason != c.reason || r != nil {
			t.Errorf("%s: reply %+v, err %v; want refused as %s", c.name, r, err, c.reason)
			continue
		}
		if strings.Contains(err.Error(), "aaaaaaaa") || strings.Contains(err.Error(), "Dupont") {
			t.Errorf("%s: the error quotes the payload: %v", c.name, err)
		}
		want[c.reason]++
	}
	in.Reject(ctx, me, ReasonTopic, errors.New("subscribed to another agent's commands"))
	want[ReasonTopic]++
	got := rejections(t, st)
	for _, r := range Reasons() {
		if got[r] != want[r] || in.Stats().Rejected[r] != uint64(want[r]) {
			t.Errorf("%s: %d counted in the store, %d in Stats, want %d", r, got[r], in.Stats().Rejected[r], want[r])
		}
	}
	if _, err := st.AgentState(ctx, site, agent); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused messages left a trace of the agent: %v", err)
	}
}

// TestGroupCommit holds the only worker in OnChange while messages queue
// up: the events of one agent that waited are committed in one
// transaction, in order with its other messages, each message gets its
// answer, and a full queue makes Submit wait (here: give up with its
// context).
func TestGroupCommit(t *testing.T) {
	st := openStore(t)
	hold := make(chan struct{})
	held := make(chan string, 1)
	var once sync.Once
	in := newIngester(t, Options{Store: st, Workers: 1, Queue: 12, OnChange: func(s, a string) {
		once.Do(func() {
			held <- a
			<-hold
		})
	}})
	ctx := context.Background()
	type answer struct {
		name  string
		reply *Reply
		err   error
	}
	answers := make(chan answer, 32)
	submit := func(name string, from Identity, topic string, payload []byte) {
		t.Helper()
		err := in.Submit(ctx, from, topic, payload, func(r *Reply, err error) { answers <- answer{name, r, err} })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	a, b := me, Identity{Site: site, Agent: "pi-2"}
	submit("a1", a, api.EventsTopic(a.Site, a.Agent), encodeEvents(t, events(1, 1)...))
	if got := <-held; got != a.Agent {
		t.Fatalf("held by %s", got)
	}
	// The worker is held after committing a1 (which took one slot until
	// then). Queue 11 more: a2-a5 (a's status in the middle), b1-b6.
	evsA := events(2, 4)
	submit("a2", a, api.EventsTopic(a.Site, a.Agent), encodeEvents(t, evsA[0]))
	submit("a3", a, api.EventsTopic(a.Site, a.Agent), encodeEvents(t, evsA[1]))
	submit("a-status", a, api.StatusTopic(a.Site, a.Agent), encode(t, api.Status{Online: true, Time: t0, Version: "1.0.0", Health: api.HealthOK}))
	submit("a4", a, api.EventsTopic(a.Site, a.Agent), encodeEvents(t, evsA[2]))
	submit("a5", a, api.EventsTopic(a.Site, a.Agent), encodeEvents(t, evsA[3]))
	for i, e := range events(1, 6) {
		submit(fmt.Sprintf("b%d", i+1), b, api.EventsTopic(b.Site, b.Agent), encodeEvents(t, e))
	}
	// Full: Submit waits for room, here until its context ends.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := in.Submit(cctx, a, api.MetricsTopic(a.Site, a.Agent), encode(t, api.Metrics{Time: t0}), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Submit to a full queue with a cancelled context: %v", err)
	}
	if q := in.Stats().Queued; q != 12 {
		t.Errorf("queued %d, want 12", q)
	}
	close(hold)

	got := map[string]answer{}
	var order []string
	for range 12 {
		an := <-answers
		got[an.name] = an
		order = append(order, an.name)
	}
	for name, an := range got {
		if an.err != nil {
			t.Errorf("%s: %v", name, an.err)
		}
	}
	for _, name := range []string{"a2", "a3"} {
		if r := got[name].reply; r == nil || r.Upto != 3 {
			t.Errorf("%s: reply %+v, want upto 3 (a2 and a3 together)", name, r)
		}
	}
	for _, name := range []string{"a4", "a5"} {
		if r := got[name].reply; r == nil || r.Upto != 5 {
			t.Errorf("%s: reply %+v, want upto 5", name, r)
		}
	}
	for i := 1; i <= 6; i++ {
		if r := got[fmt.Sprintf("b%d", i)].reply; r == nil || r.Upto != 6 {
			t.Errorf("b%d: reply %+v, want upto 6 (b1-b6 together)", i, r)
		}
	}
	// a's messages in order; a came back to the queue after b.
	wantOrder := "a1 a2 a3 a-status a4 a5"
	var aOrder []string
	for _, n := range order {
		if n[0] == 'a' {
			aOrder = append(aOrder, n)
		}
	}
	if strings.Join(aOrder, " ") != wantOrder {
		t.Errorf("a's answers in order %v, want %s", aOrder, wantOrder)
	}
	// a1, a2+a3, a4+a5, b1-b6: 4 transactions for 11 events messages.
	if s := in.Stats(); s.Transactions != 4 || s.Inserted != 11 || s.Messages != 12 {
		t.Errorf("stats %+v, want 4 transactions for 11 events in 11 messages", s)
	}
	if as := state(t, st, a.Site, a.Agent); as.Upto != 5 || !as.Status.Online {
		t.Errorf("a: %+v", as)
	}
}

// TestClose: Close waits for the accepted messages; later ones fail.
func TestClose(t *testing.T) {
	st := openStore(t)
	in, err := New(Options{Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := in.Submit(context.Background(), me, api.EventsTopic(site, agent), encodeEvents(t, events(1, 1)...),
		func(_ *Reply, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	in.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("message accepted before Close: %v", err)
		}
	default:
		t.Error("Close returned before the accepted message was done")
	}
	if _, err := in.Handle(context.Background(), me, api.EventsTopic(site, agent), encodeEvents(t, events(2, 1)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a store")
	}
}

// TestStoreFailure: when the store fails, the message is not refused (not
// counted) but fails with an error the broker turns into a retry.
func TestStoreFailure(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, Options{Store: st})
	st.Close()
	for _, topic := range []string{api.EventsTopic(site, agent), api.StatusTopic(site, agent)} {
		payload := encodeEvents(t, events(1, 1)...)
		if topic == api.StatusTopic(site, agent) {
			payload = api.OfflineWill()
		}
		_, err := in.Handle(context.Background(), me, topic, payload)
		if err == nil || Reason(err) != "" {
			t.Errorf("%s with the store closed: %v", topic, err)
		}
	}
	if s := in.Stats(); s.StoreErrors != 2 {
		t.Errorf("stats %+v", s)
	}
}
