// Package report is the agent's MQTT publisher (DESIGN §4). A Reporter
// connects as {site}-{agent} with a clean session and the will
// {"online":false} (retained, QoS 1) on status; on every connection it
// subscribes to its ack and cmd/+ topics and publishes its birth, the
// retained status with health and open faults, again whenever they change.
// It publishes the outbox's unacked events in seq order on events, in
// batches at QoS 1, at most Config.Window beyond central's last ack; on
// {"upto":N} it marks them delivered in the outbox (written at most once a
// second), and after a reconnection or Config.AckTimeout without progress
// it sends everything unacked again: an event is never lost and may arrive
// twice (central deduplicates by id, and acks duplicates too). The outbox
// is the only store: each connection is a new paho client that keeps
// nothing, so paho's dropped QoS 0 messages and non-durable stores do not
// matter; connections are retried with exponential backoff and jitter.
// Metrics snapshots are taken every Config.MetricsInterval, kept in the
// outbox while offline and published oldest first at QoS 0 once connected.
// Commands run one at a time within a time bound; malformed, unknown and
// refused ones get an error on cmd-result. Received payloads are decoded
// strictly and rejections are counted in State.
package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/uplink"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
)

// Defaults of Config.
const (
	DefaultWindow          = 256
	DefaultBatch           = 64
	DefaultAckTimeout      = 30 * time.Second
	DefaultMetricsInterval = 60 * time.Second
	DefaultPollInterval    = time.Second
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = 2 * time.Minute
	DefaultCommandTimeout  = 30 * time.Second
	// MaxWindow bounds Config.Window: every event could travel in its own
	// message, and MQTT has 65535 packet ids.
	MaxWindow = 1<<16 - 1
)

// Internal bounds.
const (
	commandQueue    = 8                // commands waiting for the one running
	replyQueue      = 32               // results waiting to be published
	metricsPerRound = 100              // snapshots published per step of the loop
	waitLimit       = 10 * time.Second // bound on waiting for SUBACK, PUBACK or a write
	goodbyeLimit    = 2 * time.Second  // bound on the offline status at shutdown
	ackFlush        = time.Second      // how often central's acks are written to the outbox
)

// Outbox is what a Reporter needs of *outbox.Outbox.
type Outbox interface {
	Stats() (outbox.Stats, error)
	Pending(afterSeq uint64, limit int) ([]api.Event, error)
	Ack(upto uint64) error
	OpenFaults() ([]api.Fault, error)
	AddMetrics(payload []byte) error
	PendingMetrics(afterID int64, limit int) ([]outbox.Metric, error)
	AckMetrics(upto int64) error
}

var _ Outbox = (*outbox.Outbox)(nil)

// Source supplies the agent's live state. Status is called after every
// connection and at every Config.PollInterval (and Kick) to detect changes;
// Metrics every Config.MetricsInterval. Both must return promptly and be
// safe for concurrent use. The Reporter sets the metrics' Time, raises
// health to the worst fault's severity and keeps at most 32 faults, the
// most severe first.
type Source interface {
	Status() (health api.Health, faults []api.Fault)
	Metrics() api.Metrics
}

// Commands runs the commands central sends on cmd/{name}, other than
// refresh, which the Reporter handles itself (status and metrics now). Run
// is called for one command at a time, with a context cancelled after
// Config.CommandTimeout. Its error reaches central only as a PublicError:
// any other error is logged here and central reads a generic failure, so
// that no job name, file name or address can leak into a message.
type Commands interface {
	Run(ctx context.Context, cmd api.Command) error
}

// CommandFunc adapts a function to Commands.
type CommandFunc func(ctx context.Context, cmd api.Command) error

// Run calls f.
func (f CommandFunc) Run(ctx context.Context, cmd api.Command) error { return f(ctx, cmd) }

// PublicError is a command failure whose text is fit for central: short
// and free of personal data. A Commands handler returns it (possibly
// wrapped) to explain a failure to the technician.
type PublicError string

func (e PublicError) Error() string { return string(e) }

// Config configures a Reporter. Zero durations and sizes take the defaults.
type Config struct {
	MQTT    configs.AgentMQTT
	Site    string // site id, [a-z0-9-]{1,63}
	Agent   string // agent id within the site
	Version string // agent version, published in status

	// Window is the most events published beyond central's last ack.
	Window int
	// Batch is the most events in one message (at most
	// api.MaxBatchEvents); a batch is also kept within api.MaxPayloadBytes.
	// A batch smaller than Batch is sent only when no event is in flight
	// (as in Nagle's algorithm): events recorded one by one go out at once
	// on an idle line and are gathered per ack round trip on a busy one.
	Batch int
	// AckTimeout: with events in flight and no ack progress for this long,
	// everything unacked is sent again.
	AckTimeout time.Duration
	// MetricsInterval is the period of metrics snapshots.
	MetricsInterval time.Duration
	// PollInterval is how often the outbox and Source.Status are checked
	// without a Kick: events recorded by code that does not call Kick still
	// go out within it.
	PollInterval time.Duration
	// ReconnectMin and ReconnectMax bound the delay between connection
	// attempts, which doubles from ReconnectMin after each failure, with
	// jitter (a random delay between half and all of it).
	ReconnectMin, ReconnectMax time.Duration
	// KeepAlive is the MQTT keepalive; 0 keeps uplink's.
	KeepAlive time.Duration
	// CommandTimeout bounds each command.
	CommandTimeout time.Duration

	// Source supplies status and metrics. If nil, the status lists the
	// outbox's open faults with the health they imply (see HealthOf) and
	// no metrics are published.
	Source Source
	// Commands runs commands; if nil, every command but refresh fails
	// with "not supported by this agent".
	Commands Commands
	Clock    Clock        // nil means SystemClock()
	Logger   *slog.Logger // nil means slog.Default()
}

// State is the Reporter's state for `relais-agent ctl status`.
type State struct {
	Connected bool
	Since     time.Time // when Connected last changed
	LastAck   uint64    // central has every event up to this seq
	Published uint64    // highest seq published by this process
	InFlight  int       // events published beyond LastAck on this connection
	LastError string    // the last connection or delivery problem

	Connects         uint64 // successful connections
	Resends          uint64 // times unacked events were sent again
	RejectedAcks     uint64 // ack payloads refused: malformed, or beyond Published
	RejectedCommands uint64 // commands refused: malformed, unknown, or queue full
}

// Reporter publishes the agent's status, events and metrics and runs
// central's commands. Its methods are safe for concurrent use.
type Reporter struct {
	cfg      Config
	ob       Outbox
	log      *slog.Logger
	clock    Clock
	clientID string
	topic    struct{ status, events, metrics, ack, cmd, result string }

	wake       chan struct{}          // Kick, acks, refresh: run the publishing loop
	cmds       chan api.Command       // valid commands, for runCommands
	replies    chan api.CommandResult // for runReplies
	refresh    atomic.Bool            // publish status even if unchanged
	newMetrics atomic.Bool            // a snapshot was stored
	running    atomic.Bool            // Run was called
	curMu      sync.Mutex             // guards cur
	cur        mqtt.Client            // the connected client, nil when offline

	ackTarget atomic.Uint64 // highest valid ack received
	published atomic.Uint64 // highest seq published by this process
	lastAck   atomic.Uint64 // central's last ack taken in by the loop
	durable   atomic.Uint64 // the outbox's last ack
	inFlight  atomic.Int64

	connects, resends, rejectedAcks, rejectedCmds atomic.Uint64

	mu    sync.Mutex // guards state
	state State      // Connected, Since, LastError
}

// New returns a Reporter publishing from ob. It checks the configuration;
// the broker is first contacted by Run.
func New(cfg Config, ob Outbox) (*Reporter, error) {
	if ob == nil {
		return nil, errors.New("report: no outbox")
	}
	if !api.ValidID(cfg.Site) || !api.ValidID(cfg.Agent) {
		return nil, fmt.Errorf("report: site %q and agent %q must match [a-z0-9-]{1,63}", cfg.Site, cfg.Agent)
	}
	probe := api.Status{Online: true, Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Version: cfg.Version, Health: api.HealthOK}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("report: version %q: %w", cfg.Version, err)
	}
	if _, err := uplink.Options(cfg.MQTT, "check"); err != nil {
		return nil, fmt.Errorf("report: [mqtt]: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.MetricsInterval, DefaultMetricsInterval)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.ReconnectMin, DefaultReconnectMin)
	def(&cfg.ReconnectMax, DefaultReconnectMax)
	def(&cfg.CommandTimeout, DefaultCommandTimeout)
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	cfg.Window = min(cfg.Window, MaxWindow)
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	cfg.Batch = min(cfg.Batch, api.MaxBatchEvents, cfg.Window, outbox.MaxList)
	r := &Reporter{
		cfg:      cfg,
		ob:       ob,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		clientID: cfg.Site + "-" + cfg.Agent,
		wake:     make(chan struct{}, 1),
		cmds:     make(chan api.Command, commandQueue),
		replies:  make(chan api.CommandResult, replyQueue),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.log = r.log.With("part", "report")
	if r.clock == nil {
		r.clock = SystemClock()
	}
	r.topic.status = api.StatusTopic(cfg.Site, cfg.Agent)
	r.topic.events = api.EventsTopic(cfg.Site, cfg.Agent)
	r.topic.metrics = api.MetricsTopic(cfg.Site, cfg.Agent)
	r.topic.ack = api.AckTopic(cfg.Site, cfg.Agent)
	r.topic.cmd = api.CommandFilter(cfg.Site, cfg.Agent)
	r.topic.result = api.CommandResultTopic(cfg.Site, cfg.Agent)
	return r, nil
}

// Kick makes the Reporter look for new events (and status changes) now
// rather than at the next PollInterval; the agent calls it after recording.
// It never blocks.
func (r *Reporter) Kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// State returns the current state.
func (r *Reporter) State() State {
	r.mu.Lock()
	s := r.state
	r.mu.Unlock()
	s.LastAck = r.lastAck.Load()
	s.Published = r.published.Load()
	s.InFlight = int(r.inFlight.Load())
	s.Connects = r.connects.Load()
	s.Resends = r.resends.Load()
	s.RejectedAcks = r.rejectedAcks.Load()
	s.RejectedCommands = r.rejectedCmds.Load()
	return s
}

// Run connects and publishes until ctx is done, reconnecting after every
// failure; on the way out it publishes the offline status and disconnects.
// It returns nil once ctx is done, or an error if the outbox cannot be read
// at start. It may be called once.
func (r *Reporter) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("report: Run called twice")
	}
	st, err := r.ob.Stats()
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.lastAck.Store(st.LastAck)
	r.durable.Store(st.LastAck)
	r.published.Store(st.LastAck)
	r.mu.Lock()
	r.state.Since = r.clock.Now()
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.runMetrics(ctx) })
	wg.Go(func() { r.runCommands(ctx) })
	wg.Go(func() { r.runReplies(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	for attempt := 0; ; attempt++ {
		connected, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			attempt = 0
		}
		r.setError(err)
		d := backoff(attempt, r.cfg.ReconnectMin, r.cfg.ReconnectMax)
		r.log.Info("MQTT connection failed, retrying", "err", err, "in", d.Round(time.Millisecond))
		t := r.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// backoff returns the delay before connection attempt n+1 (n from 0):
// lo doubled n times, at most hi, with jitter: a random duration between
// half of it and all of it, so that sites cut off together do not all
// come back at the same instant.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := hi
	if n < 32 && lo<<n > 0 && lo<<n < hi {
		d = lo << n
	}
	return d/2 + rand.N(d/2+1)
}

func (r *Reporter) setError(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	r.state.LastError = err.Error()
	r.mu.Unlock()
}

// setClient records the connected client, or nil when offline.
func (r *Reporter) setClient(c mqtt.Client) {
	r.curMu.Lock()
	r.cur = c
	r.curMu.Unlock()
	r.mu.Lock()
	r.state.Connected = c != nil
	r.state.Since = r.clock.Now()
	r.mu.Unlock()
	if c == nil {
		r.inFlight.Store(0)
	}
}

func (r *Reporter) client() mqtt.Client {
	r.curMu.Lock()
	defer r.curMu.Unlock()
	return r.cur
}

// countLog increments n and logs msg at warning level the 1st, 2nd, 4th,
// 8th... time, so that a flood of bad input cannot flood the log.
func (r *Reporter) countLog(n *atomic.Uint64, msg string, args ...any) {
	if c := n.Add(1); c&(c-1) == 0 {
		r.log.Warn(msg, append(args, "count", c)...)
	}
}
