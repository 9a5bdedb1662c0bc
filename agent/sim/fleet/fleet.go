// Package fleet runs many simulated Relais agents in one process, for the
// demo and for load tests of relais-central. Each agent has the real
// agent/outbox (its own SQLite file) and the real agent/report Reporter, so
// it speaks the wire contract exactly as relais-agent does: clean session,
// will and retained status, events in batches until central acks them,
// metrics snapshots, commands answered. Only the devices are simulated:
// usage events arrive at a given total rate as a Poisson process drawn from
// a seeded generator (prints from PCs and phones, copies, scans, button
// presses), faults are raised and cleared through the outbox (paper out,
// scanner jam), every simulated day brings a wifi.daily count, and the
// metrics show toner running down and Wi-Fi clients coming and going.
// Reporters start along a ramp, and a share of the agents can drop off the
// network for a while and come back with their backlog. Stop drains: it
// waits, within a bound, until central has acked every recorded event.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
)

// Limits and defaults of Config.
const (
	MaxAgents              = 100_000
	MaxRate                = 100_000 // events per second
	DefaultPerSite         = 1
	DefaultSitePrefix      = "sim"
	DefaultOfflineMean     = 2 * time.Minute
	DefaultDay             = 24 * time.Hour
	DefaultMetricsInterval = time.Minute
	// DefaultPollInterval is longer than the agent's: the fleet kicks each
	// reporter after every record, so polling is only a safety net, and
	// 10,000 agents polling their outbox every second would cost a core.
	DefaultPollInterval = 10 * time.Second
	// DefaultOutboxBytes bounds each agent's outbox: hours of backlog at a
	// busy site.
	DefaultOutboxBytes = 16 << 20
	DefaultVersion     = "0.0.0-sim"
	// MaxWorkers bounds the goroutines that write to the outboxes.
	MaxWorkers = 64
)

// Internal settings.
const (
	// keepDelivered keeps the outboxes small: a simulated agent has no
	// local page to show its recent events on, and a small database is a
	// small page cache.
	keepDelivered = 16
	passwordFile  = "mqtt-password"
	lockFile      = "fleet.lock"
	queueLen      = 64                     // actions waiting per worker
	maxLag        = time.Second            // the scheduler skips arrivals beyond this lag
	drainPoll     = 100 * time.Millisecond // how often Stop looks at the acks
	openers       = 4                      // outboxes opened at once by Start
)

// Config configures a Fleet. Zero values take the defaults, except for the
// shares and the rate, for which zero means none.
type Config struct {
	// Agents is how many agents to run, 1 to MaxAgents. Each holds 4 files
	// open (its outbox's database, WAL and shared memory, and its MQTT
	// connection): the open-files limit bounds the agents of one process.
	Agents int
	// First is the number of the first agent: several fleets (processes)
	// can share out one larger fleet with First = 0, N, 2N...
	First int
	// PerSite is how many agents each site has: agent i is agent
	// pi-{i%PerSite+1} of site {SitePrefix}-{i/PerSite+1}, the site
	// number on at least four digits (sim-0001).
	PerSite    int
	SitePrefix string
	// Rate is the usage events (and fault changes) per second of the
	// whole fleet, as a Poisson process; 0 records none.
	Rate float64
	// Seed seeds the generator of arrivals and devices: the same seed
	// gives each agent the same sequence of events.
	Seed uint64
	// FaultShare is the share of arrivals that raise or clear a fault.
	FaultShare float64
	// OfflineShare is the share of agents that are offline at any time,
	// for outages of OfflineMean on average: the reporter stops (saying
	// offline), the devices go on recording, and the backlog goes out
	// when it comes back.
	OfflineShare float64
	OfflineMean  time.Duration
	// Ramp spreads the start of the reporters (the first connections)
	// evenly over this duration; 0 starts them all at once.
	Ramp time.Duration
	// Day is the length of a simulated day, after which every agent
	// records wifi.daily. Each agent records the day before Start when
	// it opens. With Day of 24 h or more, simulated days are the days
	// after that one; with a shorter Day they are those before it, so
	// that a short demo fills the past and never dates a future day.
	Day time.Duration

	// MQTT is the broker (Broker, CAFile); Username and PasswordFile are
	// set for each agent: the username is {site}/{agent}, and with
	// Credentials the password is written to a file in the agent's state.
	MQTT configs.AgentMQTT
	// Credentials holds each agent's password; nil connects without one.
	Credentials Credentials
	// StateDir holds a directory per agent, {site}/{agent}, with its
	// outbox; it must exist. Outboxes found there are reused.
	StateDir string

	MetricsInterval time.Duration // reporters' snapshots
	PollInterval    time.Duration // reporters' safety-net polling
	OutboxBytes     int64         // each outbox's size bound
	Version         string        // version the agents report
	Workers         int           // goroutines writing to the outboxes; 0: min(Agents, MaxWorkers)

	// Clock drives arrivals, the ramp, outages and the outboxes'
	// timestamps; nil means the real clock. Reporters use the real clock.
	Clock clockwork.Clock
	// Logger receives the fleet's problems; nil means slog.Default().
	Logger *slog.Logger
	// ReportLogger receives the reporters' logs (connections, retries);
	// nil discards them.
	ReportLogger *slog.Logger
}

// AgentID returns the site and agent ids of agent number i.
func (c Config) AgentID(i int) AgentID {
	per := c.PerSite
	if per <= 0 {
		per = DefaultPerSite
	}
	prefix := c.SitePrefix
	if prefix == "" {
		prefix = DefaultSitePrefix
	}
	return AgentID{Site: fmt.Sprintf("%s-%04d", prefix, i/per+1), Agent: fmt.Sprintf("pi-%d", i%per+1)}
}

// check validates c and fills in the defaults.
func (c *Config) check() error {
	switch {
	case c.Agents < 1 || c.Agents > MaxAgents:
		return fmt.Errorf("fleet: %d agents: want 1 to %d", c.Agents, MaxAgents)
	case c.First < 0 || c.First > MaxAgents*10:
		return fmt.Errorf("fleet: first agent %d out of range", c.First)
	case c.PerSite < 0 || c.PerSite > 1000:
		return fmt.Errorf("fleet: %d agents per site: want 1 to 1000", c.PerSite)
	case math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > MaxRate:
		return fmt.Errorf("fleet: rate %v: want 0 to %d events per second", c.Rate, MaxRate)
	case !(c.FaultShare >= 0 && c.FaultShare <= 1):
		return fmt.Errorf("fleet: fault share %v: want 0 to 1", c.FaultShare)
	case !(c.OfflineShare >= 0 && c.OfflineShare <= 0.9):
		return fmt.Errorf("fleet: offline share %v: want 0 to 0.9", c.OfflineShare)
	case c.OfflineMean < 0 || c.Ramp < 0 || c.Day < 0 || c.MetricsInterval < 0 || c.PollInterval < 0:
		return errors.New("fleet: durations must not be negative")
	case c.OutboxBytes != 0 && c.OutboxBytes < 1<<20:
		return fmt.Errorf("fleet: outbox bound %d bytes: want at least 1 MiB", c.OutboxBytes)
	case c.Workers < 0:
		return errors.New("fleet: workers must not be negative")
	case c.StateDir == "":
		return errors.New("fleet: no state directory")
	case c.MQTT.Broker == "":
		return errors.New("fleet: no broker")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.OfflineMean, DefaultOfflineMean)
	def(&c.Day, DefaultDay)
	def(&c.MetricsInterval, DefaultMetricsInterval)
	def(&c.PollInterval, DefaultPollInterval)
	if c.Day < time.Second {
		return fmt.Errorf("fleet: simulated day %v: want at least 1s", c.Day)
	}
	if c.PerSite == 0 {
		c.PerSite = DefaultPerSite
	}
	if c.SitePrefix == "" {
		c.SitePrefix = DefaultSitePrefix
	}
	if last := c.AgentID(c.First + c.Agents - 1); !api.ValidID(c.SitePrefix) || !api.ValidID(last.Site) {
		return fmt.Errorf("fleet: site prefix %q: sites such as %q must match [a-z0-9-]{1,63}", c.SitePrefix, last.Site)
	}
	if c.OutboxBytes == 0 {
		c.OutboxBytes = DefaultOutboxBytes
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Workers == 0 {
		c.Workers = min(c.Agents, MaxWorkers)
	}
	c.Workers = min(c.Workers, c.Agents, MaxWorkers)
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Credentials != nil {
		for i := range c.Agents {
			if id := c.AgentID(c.First + i); c.Credentials[id] == "" {
				return fmt.Errorf("fleet: no password for %s in the credentials", id)
			}
		}
	}
	return nil
}

// Stats are a fleet's figures. Event counts are in outbox seqs: Recorded
// counts the events recorded since Start, Published and Acked the seqs
// published and acknowledged since Start (including any backlog found in
// reused outboxes), and Pending every event recorded and not yet acked.
type Stats struct {
	Agents     int     `json:"agents"`
	Connected  int     `json:"connected"`  // reporters connected to the broker now
	Offline    int     `json:"offline"`    // agents in a simulated outage now
	Recorded   uint64  `json:"recorded"`   // events recorded in the outboxes
	Published  uint64  `json:"published"`  // events published at least once
	Acked      uint64  `json:"acked"`      // events central acknowledged
	Pending    uint64  `json:"pending"`    // events not yet acknowledged
	Reconnects uint64  `json:"reconnects"` // connections after each agent's first
	Resends    uint64  `json:"resends"`    // times a reporter sent unacked events again
	Failures   uint64  `json:"failures"`   // events the outboxes refused (full, disk error)
	Skipped    uint64  `json:"skipped"`    // arrivals not recorded: recording lagged more than 1 s, or Stop came first
	Commands   uint64  `json:"commands"`   // commands from central run
	Elapsed    float64 `json:"elapsed_s"`  // seconds since Start
	// LastError is the last connection or delivery problem of one of the
	// reporters not connected now (after Stop: of one that never
	// connected), if any.
	LastError string `json:"last_error,omitempty"`
}

// Add adds the figures of another fleet, such as another process's share.
func (s *Stats) Add(o Stats) {
	s.Agents += o.Agents
	s.Connected += o.Connected
	s.Offline += o.Offline
	s.Recorded += o.Recorded
	s.Published += o.Published
	s.Acked += o.Acked
	s.Pending += o.Pending
	s.Reconnects += o.Reconnects
	s.Resends += o.Resends
	s.Failures += o.Failures
	s.Skipped += o.Skipped
	s.Commands += o.Commands
	s.Elapsed = max(s.Elapsed, o.Elapsed)
	if s.LastError == "" {
		s.LastError = o.LastError
	}
}

// Fleet is a running fleet of simulated agents.
type Fleet struct {
	cfg   Config
	clock clockwork.Clock
	log   *slog.Logger
	rlog  *slog.Logger

	agents []*simAgent
	queues []chan action
	start  time.Time
	base   time.Time // local midnight of the day before Start, for wifi.daily

	stop      chan struct{} // closed by Stop: no more arrivals
	producers sync.WaitGroup
	workers   sync.WaitGroup
	ramp      sync.WaitGroup
	rampStop  chan struct{}
	draining  atomic.Bool
	started   atomic.Bool
	ready     atomic.Bool // the outboxes are open
	stopped   atomic.Bool
	unlock    func()

	dispatched, applied, skipped, commands atomic.Uint64
	nextArrival                            atomic.Int64 // UnixNano of the next arrival, whose timer is set
	final                                  *Stats
}

// New checks cfg and returns a Fleet ready to Start.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, rlog: cfg.ReportLogger,
		stop: make(chan struct{}), rampStop: make(chan struct{})}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.rlog == nil {
		f.rlog = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return f, nil
}

// Start opens every agent's outbox (recording the Wi-Fi visitors of the day
// before), then returns while the reporters start along the ramp and
// events arrive. It may be called once. Its agents' part of the state
// directory is locked against another fleet until Stop.
func (f *Fleet) Start() error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("fleet: Start called twice")
	}
	unlock, err := lockAgents(f.cfg.StateDir, f.cfg.First, f.cfg.Agents)
	if err != nil {
		return err
	}
	f.unlock = unlock
	y, m, d := f.clock.Now().AddDate(0, 0, -1).Date()
	f.base = time.Date(y, m, d, 12, 0, 0, 0, time.Local)
	f.agents = make([]*simAgent, f.cfg.Agents)
	for n := range f.agents {
		gi := uint64(f.cfg.First + n)
		f.agents[n] = &simAgent{f: f, n: n, id: f.cfg.AgentID(f.cfg.First + n),
			lrng: rand.New(rand.NewPCG(f.cfg.Seed, gi<<1|1))}
	}
	if err := f.openAll(); err != nil {
		for _, a := range f.agents {
			if a.ob != nil {
				a.ob.Close()
			}
		}
		f.unlock()
		return err
	}
	f.queues = make([]chan action, f.cfg.Workers)
	for i := range f.queues {
		q := make(chan action, queueLen)
		f.queues[i] = q
		f.workers.Go(func() {
			for act := range q {
				if f.draining.Load() {
					f.skipped.Add(1) // never recorded: dropped at Stop
					continue
				}
				act.a.apply(act)
			}
		})
	}
	for _, a := range f.agents {
		f.dispatch(action{a: a, day: true})
	}
	// Arrivals, the ramp and the simulated days count from now: opening
	// thousands of outboxes takes a while.
	f.start = f.clock.Now()
	f.ready.Store(true)
	f.ramp.Go(f.runRamp)
	if f.cfg.Rate > 0 {
		f.producers.Go(f.runArrivals)
	}
	f.producers.Go(f.runDays)
	return nil
}

// openAll opens the outboxes, a few at a time.
func (f *Fleet) openAll() error {
	next := atomic.Int64{}
	var errOnce sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(openers, len(f.agents)) {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= len(f.agents) {
					return
				}
				a := f.agents[n]
				now := a.f.clock.Now()
				a.dev = newDevice(rand.New(rand.NewPCG(f.cfg.Seed, uint64(f.cfg.First+n)<<1)), now)
				if err := a.open(filepath.Join(f.cfg.StateDir, a.id.Site, a.id.Agent)); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("fleet: %s: %w", a.id, err) })
					next.Store(int64(len(f.agents))) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// dispatch queues act for its agent's worker; it reports false once the
// fleet stops.
func (f *Fleet) dispatch(act action) bool {
	select {
	case f.queues[act.a.n%len(f.queues)] <- act:
		f.dispatched.Add(1)
		return true
	case <-f.stop:
		return false
	}
}

// runRamp starts agent n's reporter at Ramp*n/Agents after Start.
func (f *Fleet) runRamp() {
	for n, a := range f.agents {
		at := f.start.Add(time.Duration(float64(f.cfg.Ramp) * float64(n) / float64(len(f.agents))))
		if d := at.Sub(f.clock.Now()); d > 0 {
			t := f.clock.NewTimer(d)
			select {
			case <-t.Chan():
			case <-f.rampStop:
				t.Stop()
				return
			}
		}
		select {
		case <-f.rampStop:
			return
		default:
		}
		a.connect()
	}
}

// runArrivals is the Poisson process of usage events: exponential gaps of
// mean 1/Rate, each arrival at an agent drawn uniformly. Arrivals more than
// maxLag late (the outboxes cannot keep up) are skipped and counted.
func (f *Fleet) runArrivals() {
	rng := rand.New(rand.NewPCG(f.cfg.Seed, ^uint64(f.cfg.First)))
	gap := func() time.Duration {
		return time.Duration(rng.ExpFloat64() / f.cfg.Rate * float64(time.Second))
	}
	next := f.start.Add(gap())
	for {
		now := f.clock.Now()
		for !next.After(now) {
			if lag := now.Sub(next); lag > maxLag {
				f.skipped.Add(uint64(lag.Seconds() * f.cfg.Rate))
				next = now
			}
			act := drawAction(rng, f.cfg.FaultShare)
			act.a = f.agents[rng.IntN(len(f.agents))]
			if !f.dispatch(act) {
				return
			}
			next = next.Add(gap())
		}
		t := f.clock.NewTimer(next.Sub(now))
		f.nextArrival.Store(next.UnixNano()) // once its timer is set, for tests on a fake clock
		select {
		case <-t.Chan():
		case <-f.stop:
			t.Stop()
			return
		}
	}
}

// runDays makes every agent record wifi.daily at the end of each
// simulated day.
func (f *Fleet) runDays() {
	for k := 1; ; k++ {
		t := f.clock.NewTimer(f.start.Add(time.Duration(k) * f.cfg.Day).Sub(f.clock.Now()))
		select {
		case <-t.Chan():
		case <-f.stop:
			t.Stop()
			return
		}
		for _, a := range f.agents {
			if !f.dispatch(action{a: a, day: true}) {
				return
			}
		}
	}
}

// dayName is the date of an agent's simulated day k (0 is the day before
// Start), or "" when it would fall before the contract's 2020.
func (f *Fleet) dayName(k int) string {
	if f.cfg.Day < 24*time.Hour {
		k = -k
	}
	d := f.base.AddDate(0, 0, k)
	if d.Year() < 2020 || d.Year() > 2099 {
		return ""
	}
	return d.Format(time.DateOnly)
}

// Stats returns the fleet's current figures; after Stop, its final ones.
func (f *Fleet) Stats() Stats {
	if f.stopped.Load() && f.final != nil {
		return *f.final
	}
	s := Stats{Agents: f.cfg.Agents, Skipped: f.skipped.Load(), Commands: f.commands.Load()}
	if !f.ready.Load() {
		return s
	}
	s.Elapsed = f.clock.Since(f.start).Seconds()
	for _, a := range f.agents {
		g := a.figures()
		if g.connected {
			s.Connected++
		}
		if g.offline {
			s.Offline++
		}
		acked := max(g.acked, a.ack0)
		s.Recorded += g.lastSeq - a.seq0
		s.Published += max(g.published, a.ack0) - a.ack0
		s.Acked += acked - a.ack0
		s.Pending += g.lastSeq - min(acked, g.lastSeq)
		if g.connects > 0 {
			s.Reconnects += g.connects - 1
		}
		s.Resends += g.resends
		s.Failures += a.failures.Load()
		if s.LastError == "" {
			s.LastError = g.lastError
		}
	}
	return s
}

// Stop stops the arrivals, then drains: every agent in an outage comes
// back, the ramp goes on, and Stop waits until central has acknowledged
// every recorded event or ctx is done. Then every reporter says goodbye
// (the retained status goes offline), the outboxes are closed, and Stop
// returns the final figures, read from the outboxes. It may be called once,
// after Start.
func (f *Fleet) Stop(ctx context.Context) (Stats, error) {
	if !f.ready.Load() {
		return Stats{}, errors.New("fleet: Stop without a successful Start")
	}
	if !f.draining.CompareAndSwap(false, true) {
		return Stats{}, errors.New("fleet: Stop called twice")
	}
	close(f.stop)
	f.producers.Wait()
	for _, q := range f.queues {
		close(q)
	}
	f.workers.Wait()
	for _, a := range f.agents {
		a.resume()
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
drain:
	for f.Stats().Pending > 0 {
		select {
		case <-ctx.Done():
			break drain
		case <-tick.C:
		}
	}
	close(f.rampStop)
	f.ramp.Wait()
	var dones []<-chan struct{}
	for _, a := range f.agents {
		if d := a.shutdown(); d != nil {
			dones = append(dones, d)
		}
	}
	for _, d := range dones {
		<-d
	}
	s := f.Stats()
	s.Connected, s.Offline = 0, 0
	s.Recorded, s.Acked, s.Pending = 0, 0, 0
	var errs []error
	for _, a := range f.agents {
		st, err := a.ob.Stats()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.id, err))
		} else {
			s.Recorded += st.LastSeq - a.seq0
			s.Acked += st.LastAck - a.ack0
			s.Pending += st.Depth
		}
		if err := a.ob.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.id, err))
		}
	}
	f.final = &s
	f.stopped.Store(true)
	f.unlock()
	return s, errors.Join(errs...)
}
