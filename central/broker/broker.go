// Package broker connects relais-central to its agents over MQTT, in one of
// two ways. Broker is an embedded mochi-mqtt server: each agent logs in as
// {site}/{agent} with its own password (argon2id hashes in the store, see
// HashSecret), may publish only its own status, events, metrics and
// cmd-result topics and subscribe only to its own ack and cmd topics, and
// every message it publishes is handed to an ingest.Ingester inside the
// broker (a status, metrics or result is committed before the broker's
// PUBACK; events are acknowledged by central's ack once committed). The
// store, not the broker, keeps each agent's retained status and will.
// Client is a paho client of
// an external broker (Mosquitto, EMQX) whose ACL does the same checks (see
// configs/mosquitto.acl): it shares the agents' messages with the other
// replicas of central through $share/relais-central subscriptions. Both
// publish the acks of committed events and send commands (SendCommand).
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/store"
)

// Defaults of Options.
const (
	DefaultMaxConnections = 20000
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxKeepAlive   = 5 * time.Minute
)

// Bounds of the embedded broker.
const (
	// MaxPacketBytes bounds an MQTT packet: the largest payload of the
	// contract with room for its topic and properties. A publication a
	// little over the contract reaches the Ingester and is counted as
	// too-large; a larger packet ends the connection (and is counted too).
	MaxPacketBytes = api.MaxPayloadBytes + 4096
	// maxOutbound bounds the packets waiting to be written to one agent
	// (acks and commands), and maxInflight the QoS 1 ones not yet
	// acknowledged: beyond, an ack is dropped (a later one, or the
	// agent's resend after its ack timeout, makes up for it) and a
	// command is lost (SendCommand cannot tell; no result comes back).
	maxOutbound = 256
	maxInflight = 512
	// maxTopicAliases bounds the MQTT 5 topic aliases of one connection.
	maxTopicAliases = 16
	// maxQueuedEvents bounds the events messages of one connection
	// acknowledged and not yet committed (see hook.OnPublish).
	maxQueuedEvents = 64
)

// ErrOffline is returned by SendCommand when the agent is not connected and
// subscribed to its commands.
var ErrOffline = errors.New("broker: agent not connected")

// Options configures a Broker.
type Options struct {
	// Listen is the plain MQTT address, such as ":1883"; empty for none.
	Listen string
	// TLSListen is the MQTT over TLS address, such as ":8883", used when
	// CertFile and KeyFile (PEM, the certificate with its chain) are set.
	TLSListen         string
	CertFile, KeyFile string

	Store    store.Store      // agents and their password hashes
	Ingester *ingest.Ingester // where agents' messages go
	Logger   *slog.Logger     // nil means slog.Default()

	// MaxConnections bounds the open connections, logged in or not; 0
	// means DefaultMaxConnections.
	MaxConnections int
	// ConnectTimeout bounds the TLS handshake and CONNECT of a new
	// connection; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxKeepAlive is the keepalive imposed on clients that ask for none
	// or for more, so that a vanished agent is noticed; 0 means
	// DefaultMaxKeepAlive.
	MaxKeepAlive time.Duration
	// AuthCacheTTL is how long a verified password is remembered; 0
	// means DefaultAuthCacheTTL. AuthCacheSize bounds the entries; 0
	// means DefaultAuthCacheSize.
	AuthCacheTTL  time.Duration
	AuthCacheSize int
	// Now is the clock of the password cache; nil means time.Now.
	Now func() time.Time
}

// Broker is the embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	in   *ingest.Ingester
	auth *authenticator
	log  *slog.Logger
	lns  []*listener
	// ctx ends the waits of the hooks at Close.
	ctx    context.Context
	cancel context.CancelFunc

	seed    maphash.Seed
	stripes [64]sync.Mutex // by agent: status submissions, see submitStatus
	queued  sync.Map       // *mqtt.Client → chan struct{}: see queueEvents

	mu        sync.Mutex // orders Serve and Close
	served    bool       // guarded by mu
	closeOnce sync.Once
	refused   atomic.Uint64 // connections over MaxConnections
	authFails atomic.Uint64
	takeovers atomic.Uint64
}

// New opens the listeners and prepares the broker; Serve starts it.
func New(o Options) (*Broker, error) {
	if o.Store == nil || o.Ingester == nil {
		return nil, errors.New("broker: a store and an ingester are required")
	}
	if o.Listen == "" && (o.CertFile == "" || o.TLSListen == "") {
		return nil, errors.New("broker: no listener: set Listen, or TLSListen with CertFile and KeyFile")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("broker: CertFile and KeyFile go together")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxKeepAlive <= 0 {
		o.MaxKeepAlive = DefaultMaxKeepAlive
	}
	o.MaxKeepAlive = min(o.MaxKeepAlive, 65535*time.Second)
	if o.AuthCacheTTL <= 0 {
		o.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if o.AuthCacheSize <= 0 {
		o.AuthCacheSize = DefaultAuthCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger.With("part", "broker")

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(o.MaxConnections)
	caps.MaximumPacketSize = MaxPacketBytes
	caps.MaximumClientWritesPending = maxOutbound
	caps.MaximumInflight = maxInflight
	caps.TopicAliasMaximum = maxTopicAliases
	// Sessions end with their connection: agents use clean sessions, and
	// a session kept for a client that never comes back is memory lost.
	caps.MaximumSessionExpiryInterval = 0
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(packetless{o.Logger.Handler()}).With("part", "mochi"),
		InlineClient:           true, // Publish: acks and commands
		SysTopicResendInterval: 60,
	})
	b := &Broker{
		srv:  srv,
		in:   o.Ingester,
		auth: newAuthenticator(o.Store, o.Now, o.AuthCacheTTL, o.AuthCacheSize, runtime.GOMAXPROCS(0)),
		log:  log,
		seed: maphash.MakeSeed(),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := srv.AddHook(&hook{b: b, maxKeepAlive: uint16(o.MaxKeepAlive / time.Second)}, nil); err != nil {
		return nil, err
	}

	sem := make(chan struct{}, o.MaxConnections)
	add := func(id, addr string, tc *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		l := &listener{id: id, ln: ln, tls: tc, sem: sem, connectTimeout: o.ConnectTimeout, log: log, refused: &b.refused}
		b.lns = append(b.lns, l)
		return srv.AddListener(l)
	}
	fail := func(err error) (*Broker, error) {
		for _, l := range b.lns {
			l.ln.Close()
		}
		return nil, err
	}
	if o.Listen != "" {
		if err := add("mqtt", o.Listen, nil); err != nil {
			return fail(err)
		}
	}
	if o.CertFile != "" && o.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return fail(fmt.Errorf("broker: TLS certificate: %w", err))
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if err := add("mqtts", o.TLSListen, tc); err != nil {
			return fail(err)
		}
	}
	return b, nil
}

// Addr returns the address of the plain MQTT listener, or nil.
func (b *Broker) Addr() net.Addr { return b.addr("mqtt") }

// TLSAddr returns the address of the TLS listener, or nil.
func (b *Broker) TLSAddr() net.Addr { return b.addr("mqtts") }

func (b *Broker) addr(id string) net.Addr {
	for _, l := range b.lns {
		if l.id == id {
			return l.ln.Addr()
		}
	}
	return nil
}

// Serve runs the broker until ctx is done, then closes it. It may be
// called once.
func (b *Broker) Serve(ctx context.Context) error {
	b.mu.Lock()
	if b.served {
		b.mu.Unlock()
		return errors.New("broker: Serve called twice")
	}
	b.served = true
	if b.ctx.Err() != nil { // closed already
		b.mu.Unlock()
		return nil
	}
	err := b.srv.Serve()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	for _, l := range b.lns {
		b.log.Info("MQTT broker listening", "listener", l.id, "addr", l.ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case <-b.ctx.Done():
	}
	return b.Close()
}

// Close disconnects every client and stops listening. Wills are not
// recorded then: the agents did not fail, central stopped. The Ingester
// is the caller's to close, after the broker.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.cancel()
		b.mu.Lock()
		served := b.served
		b.mu.Unlock()
		if served {
			b.srv.Close()
		} else {
			for _, l := range b.lns {
				l.ln.Close()
			}
		}
	})
	return nil
}

// SendCommand publishes a command to an agent (QoS 1, on
// api.CommandTopic). The caller records it first (store.AddCommand), so
// that the agent's result finds it. It fails with ErrOffline when the agent
// is not connected and subscribed to its commands.
func (b *Broker) SendCommand(ctx context.Context, site, agent string, c api.Command) error {
	payload, err := encodeCommand(site, agent, c)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cl, ok := b.srv.Clients.Get(Username(site, agent))
	if !ok || cl.Closed() || !subscribedToCommands(cl, site, agent, c.Name) {
		return ErrOffline
	}
	return b.srv.Publish(api.CommandTopic(site, agent, c.Name), payload, false, 1)
}

func encodeCommand(site, agent string, c api.Command) ([]byte, error) {
	if !api.ValidID(site) || !api.ValidID(agent) {
		return nil, fmt.Errorf("broker: site %q and agent %q must match [a-z0-9-]{1,63}", site, agent)
	}
	if !api.ValidCommand(c.Name) {
		return nil, fmt.Errorf("broker: unknown command %q; want one of %s", c.Name, strings.Join(api.Commands(), ", "))
	}
	payload, err := api.Encode(c)
	if err != nil {
		return nil, fmt.Errorf("broker: command %s: %w", c.Name, err)
	}
	return payload, nil
}

func subscribedToCommands(cl *mqtt.Client, site, agent, name string) bool {
	prefix := api.Root + "/" + site + "/" + agent + "/" + api.KindCommand
	for _, f := range []string{prefix + "/+", prefix + "/#", prefix + "/" + name} {
		if _, ok := cl.State.Subscriptions.Get(f); ok {
			return true
		}
	}
	return false
}

// packetless is a slog.Handler that leaves out the attributes in which
// mochi logs whole packets, payloads included: agents' messages do not
// belong in the log, and a flood of them would fill it.
type packetless struct{ slog.Handler }

func (h packetless) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "pk" && a.Key != "packet" {
			out.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h packetless) WithAttrs(as []slog.Attr) slog.Handler {
	return packetless{h.Handler.WithAttrs(as)}
}

func (h packetless) WithGroup(name string) slog.Handler { return packetless{h.Handler.WithGroup(name)} }

// identityOf returns the agent a logged-in client is: its ID, set to the
// username at login.
func identityOf(cl *mqtt.Client) (ingest.Identity, bool) {
	return ParseUsername(cl.ID)
}

// stripe returns the lock of an agent's status submissions.
func (b *Broker) stripe(id ingest.Identity) *sync.Mutex {
	return &b.stripes[maphash.String(b.seed, id.String())%uint64(len(b.stripes))]
}

// submitStatus submits a status message (publication or will) of client
// cl unless a newer connection of the same agent has replaced cl, under
// the agent's lock: the check and the submission happen together, so that
// the will of a connection taken over cannot be queued after the birth of
// the connection that replaced it. ok is false for a stale connection.
func (b *Broker) submitStatus(cl *mqtt.Client, id ingest.Identity, topic string, payload []byte, done func(*ingest.Reply, error)) (ok bool, err error) {
	mu := b.stripe(id)
	mu.Lock()
	defer mu.Unlock()
	if cur, found := b.srv.Clients.Get(cl.ID); found && cur != cl {
		return false, nil
	}
	return true, b.in.Submit(b.ctx, id, topic, payload, done)
}

// countLog increments n and logs at warning level the 1st, 2nd, 4th,
// 8th... time, so that a flood cannot flood the log.
func (b *Broker) countLog(n *atomic.Uint64, msg string, args ...any) {
	if c := n.Add(1); c&(c-1) == 0 {
		b.log.Warn(msg, append(args, "count", c)...)
	}
}

// hook is the broker's mochi hook: login, ACL, ingest, wills, takeovers.
type hook struct {
	mqtt.HookBase
	b            *Broker
	maxKeepAlive uint16 // seconds
}

func (h *hook) ID() string { return "relais" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablish,
		mqtt.OnPublish, mqtt.OnWill, mqtt.OnWillSent, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnConnect imposes a keepalive on clients that ask for none or too long
// a one (MQTT 5 clients are told; 3.1.1 clients are cut after 1.5 times
// it without a packet).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if cl.State.Keepalive == 0 || cl.State.Keepalive > h.maxKeepAlive {
		cl.State.Keepalive = h.maxKeepAlive
		cl.State.ServerKeepalive = true
	}
	return nil
}

// OnConnectAuthenticate logs an agent in: username {site}/{agent} of a
// registered agent, its password, and a will, if any, that is its own
// offline status. The client's ID becomes the username, whatever client
// id it sent: a second connection of the same agent takes the first one
// over, and no agent can take over another's session.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	id, ok := ParseUsername(string(pk.Connect.Username))
	if !ok {
		b.countLog(&b.authFails, "MQTT login refused: the username is not {site}/{agent}", "remote", cl.Net.Remote)
		return false
	}
	if err := b.auth.check(b.ctx, id, pk.Connect.Password); err != nil {
		b.countLog(&b.authFails, "MQTT login refused", "agent", id.String(), "remote", cl.Net.Remote, "err", err)
		return false
	}
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 1 {
		w := cl.Properties.Will
		var err error
		reason := ingest.ReasonTopic
		if w.TopicName != api.StatusTopic(id.Site, id.Agent) {
			err = fmt.Errorf("will on %q, not on the agent's status topic", w.TopicName)
		} else if s, derr := api.DecodeStatus(w.Payload); derr != nil {
			err, reason = fmt.Errorf("will: %w", derr), ingest.Classify(derr)
		} else if s.Online {
			err, reason = errors.New(`will: not {"online":false}`), ingest.ReasonInvalid
		}
		if err != nil {
			b.in.Reject(b.ctx, id, reason, err)
			b.countLog(&b.authFails, "MQTT login refused", "agent", id.String(), "remote", cl.Net.Remote, "err", err)
			return false
		}
	}
	cl.ID = id.String()
	if cl.Properties.Props.AssignedClientID != "" {
		cl.Properties.Props.AssignedClientID = cl.ID
	}
	return true
}

// OnSessionEstablish runs before a new connection replaces an older one of
// the same agent: the older one's will is cancelled, since the agent is
// online through the new one.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	old, ok := h.b.srv.Clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	atomic.StoreUint32(&old.Properties.Will.Flag, 0)
	h.b.takeovers.Add(1)
	h.b.log.Info("a new connection of an agent replaces its older one", "agent", cl.ID,
		"old_remote", old.Net.Remote, "new_remote", cl.Net.Remote)
}

// OnACLCheck lets an agent publish only on its own status, events,
// metrics and cmd-result topics and subscribe only to its own ack and
// commands. A refusal is counted (topic) and ends the connection: a
// working agent never does it.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	id, ok := identityOf(cl)
	if !ok {
		return false
	}
	var err error
	if write {
		_, err = ingest.CheckTopic(id, topic)
	} else if !readable(id, topic) {
		err = fmt.Errorf("agent %s may not subscribe to %.200q", id, topic)
	}
	if err == nil {
		return true
	}
	h.b.in.Reject(h.b.ctx, id, ingest.ReasonTopic, err)
	cl.Stop(fmt.Errorf("broker: refused: %w", err))
	return false
}

// readable reports whether agent id may subscribe to filter, or receive a
// message on topic: its ack topic and its commands.
func readable(id ingest.Identity, filter string) bool {
	prefix := api.Root + "/" + id.Site + "/" + id.Agent + "/"
	switch filter {
	case prefix + api.KindAck, prefix + api.KindCommand + "/+", prefix + api.KindCommand + "/#":
		return true
	}
	t, err := api.ParseTopic(filter)
	return err == nil && t.Kind == api.KindCommand && t.Site == id.Site && t.Agent == id.Agent
}

// OnPublish hands an agent's message to the Ingester, from the client's
// reading goroutine, which waits while the Ingester's queue is full: the
// back-pressure of a busy store. A status, metrics or cmd-result message
// is committed before mochi sends its PUBACK. An events message is only
// queued (at most maxQueuedEvents per connection) before the PUBACK: the
// agent's delivery rests on central's ack {"upto":N}, published once the
// events are committed, not on the PUBACK, and not waiting lets the events
// messages an agent sends during a transaction be committed together in
// the next one (see TestBenchIngest). Nothing is retained or forwarded:
// the store is central's copy of every agent's status, and no client may
// read agents' topics. A refused message is acknowledged and dropped (it
// was counted; sent again it would be refused again). When the store
// fails, the connection is closed (before the PUBACK, when there is one to
// hold back), so that the agent connects again later and sends again.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	b := h.b
	id, ok := identityOf(cl)
	if !ok {
		return pk, packets.ErrRejectPacket
	}
	accept := func() (packets.Packet, error) {
		pk.FixedHeader.Retain, pk.Ignore = false, true
		return pk, nil
	}
	if strings.HasSuffix(pk.TopicName, "/"+api.KindEvents) {
		if err := b.queueEvents(cl, id, pk.TopicName, pk.Payload); err != nil {
			b.notCommitted(cl, id, pk.TopicName, err)
			return pk, packets.ErrRejectPacket
		}
		return accept()
	}

	type result struct {
		r   *ingest.Reply
		err error
	}
	ch := make(chan result, 1)
	done := func(r *ingest.Reply, err error) { ch <- result{r, err} }
	var err error
	if strings.HasSuffix(pk.TopicName, "/"+api.KindStatus) {
		var current bool
		current, err = b.submitStatus(cl, id, pk.TopicName, pk.Payload, done)
		if err == nil && !current {
			return accept() // from a connection replaced already: stale
		}
	} else {
		err = b.in.Submit(b.ctx, id, pk.TopicName, pk.Payload, done)
	}
	var res result
	if err == nil {
		select {
		case res = <-ch:
		case <-b.ctx.Done():
			res.err = b.ctx.Err()
		}
	} else {
		res.err = err
	}
	switch reason := ingest.Reason(res.err); {
	case res.err == nil:
	case reason == ingest.ReasonTopic: // the ACL let it through: not expected
		cl.Stop(res.err)
		return pk, packets.ErrRejectPacket
	case reason != "":
	default:
		b.notCommitted(cl, id, pk.TopicName, res.err)
		return pk, packets.ErrRejectPacket
	}
	return accept()
}

// queueEvents submits an events message of cl, waiting while the
// connection has maxQueuedEvents messages queued already; once committed,
// the ack is published to the agent.
func (b *Broker) queueEvents(cl *mqtt.Client, id ingest.Identity, topic string, payload []byte) error {
	v, ok := b.queued.Load(cl)
	if !ok {
		v, _ = b.queued.LoadOrStore(cl, make(chan struct{}, maxQueuedEvents))
	}
	slots := v.(chan struct{})
	select {
	case slots <- struct{}{}:
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	err := b.in.Submit(b.ctx, id, topic, payload, func(r *ingest.Reply, err error) {
		<-slots
		switch {
		case err == nil && r != nil:
			if err := b.srv.Publish(r.Topic, r.Payload, false, 1); err != nil {
				b.log.Warn("publishing an ack", "agent", id.String(), "err", err)
			}
		case err == nil, ingest.Reason(err) != "": // committed without ack yet, or refused and counted
		default:
			b.notCommitted(cl, id, topic, err)
		}
	})
	if err != nil {
		<-slots
	}
	return err
}

// notCommitted closes the connection of a message the store could not
// commit, so that the agent connects again, with its backoff, and sends
// again.
func (b *Broker) notCommitted(cl *mqtt.Client, id ingest.Identity, topic string, err error) {
	if b.ctx.Err() == nil {
		b.log.Error("message not committed; closing the connection so that the agent sends it again",
			"agent", id.String(), "topic", topic, "err", err)
	}
	cl.Stop(fmt.Errorf("broker: not committed: %w", err))
}

// OnWill keeps the will from being retained: the store records it.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	will.Retain = false
	return will, nil
}

// OnWillSent records an agent's will, {"online":false}, checked at login,
// unless a newer connection of the agent replaced this one, or central is
// stopping.
func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	b := h.b
	id, ok := identityOf(cl)
	if !ok || b.ctx.Err() != nil {
		return
	}
	_, err := b.submitStatus(cl, id, pk.TopicName, pk.Payload, func(_ *ingest.Reply, err error) {
		if err != nil {
			b.log.Warn("recording an agent's will", "agent", id.String(), "err", err)
		}
	})
	if err != nil && b.ctx.Err() == nil {
		b.log.Warn("recording an agent's will", "agent", id.String(), "err", err)
	}
}

// OnDisconnect forgets the connection, and counts a packet over
// MaxPacketBytes, which ended it before the Ingester could see it.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.b.queued.Delete(cl)
	if !errors.Is(err, packets.ErrPacketTooLarge) {
		return
	}
	if id, ok := identityOf(cl); ok {
		h.b.in.Reject(h.b.ctx, id, ingest.ReasonTooLarge, fmt.Errorf("a packet over %d bytes", MaxPacketBytes))
	}
}
