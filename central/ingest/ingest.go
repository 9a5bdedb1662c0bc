// Package ingest turns the MQTT messages of Relais agents into store writes.
// An Ingester checks each message's topic against the contract (and against
// the agent the broker authenticated, when there is one), decodes its payload
// strictly with the api decoders, and commits it: events with store.Ingest
// (answered by the ack {"upto":N} to publish, duplicates included), status
// with SetStatus, metrics with SetMetrics, command results with CommandDone.
// Every message it refuses is counted in the store by reason (too-large,
// malformed, invalid, topic) and never retried. Messages wait in a bounded
// queue, one FIFO per agent so that each agent's messages are committed in
// the order they arrived, served by a few workers: a full queue makes Submit
// wait (back-pressure), nothing is dropped, and the events messages of one
// agent that queued up while its previous transaction ran are committed
// together in the next one (group commit, without any added delay).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// Rejection reasons, as counted by store.Rejected.
const (
	ReasonTooLarge  = "too-large" // payload over api.MaxPayloadBytes, or a batch over api.MaxBatchEvents
	ReasonMalformed = "malformed" // not one well-formed UTF-8 JSON value
	ReasonInvalid   = "invalid"   // well-formed but breaks the contract, or answers no known command
	ReasonTopic     = "topic"     // not a topic of the contract, not one an agent publishes, or another agent's
)

// Reasons returns every rejection reason.
func Reasons() []string {
	return []string{ReasonTooLarge, ReasonMalformed, ReasonInvalid, ReasonTopic}
}

// Defaults of Options.
const (
	DefaultWorkers      = 4
	DefaultQueue        = 1024
	DefaultMergeEvents  = store.MaxIngest
	DefaultStoreTimeout = 30 * time.Second
)

// takeLimit is the most messages a worker takes from one agent's queue at a
// time, so that one busy agent does not hold a worker for long.
const takeLimit = 64

// ErrClosed is returned by Submit and Handle after Close.
var ErrClosed = errors.New("ingest: closed")

// Identity is the agent a message comes from, as the broker authenticated
// it. The zero Identity means that none was given: the message came through
// an external broker whose own ACL restricted the topic.
type Identity struct {
	Site, Agent string
}

// IsZero reports whether id is the zero Identity.
func (id Identity) IsZero() bool { return id == Identity{} }

func (id Identity) String() string { return id.Site + "/" + id.Agent }

// Reply is a message to publish in answer to one that was committed: the
// ack of an agent's events, at QoS 1, not retained.
type Reply struct {
	Topic   string // api.AckTopic(site, agent)
	Payload []byte // {"upto":N}
	Upto    uint64
}

// RejectedError is the error of a message that breaks the contract. It was
// counted in the store under Reason; sending it again cannot succeed.
type RejectedError struct {
	Reason string // one of the Reason constants
	Err    error  // what is wrong; it never quotes the payload
}

func (e *RejectedError) Error() string { return "ingest: refused (" + e.Reason + "): " + e.Err.Error() }

func (e *RejectedError) Unwrap() error { return e.Err }

// Reason returns the rejection reason of err, or "" if err is not a
// *RejectedError.
func Reason(err error) string {
	var re *RejectedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// Options configures an Ingester.
type Options struct {
	Store store.Store
	// Now is the clock that dates what is stored; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnChange, if set, is called after a change of an agent (events
	// inserted, status, metrics, command result) is committed, at most
	// once per group of messages committed together. It runs on a worker
	// and must return promptly.
	OnChange func(site, agent string)
	// Workers is how many store calls may run at once; 0 means
	// DefaultWorkers.
	Workers int
	// Queue bounds the messages accepted and not yet committed; Submit
	// waits for room beyond it. 0 means DefaultQueue.
	Queue int
	// MergeEvents bounds the events of one agent committed in one
	// store.Ingest call when several messages wait; 0 means
	// DefaultMergeEvents, the most store.Ingest takes.
	MergeEvents int
	// StoreTimeout bounds each store call; 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
}

// Stats are the Ingester's counters since New.
type Stats struct {
	Messages     uint64            // messages submitted
	Rejected     map[string]uint64 // messages refused, by reason
	Transactions uint64            // store.Ingest calls
	Inserted     uint64            // events inserted
	Duplicates   uint64            // events already stored
	StoreErrors  uint64            // store calls that failed
	Queued       int               // messages waiting now
}

// Ingester validates and commits agents' messages. Its methods are safe for
// concurrent use.
type Ingester struct {
	st       store.Store
	now      func() time.Time
	log      *slog.Logger
	onChange func(site, agent string)
	merge    int
	timeout  time.Duration

	slots   chan struct{}    // one per message accepted and not done
	ready   chan *agentQueue // queues with work and no worker
	closing chan struct{}    // closed by Close
	pending sync.WaitGroup   // messages accepted and not done
	workers sync.WaitGroup

	mu     sync.Mutex
	queues map[string]*agentQueue // guarded by mu
	closed bool                   // guarded by mu
	once   sync.Once

	messages, transactions, inserted, duplicates, storeErrors atomic.Uint64
	rejected                                                  [4]atomic.Uint64 // by index in Reasons()
	logged                                                    [4]atomic.Uint64
}

// agentQueue is the FIFO of one agent's messages (or of the messages whose
// topic names no agent, under the key "").
type agentQueue struct {
	key       string
	items     []*item // guarded by Ingester.mu
	scheduled bool    // in ready or taken by a worker; guarded by Ingester.mu
}

// item is one submitted message.
type item struct {
	site    string // the agent the message is counted against: the
	agent   string // authenticated one, else the topic's, else none
	topic   api.Topic
	bad     *RejectedError // set when the topic was refused at Submit
	payload []byte
	done    func(*Reply, error)
}

// New returns an Ingester writing to o.Store and starts its workers; Close
// stops them.
func New(o Options) (*Ingester, error) {
	if o.Store == nil {
		return nil, errors.New("ingest: no store")
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.MergeEvents <= 0 {
		o.MergeEvents = DefaultMergeEvents
	}
	o.MergeEvents = min(max(o.MergeEvents, api.MaxBatchEvents), store.MaxIngest)
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	in := &Ingester{
		st:       o.Store,
		now:      o.Now,
		log:      o.Logger.With("part", "ingest"),
		onChange: o.OnChange,
		merge:    o.MergeEvents,
		timeout:  o.StoreTimeout,
		slots:    make(chan struct{}, o.Queue),
		// At most Queue queues hold an item, so sends never block.
		ready:   make(chan *agentQueue, o.Queue),
		closing: make(chan struct{}),
		queues:  map[string]*agentQueue{},
	}
	for range o.Workers {
		in.workers.Go(in.work)
	}
	return in, nil
}

// Handle submits a message and waits until it is committed or refused. It
// returns the reply to publish (the ack of events, when the agent's
// watermark is above 0), or a *RejectedError for a message that breaks the
// contract, or another error when the store failed (the message was not
// committed; the sender should send it again later). If ctx ends first,
// Handle returns its error, and the message is still committed.
func (in *Ingester) Handle(ctx context.Context, from Identity, topic string, payload []byte) (*Reply, error) {
	type result struct {
		r   *Reply
		err error
	}
	ch := make(chan result, 1)
	if err := in.Submit(ctx, from, topic, payload, func(r *Reply, err error) { ch <- result{r, err} }); err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res.r, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Submit queues a message and returns once it is accepted, waiting for
// room in the queue while it is full, or fails with ctx's error or
// ErrClosed. done, if not nil, is called exactly once for an accepted
// message, from a worker, after the message was committed or refused, with Handle's
// results; it must return promptly. Messages of one agent are processed in
// the order of the Submit calls. The payload must not be modified
// afterwards. from, when not zero, is the agent the broker authenticated:
// a topic of another agent is refused.
func (in *Ingester) Submit(ctx context.Context, from Identity, topic string, payload []byte, done func(*Reply, error)) error {
	if done == nil {
		done = func(*Reply, error) {}
	}
	it := &item{site: from.Site, agent: from.Agent, payload: payload, done: done}
	t, err := CheckTopic(from, topic)
	if err != nil {
		it.bad = &RejectedError{Reason: ReasonTopic, Err: err}
	} else {
		it.topic = t
	}
	if from.IsZero() {
		it.site, it.agent = t.Site, t.Agent // empty if the topic did not parse
	}
	key := ""
	if it.site != "" || it.agent != "" {
		key = it.site + "/" + it.agent
	}
	select {
	case in.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-in.closing:
		return ErrClosed
	}
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		<-in.slots
		return ErrClosed
	}
	in.messages.Add(1)
	in.pending.Add(1)
	q := in.queues[key]
	if q == nil {
		q = &agentQueue{key: key}
		in.queues[key] = q
	}
	q.items = append(q.items, it)
	if !q.scheduled {
		q.scheduled = true
		in.ready <- q
	}
	in.mu.Unlock()
	return nil
}

// CheckTopic parses topic and checks that an agent may publish on it: one
// of the kinds agents publish (status, events, metrics, cmd-result), and,
// when from is not zero, one of that agent's own topics. Errors are
// counted under ReasonTopic.
func CheckTopic(from Identity, topic string) (api.Topic, error) {
	t, err := api.ParseTopic(topic)
	if err != nil {
		return api.Topic{}, err
	}
	switch t.Kind {
	case api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult:
	default:
		return t, fmt.Errorf("agents do not publish on %s", t.Kind)
	}
	if !from.IsZero() && (t.Site != from.Site || t.Agent != from.Agent) {
		return t, fmt.Errorf("agent %s published for another agent", from)
	}
	return t, nil
}

// Reject counts a message that the broker refused itself (a publication
// or subscription outside the agent's topics) under reason.
func (in *Ingester) Reject(ctx context.Context, from Identity, reason string, err error) {
	in.count(ctx, from.Site, from.Agent, &RejectedError{Reason: reason, Err: err})
}

// Close stops accepting messages, waits until every accepted one is done,
// and stops the workers.
func (in *Ingester) Close() error {
	in.once.Do(func() {
		in.mu.Lock()
		in.closed = true
		close(in.closing)
		in.mu.Unlock()
		in.pending.Wait()
		close(in.ready)
		in.workers.Wait()
	})
	return nil
}

// Stats returns the counters.
func (in *Ingester) Stats() Stats {
	s := Stats{
		Messages:     in.messages.Load(),
		Rejected:     map[string]uint64{},
		Transactions: in.transactions.Load(),
		Inserted:     in.inserted.Load(),
		Duplicates:   in.duplicates.Load(),
		StoreErrors:  in.storeErrors.Load(),
		Queued:       len(in.slots),
	}
	for i, r := range Reasons() {
		s.Rejected[r] = in.rejected[i].Load()
	}
	return s
}

// work serves queues with work until ready is closed.
func (in *Ingester) work() {
	for q := range in.ready {
		in.mu.Lock()
		n := min(len(q.items), takeLimit)
		items := q.items[:n:n]
		q.items = q.items[n:]
		in.mu.Unlock()

		in.process(items)

		in.mu.Lock()
		if len(q.items) > 0 {
			in.ready <- q // to the back: other agents come first
		} else {
			q.scheduled = false
			q.items = nil
			delete(in.queues, q.key)
		}
		in.mu.Unlock()
		for range items {
			<-in.slots
			in.pending.Done()
		}
	}
}

// process commits the messages of one agent in order: a run of events
// messages in as few store.Ingest calls as MergeEvents allows, a metrics
// snapshot only when no newer one follows in items.
func (in *Ingester) process(items []*item) {
	changed := false
	var site, agent string
	var run []*item // events messages decoded, not yet committed
	var runEvents [][]api.Event
	flush := func() {
		if len(run) > 0 {
			if in.commitEvents(run, runEvents) {
				changed = true
			}
			run, runEvents = run[:0], runEvents[:0]
		}
	}
	nEvents := 0
	for i, it := range items {
		if it.bad != nil {
			in.count(context.Background(), it.site, it.agent, it.bad)
			it.done(nil, it.bad)
			continue
		}
		site, agent = it.site, it.agent
		if it.topic.Kind == api.KindEvents {
			evs, err := api.DecodeEvents(it.payload)
			if err != nil {
				in.refuse(it, err)
				continue
			}
			if nEvents+len(evs) > in.merge {
				flush()
				nEvents = 0
			}
			run = append(run, it)
			runEvents = append(runEvents, evs)
			nEvents += len(evs)
			continue
		}
		flush()
		nEvents = 0
		if it.topic.Kind == api.KindMetrics && newerMetrics(items[i+1:]) {
			// A newer snapshot of the same agent follows: this one would
			// be overwritten at once. It is validated all the same.
			if _, err := api.DecodeMetrics(it.payload); err != nil {
				in.refuse(it, err)
			} else {
				it.done(nil, nil)
			}
			continue
		}
		if in.commitOther(it) {
			changed = true
		}
	}
	flush()
	if changed && in.onChange != nil {
		in.onChange(site, agent)
	}
}

func newerMetrics(items []*item) bool {
	for _, it := range items {
		if it.bad == nil && it.topic.Kind == api.KindMetrics {
			return true
		}
	}
	return false
}

// commitEvents commits the events of run, one message per element of evs,
// in one store.Ingest call, and answers every message with the agent's new
// watermark. It reports whether events were inserted.
func (in *Ingester) commitEvents(run []*item, evs [][]api.Event) bool {
	t := run[0].topic
	all := evs[0]
	if len(run) > 1 {
		// store.Ingest inserts an id given twice (a message sent again
		// while the first waited) once.
		all = slices.Concat(evs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.timeout)
	res, err := in.st.Ingest(ctx, t.Site, t.Agent, all, in.now())
	cancel()
	in.transactions.Add(1)
	if err != nil {
		in.storeErrors.Add(1)
		in.log.Error("committing events", "site", t.Site, "agent", t.Agent, "events", len(all), "err", err)
		err = fmt.Errorf("ingest: committing events: %w", err)
		for _, it := range run {
			it.done(nil, err)
		}
		return false
	}
	in.inserted.Add(uint64(res.Inserted))
	in.duplicates.Add(uint64(res.Duplicates))
	var reply *Reply
	if res.Upto > 0 {
		reply = &Reply{
			Topic:   api.AckTopic(t.Site, t.Agent),
			Payload: []byte(`{"upto":` + strconv.FormatUint(res.Upto, 10) + `}`),
			Upto:    res.Upto,
		}
	}
	for _, it := range run {
		it.done(reply, nil)
	}
	return res.Inserted > 0
}

// commitOther decodes and commits a status, metrics or cmd-result message.
// It reports whether something was stored.
func (in *Ingester) commitOther(it *item) bool {
	t := it.topic
	var write func(context.Context) error
	switch t.Kind {
	case api.KindStatus:
		s, err := api.DecodeStatus(it.payload)
		if err != nil {
			in.refuse(it, err)
			return false
		}
		write = func(ctx context.Context) error { return in.st.SetStatus(ctx, t.Site, t.Agent, s, in.now()) }
	case api.KindMetrics:
		m, err := api.DecodeMetrics(it.payload)
		if err != nil {
			in.refuse(it, err)
			return false
		}
		write = func(ctx context.Context) error { return in.st.SetMetrics(ctx, t.Site, t.Agent, m, in.now()) }
	case api.KindCommandResult:
		r, err := api.DecodeCommandResult(it.payload)
		if err != nil {
			in.refuse(it, err)
			return false
		}
		write = func(ctx context.Context) error { return in.st.CommandDone(ctx, t.Site, t.Agent, r, in.now()) }
	default: // CheckTopic let through only the kinds above
		in.refuse(it, fmt.Errorf("%w: agents do not publish on %s", api.ErrBadTopic, t.Kind))
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.timeout)
	err := write(ctx)
	cancel()
	switch {
	case err == nil:
		it.done(nil, nil)
		return true
	case t.Kind == api.KindCommandResult && errors.Is(err, store.ErrNotFound):
		re := &RejectedError{Reason: ReasonInvalid, Err: errors.New("result of a command that central did not send")}
		in.count(context.Background(), t.Site, t.Agent, re)
		it.done(nil, re)
		return false
	}
	in.storeErrors.Add(1)
	in.log.Error("committing "+t.Kind, "site", t.Site, "agent", t.Agent, "err", err)
	it.done(nil, fmt.Errorf("ingest: committing %s: %w", t.Kind, err))
	return false
}

// Classify returns the rejection reason of an error of the api decoders
// or of api.ParseTopic: ReasonTooLarge, ReasonMalformed, ReasonTopic, and
// ReasonInvalid for any other.
func Classify(err error) string {
	switch {
	case errors.Is(err, api.ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, api.ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, api.ErrBadTopic):
		return ReasonTopic
	}
	return ReasonInvalid
}

// refuse counts a payload the decoders refused and answers its message.
func (in *Ingester) refuse(it *item, err error) {
	re := &RejectedError{Reason: Classify(err), Err: err}
	in.count(context.Background(), it.site, it.agent, re)
	it.done(nil, re)
}

// count records a rejection in the store and the counters, and logs it the
// 1st, 2nd, 4th, 8th... time of its reason, so that a flood of bad input
// cannot flood the log.
func (in *Ingester) count(ctx context.Context, site, agent string, re *RejectedError) {
	i := slices.Index(Reasons(), re.Reason)
	if i < 0 { // not one of ours: counted as what the broker refuses
		i = slices.Index(Reasons(), ReasonTopic)
		re = &RejectedError{Reason: ReasonTopic, Err: re.Err}
	}
	in.rejected[i].Add(1)
	if c := in.logged[i].Add(1); c&(c-1) == 0 {
		in.log.Warn("refused a message", "site", site, "agent", agent, "reason", re.Reason, "err", re.Err, "count", c)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.timeout)
	defer cancel()
	if err := in.st.Rejected(ctx, site, agent, re.Reason, in.now()); err != nil {
		in.storeErrors.Add(1)
		in.log.Error("counting a refused message", "reason", re.Reason, "err", err)
	}
}
