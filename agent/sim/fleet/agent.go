package fleet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/report"
	"github.com/relais-fr/relais/central/api"
)

// link is where an agent's connection to central stands.
type link int

const (
	linkIdle    link = iota // the ramp has not started its reporter yet
	linkOnline              // its reporter runs
	linkLeaving             // its reporter is stopping for an outage
	linkOffline             // in an outage: no reporter
	linkStopped             // the fleet stopped
)

// simAgent is one simulated agent: a real outbox, a real report.Reporter
// (a new one after each outage) and simulated devices.
type simAgent struct {
	f          *Fleet
	n          int // index within the fleet
	id         AgentID
	ob         *outbox.Outbox
	seq0, ack0 uint64        // the outbox's last seq and ack when opened
	lastSeq    atomic.Uint64 // the outbox's last seq, as recorded here
	failures   atomic.Uint64 // records refused by the outbox

	// dmu guards the device state; it is never held during an outbox
	// write. Actions of one agent are applied by one worker, in order.
	dmu    sync.Mutex
	dev    device
	faults []api.Fault // the outbox's open faults
	days   int         // simulated days reported in wifi.daily

	// rmu guards the link and the reporter figures.
	rmu    sync.Mutex
	link   link
	rep    *report.Reporter // nil when none runs
	cancel context.CancelFunc
	done   chan struct{} // closed when rep has stopped
	timer  clockwork.Timer
	lrng   *rand.Rand // outage durations
	// Figures of the reporters that have stopped.
	connects, resends uint64
	published, acked  uint64 // highest seqs
	lastError         string // of the last one, if it never connected
}

// open opens the agent's outbox in dir and reads its state.
func (a *simAgent) open(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f := a.f
	if f.cfg.Credentials != nil {
		pw, ok := f.cfg.Credentials[a.id]
		if !ok {
			return fmt.Errorf("no password for %s in the credentials", a.id)
		}
		if err := writeSecret(filepath.Join(dir, passwordFile), pw); err != nil {
			return err
		}
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{
		MaxBytes: f.cfg.OutboxBytes, KeepDelivered: keepDelivered,
		Now: f.clock.Now, Logger: f.log.With("site", a.id.Site, "agent", a.id.Agent),
	})
	if err != nil {
		return err
	}
	st, err := ob.Stats()
	if err == nil {
		a.faults, err = ob.OpenFaults()
	}
	if err != nil {
		ob.Close()
		return err
	}
	a.ob, a.seq0, a.ack0, a.published, a.acked = ob, st.LastSeq, st.LastAck, st.LastAck, st.LastAck
	a.lastSeq.Store(st.LastSeq)
	return nil
}

// writeSecret writes a password file readable by its owner only.
func writeSecret(path, secret string) error {
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // if it was there before
}

// reportConfig is the configuration of the agent's reporters.
func (a *simAgent) reportConfig() report.Config {
	cfg := a.f.cfg
	mq := cfg.MQTT
	mq.Username = a.id.Username()
	if cfg.Credentials != nil {
		mq.PasswordFile = filepath.Join(cfg.StateDir, a.id.Site, a.id.Agent, passwordFile)
	}
	return report.Config{
		MQTT: mq, Site: a.id.Site, Agent: a.id.Agent, Version: cfg.Version,
		MetricsInterval: cfg.MetricsInterval, PollInterval: cfg.PollInterval,
		Source: a, Commands: a, Logger: a.f.rlog.With("site", a.id.Site, "agent", a.id.Agent),
	}
}

// startReporter starts a new reporter; rmu is held.
func (a *simAgent) startReporter() {
	rep, err := report.New(a.reportConfig(), a.ob)
	if err != nil { // New checks only what Config validated
		a.f.log.Error("simulated agent cannot report", "site", a.id.Site, "agent", a.id.Agent, "err", err)
		a.link = linkOffline
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.rep, a.cancel, a.done, a.link = rep, cancel, done, linkOnline
	go func() {
		defer close(done)
		if err := rep.Run(ctx); err != nil {
			a.f.log.Error("simulated agent stopped reporting", "site", a.id.Site, "agent", a.id.Agent, "err", err)
		}
		a.rmu.Lock()
		a.fold(rep)
		a.rmu.Unlock()
	}()
}

// fold adds the figures of a reporter that has stopped; rmu is held.
func (a *simAgent) fold(rep *report.Reporter) {
	st := rep.State()
	a.connects += st.Connects
	a.resends += st.Resends
	a.published = max(a.published, st.Published)
	a.acked = max(a.acked, st.LastAck)
	a.lastError = ""
	if st.Connects == 0 {
		a.lastError = st.LastError
	}
	if a.rep == rep {
		a.rep = nil
	}
}

// connect is the ramp starting the agent's link: online, or in an outage
// from the start for a share of the agents.
func (a *simAgent) connect() {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.link != linkIdle {
		return
	}
	cfg := a.f.cfg
	if cfg.OfflineShare > 0 && !a.f.draining.Load() && a.lrng.Float64() < cfg.OfflineShare {
		a.link = linkOffline
		a.timer = a.f.clock.AfterFunc(a.outage(), a.comeBack)
		return
	}
	a.startReporter()
	a.scheduleOutage()
}

// outage draws the length of an outage: exponential around OfflineMean.
func (a *simAgent) outage() time.Duration {
	return time.Duration(a.lrng.ExpFloat64() * float64(a.f.cfg.OfflineMean))
}

// scheduleOutage draws when the next outage starts, so that the agent is
// offline OfflineShare of the time; rmu is held.
func (a *simAgent) scheduleOutage() {
	s := a.f.cfg.OfflineShare
	if s <= 0 {
		return
	}
	up := time.Duration(a.lrng.ExpFloat64() * float64(a.f.cfg.OfflineMean) * (1 - s) / s)
	a.timer = a.f.clock.AfterFunc(up, a.goOffline)
}

// goOffline starts an outage: the reporter stops (saying goodbye with the
// retained offline status) while the devices go on recording.
func (a *simAgent) goOffline() {
	a.rmu.Lock()
	if a.link != linkOnline || a.f.draining.Load() {
		a.rmu.Unlock()
		return
	}
	a.link = linkLeaving
	cancel, done := a.cancel, a.done
	a.rmu.Unlock()
	cancel()
	<-done
	a.rmu.Lock()
	defer a.rmu.Unlock()
	switch {
	case a.link != linkLeaving: // stopped meanwhile
	case a.f.draining.Load():
		a.startReporter()
	default:
		a.link = linkOffline
		a.timer = a.f.clock.AfterFunc(a.outage(), a.comeBack)
	}
}

// comeBack ends an outage.
func (a *simAgent) comeBack() {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.link != linkOffline {
		return
	}
	a.startReporter()
	if !a.f.draining.Load() {
		a.scheduleOutage()
	}
}

// resume ends an outage at once, for the drain; draining is set.
func (a *simAgent) resume() {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.link == linkOffline {
		a.startReporter()
	}
}

// shutdown stops the link for good and returns a channel closed once the
// reporter has said goodbye, or nil.
func (a *simAgent) shutdown() <-chan struct{} {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
	}
	prev := a.link
	a.link = linkStopped
	if prev == linkOnline || prev == linkLeaving {
		a.cancel()
		return a.done
	}
	return nil
}

// kick tells the reporter, if any, that there is something new.
func (a *simAgent) kick() {
	a.rmu.Lock()
	rep := a.rep
	a.rmu.Unlock()
	if rep != nil {
		rep.Kick()
	}
}

// noteSeq records that the outbox assigned seq.
func (a *simAgent) noteSeq(seq uint64) {
	for {
		cur := a.lastSeq.Load()
		if seq <= cur || a.lastSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// record records a usage event.
func (a *simAgent) record(e api.Event) {
	got, err := a.ob.RecordEvent(e)
	if err != nil {
		a.fail("recording an event", err)
		return
	}
	a.noteSeq(got.Seq)
}

func (a *simAgent) fail(what string, err error) {
	if n := a.failures.Add(1); n&(n-1) == 0 {
		a.f.log.Warn("simulated agent: "+what, "site", a.id.Site, "agent", a.id.Agent, "err", err, "count", n)
	}
}

// apply carries out one action; the agent's worker calls it.
func (a *simAgent) apply(act action) {
	switch {
	case act.fault != nil:
		a.toggle(*act.fault)
	case act.day:
		a.dmu.Lock()
		k := a.days
		a.days++
		v := a.dev.visitors()
		a.dmu.Unlock()
		if day := a.f.dayName(k); day != "" {
			a.record(api.Event{Type: api.EventWiFiDaily, Day: day, Visitors: &v})
		}
	default:
		a.dmu.Lock()
		a.dev.use(act.event, a.ob.Today())
		a.dmu.Unlock()
		a.record(act.event)
	}
	a.kick()
	a.f.applied.Add(1)
}

// toggle raises k if it is not open, or clears it, through the outbox,
// which records fault.raised or fault.cleared.
func (a *simAgent) toggle(k faultKind) {
	a.dmu.Lock()
	open := hasFault(a.faults, k)
	a.dmu.Unlock()
	var err error
	if open {
		err = a.ob.Clear(k.device, k.code)
	} else {
		err = a.ob.Raise(k.device, k.code, k.severity)
	}
	if err != nil {
		a.fail("raising or clearing a fault", err)
		return
	}
	faults, err := a.ob.OpenFaults()
	if err != nil {
		a.fail("reading open faults", err)
		return
	}
	st, err := a.ob.Stats()
	if err != nil {
		a.fail("reading the outbox", err)
		return
	}
	a.noteSeq(st.LastSeq)
	a.dmu.Lock()
	a.faults = faults
	a.dmu.Unlock()
}

// Status implements report.Source: the open faults, whose severity makes
// the health.
func (a *simAgent) Status() (api.Health, []api.Fault) {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	return report.HealthOf(a.faults), append([]api.Fault(nil), a.faults...)
}

// Metrics implements report.Source.
func (a *simAgent) Metrics() api.Metrics {
	now := a.f.clock.Now()
	today := a.ob.Day(now)
	a.dmu.Lock()
	defer a.dmu.Unlock()
	return a.dev.metrics(now, today, a.faults)
}

// Run implements report.Commands: identify and purge-scans succeed (there
// is no LED or inbox to act on), cancel-jobs too (the simulated queue is
// always empty), and test-page prints one page, recorded as a
// print.completed from central.
func (a *simAgent) Run(ctx context.Context, cmd api.Command) error {
	a.f.commands.Add(1)
	switch cmd.Name {
	case api.CommandIdentify, api.CommandCancelJobs, api.CommandPurgeScans:
		return nil
	case api.CommandTestPage:
		e := api.Event{Type: api.EventPrintCompleted, Source: api.SourceCentral, Pages: new(1), Sheets: new(1),
			Color: new(false), Duplex: new(false), Format: "application/pdf", Bytes: new(int64(24_000))}
		a.dmu.Lock()
		a.dev.use(e, a.ob.Today())
		a.dmu.Unlock()
		got, err := a.ob.RecordEvent(e)
		if err != nil {
			a.fail("recording a test page", err)
			return report.PublicError("the test page could not be recorded")
		}
		a.noteSeq(got.Seq)
		a.kick()
		return nil
	}
	return report.PublicError("not supported by the simulated agent")
}

// figures are one agent's contribution to Stats.
type figures struct {
	connected, offline                  bool
	lastSeq, published, acked, connects uint64
	resends                             uint64
	lastError                           string // of a reporter not connected
}

func (a *simAgent) figures() figures {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	g := figures{
		offline: a.link == linkOffline || a.link == linkLeaving,
		lastSeq: a.lastSeq.Load(), published: a.published, acked: a.acked,
		connects: a.connects, resends: a.resends, lastError: a.lastError,
	}
	if a.rep != nil {
		st := a.rep.State()
		g.connected = st.Connected
		if !st.Connected && st.LastError != "" {
			g.lastError = st.LastError
		}
		g.connects += st.Connects
		g.resends += st.Resends
		g.published = max(g.published, st.Published)
		g.acked = max(g.acked, st.LastAck)
	}
	return g
}
