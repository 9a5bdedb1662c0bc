package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/uplink"
	"github.com/relais-fr/relais/central/api"
)

// maxFaults is the most faults a status lists (the contract's bound).
const maxFaults = 32

// session makes one connection, with a new client, and publishes on it
// until the connection is lost, a publish fails or ctx is done. Every
// (re)connection goes through here, so each one subscribes again (the
// session is clean) and publishes the birth before anything else, then
// sends every unacked event from the last ack. connected reports whether
// the connection got that far.
func (r *Reporter) session(ctx context.Context) (connected bool, err error) {
	opts, err := uplink.Options(r.cfg.MQTT, r.clientID)
	if err != nil {
		return false, err
	}
	lost := make(chan error, 1)
	opts.SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetWill(r.topic.status, string(api.OfflineWill()), 1, true).
		SetWriteTimeout(waitLimit).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if r.cfg.KeepAlive > 0 {
		opts.SetKeepAlive(r.cfg.KeepAlive)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if err := wait(ctx, tok, opts.ConnectTimeout+waitLimit); err != nil {
		if ctx.Err() != nil {
			// Do not leave a connection behind if it completes later.
			go func() {
				if tok.Wait() && tok.Error() == nil {
					c.Disconnect(0)
				}
			}()
		}
		return false, fmt.Errorf("connect to %s: %w", r.cfg.MQTT.Broker, err)
	}
	defer func() {
		r.setClient(nil)
		if c.IsConnectionOpen() {
			c.Disconnect(100)
		}
	}()

	for topic, h := range map[string]mqtt.MessageHandler{r.topic.ack: r.onAck, r.topic.cmd: r.onCommand} {
		tok := c.Subscribe(topic, 1, h)
		if err := wait(ctx, tok, waitLimit); err != nil {
			return false, fmt.Errorf("subscribe to %s: %w", topic, err)
		}
		if q := tok.(*mqtt.SubscribeToken).Result()[topic]; q > 2 {
			return false, fmt.Errorf("subscribe to %s: refused by the broker (code %#x)", topic, q)
		}
	}
	l := &loop{r: r, c: c, sent: r.lastAck.Load(), lastAck: r.lastAck.Load(), durable: r.durable.Load(), flushed: r.clock.Now()}
	defer func() {
		l.takeAck()
		l.flushAck(true)
	}()
	if err := l.publishStatus(ctx, true); err != nil {
		return false, err
	}
	r.setClient(c)
	r.connects.Add(1)
	r.log.Info("connected to central", "broker", r.cfg.MQTT.Broker, "client", r.clientID, "last_ack", l.lastAck)
	if r.cfg.Source != nil {
		r.snapshot() // a fresh snapshot for the dashboard
	}

	for {
		if err := l.step(ctx); err != nil {
			return true, err
		}
		t := r.clock.NewTimer(l.nextWake())
		select {
		case <-ctx.Done():
			t.Stop()
			l.goodbye()
			return true, nil
		case err := <-lost:
			t.Stop()
			return true, fmt.Errorf("connection lost: %w", err)
		case <-r.wake:
		case <-t.C():
		}
		t.Stop()
	}
}

// loop is the publishing state of one connection. Only the session's
// goroutine uses it.
type loop struct {
	r        *Reporter
	c        mqtt.Client
	sent     uint64      // highest seq published on this connection
	lastAck  uint64      // central's last ack
	durable  uint64      // the outbox's last ack, at most lastAck
	flushed  time.Time   // when lastAck was last written to the outbox
	progress time.Time   // last ack progress, first send after none in flight, or resend
	status   *api.Status // last status published
	more     bool        // work is left over (a metrics backlog)
	polled   time.Time   // when status and metrics were last checked
}

// step does what is due: take in central's ack, publish a changed status
// (checked every PollInterval, or now for a refresh), send unacked events
// again after AckTimeout, publish events up to the window, and publish
// stored metrics (when a snapshot was added, or every PollInterval). It
// fails only when the connection does; outbox errors are logged and
// retried at the next step.
func (l *loop) step(ctx context.Context) error {
	r := l.r
	poll := r.clock.Now().Sub(l.polled) >= r.cfg.PollInterval
	if poll {
		l.polled = r.clock.Now()
	}
	acked := l.takeAck()
	l.flushAck(false)
	if poll || r.refresh.Load() {
		if err := l.publishStatus(ctx, false); err != nil {
			return err
		}
	}
	if l.sent > l.lastAck && r.clock.Now().Sub(l.progress) >= r.cfg.AckTimeout {
		r.log.Info("no ack in time, sending unacked events again", "from", l.lastAck+1, "to", l.sent)
		l.sent = l.lastAck
		l.progress = r.clock.Now()
		r.resends.Add(1)
	}
	// While events are in flight, new ones wait for the next ack (see
	// publishEvents), so a Kick alone need not look for them.
	if l.sent == l.lastAck || acked || poll {
		if err := l.publishEvents(); err != nil {
			return err
		}
	}
	if poll || l.more || r.newMetrics.Swap(false) {
		return l.publishMetrics()
	}
	return nil
}

// nextWake returns how long the loop may sleep without a wake-up.
func (l *loop) nextWake() time.Duration {
	if l.more {
		return 0
	}
	now := l.r.clock.Now()
	d := l.polled.Add(l.r.cfg.PollInterval).Sub(now)
	if l.sent > l.lastAck {
		d = min(d, l.progress.Add(l.r.cfg.AckTimeout).Sub(now))
	}
	if l.lastAck > l.durable {
		d = min(d, l.flushed.Add(ackFlush).Sub(now))
	}
	return d
}

// takeAck takes in the highest valid ack received: those events are no
// longer in flight. It reports whether the ack moved.
func (l *loop) takeAck() bool {
	r := l.r
	upto := r.ackTarget.Load()
	if upto <= l.lastAck {
		return false
	}
	l.lastAck = upto
	r.lastAck.Store(upto)
	l.progress = r.clock.Now()
	l.sent = max(l.sent, upto)
	r.inFlight.Store(int64(l.sent - l.lastAck))
	return true
}

// flushAck marks the events up to central's ack delivered in the outbox,
// at most every ackFlush unless force is set (at the end of a connection),
// so that a steady flow costs one outbox transaction per ackFlush rather
// than one per message. Until then the outbox still holds the events as
// pending: a crash sends them again, which central ignores.
func (l *loop) flushAck(force bool) {
	r := l.r
	if l.lastAck <= l.durable || !force && r.clock.Now().Sub(l.flushed) < ackFlush {
		return
	}
	upto := l.lastAck
	l.flushed = r.clock.Now()
	if err := r.ob.Ack(upto); err != nil {
		if errors.Is(err, outbox.ErrAckBeyond) { // onAck checks Published, so not expected
			r.countLog(&r.rejectedAcks, "ack refused by the outbox", "err", err)
			l.durable = upto // do not try again
			return
		}
		r.log.Error("recording central's ack in the outbox", "err", err)
		r.setError(err)
		return
	}
	l.durable = upto
	r.durable.Store(upto)
}

// publishEvents publishes unacked events in seq order while fewer than
// Window are in flight. As in Nagle's algorithm, a batch smaller than
// Batch waits while events are in flight: events recorded one by one are
// sent at once when the line is idle, and gathered into one message per
// ack round trip when it is not.
func (l *loop) publishEvents() error {
	r := l.r
	window, batch := uint64(r.cfg.Window), uint64(r.cfg.Batch)
	for l.sent-l.lastAck < window {
		evs, err := r.ob.Pending(l.sent, int(min(batch, window-(l.sent-l.lastAck))))
		if err != nil {
			r.log.Error("reading events from the outbox", "err", err)
			r.setError(err)
			return nil
		}
		if len(evs) == 0 || uint64(len(evs)) < batch && l.sent > l.lastAck {
			return nil
		}
		payload, evs, err := encodeBatch(evs)
		if err != nil {
			// A stored event the contract now refuses: it stays in the
			// outbox, visible in State, rather than being skipped.
			err = fmt.Errorf("event seq %d cannot be published: %w", evs[0].Seq, err)
			r.log.Error("delivery blocked", "err", err)
			r.setError(err)
			return nil
		}
		last := evs[len(evs)-1].Seq
		if last > r.published.Load() {
			r.published.Store(last) // before the ack can come back; only this goroutine stores
		}
		if err := failed(l.c.Publish(r.topic.events, 1, false, payload)); err != nil {
			return fmt.Errorf("publish events: %w", err)
		}
		if l.sent == l.lastAck {
			l.progress = r.clock.Now()
		}
		l.sent = last
		r.inFlight.Store(int64(l.sent - l.lastAck))
	}
	return nil
}

// encodeBatch encodes as many of evs as fit one payload, halving the
// count while the encoding is too large, and returns the events encoded.
func encodeBatch(evs []api.Event) ([]byte, []api.Event, error) {
	for {
		b, err := api.EncodeEvents(evs...)
		if errors.Is(err, api.ErrTooLarge) && len(evs) > 1 {
			evs = evs[:len(evs)/2]
			continue
		}
		return b, evs, err
	}
}

// publishMetrics publishes stored snapshots, oldest first, at QoS 0, and
// deletes those written to the connection. A snapshot lost on the way (the
// connection drops right after) is not sent again: metrics are best effort.
func (l *loop) publishMetrics() error {
	r := l.r
	l.more = false
	ms, err := r.ob.PendingMetrics(0, metricsPerRound)
	if err != nil {
		r.log.Error("reading metrics from the outbox", "err", err)
		return nil
	}
	if len(ms) == 0 {
		return nil
	}
	toks := make([]mqtt.Token, len(ms))
	for i, m := range ms {
		toks[i] = l.c.Publish(r.topic.metrics, 0, false, m.Payload)
	}
	var done int64
	for i, tok := range toks {
		if err := wait(context.Background(), tok, waitLimit); err != nil {
			if done > 0 {
				r.ob.AckMetrics(done)
			}
			return fmt.Errorf("publish metrics: %w", err)
		}
		done = ms[i].ID
	}
	if err := r.ob.AckMetrics(done); err != nil {
		r.log.Error("deleting published metrics from the outbox", "err", err)
		return nil
	}
	l.more = len(ms) == metricsPerRound
	return nil
}

// publishStatus publishes the retained online status if force is set, a
// refresh was asked for, or health or faults changed since the last one.
func (l *loop) publishStatus(ctx context.Context, force bool) error {
	r := l.r
	health, faults, ok := r.currentStatus()
	switch {
	case ok:
	case l.status == nil: // the birth, faults unknown
		health, faults = api.HealthWarn, nil
	case !force:
		return nil
	default:
		health, faults = l.status.Health, l.status.Faults
	}
	if r.refresh.Swap(false) {
		force = true
	}
	if !force && l.status != nil && sameStatus(*l.status, health, faults) {
		return nil
	}
	st := api.Status{Online: true, Time: r.stamp(), Version: r.cfg.Version, Health: health, Faults: faults}
	b, err := api.Encode(st)
	if err != nil { // normalizeStatus makes this unexpected
		r.log.Error("status cannot be encoded", "err", err)
		return nil
	}
	if err := wait(ctx, l.c.Publish(r.topic.status, 1, true, b), waitLimit); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	l.status = &st
	return nil
}

// goodbye publishes the retained offline status, since a clean disconnect
// does not fire the will, and disconnects.
func (l *loop) goodbye() {
	b, _ := api.Encode(api.Status{Online: false})
	if err := wait(context.Background(), l.c.Publish(l.r.topic.status, 1, true, b), goodbyeLimit); err != nil {
		l.r.log.Warn("publishing the offline status", "err", err)
	}
	l.c.Disconnect(250)
	l.r.log.Info("disconnected from central")
}

// currentStatus returns the health and faults to publish; ok is false if
// they cannot be read.
func (r *Reporter) currentStatus() (api.Health, []api.Fault, bool) {
	var health api.Health
	var faults []api.Fault
	if r.cfg.Source != nil {
		health, faults = r.cfg.Source.Status()
	} else {
		var err error
		if faults, err = r.ob.OpenFaults(); err != nil {
			r.log.Error("reading open faults from the outbox", "err", err)
			return "", nil, false
		}
	}
	health, faults = normalizeStatus(health, faults)
	return health, faults, true
}

// HealthOf returns the health that faults imply: fault if one has severity
// fault, warn if there are others, ok if there is none.
func HealthOf(faults []api.Fault) api.Health {
	h := api.HealthOK
	for _, f := range faults {
		switch f.Severity {
		case api.SeverityFault:
			return api.HealthFault
		case api.SeverityWarn:
			h = api.HealthWarn
		}
	}
	return h
}

func severity(s api.Severity) int { return rank(api.Health(s)) }

func rank(h api.Health) int {
	switch h {
	case api.HealthOK:
		return 0
	case api.HealthWarn:
		return 1
	case api.HealthFault:
		return 2
	}
	return -1
}

// normalizeStatus makes a status the contract accepts: invalid and
// duplicate faults dropped, at most maxFaults (the most severe first),
// health at least as severe as every fault.
func normalizeStatus(health api.Health, faults []api.Fault) (api.Health, []api.Fault) {
	var fs []api.Fault
	for _, f := range faults {
		f.Since = f.Since.UTC()
		dup := slices.ContainsFunc(fs, func(g api.Fault) bool { return g.Device == f.Device && g.Code == f.Code })
		if !dup && f.Validate() == nil {
			fs = append(fs, f)
		}
	}
	if len(fs) > maxFaults {
		slices.SortStableFunc(fs, func(a, b api.Fault) int {
			return cmp.Compare(severity(b.Severity), severity(a.Severity))
		})
		fs = fs[:maxFaults]
	}
	if worst := HealthOf(fs); rank(health) < rank(worst) {
		health = worst
	}
	return health, fs
}

func sameStatus(s api.Status, health api.Health, faults []api.Fault) bool {
	return s.Health == health && slices.EqualFunc(s.Faults, faults, func(a, b api.Fault) bool {
		return a.Code == b.Code && a.Device == b.Device && a.Severity == b.Severity && a.Since.Equal(b.Since)
	})
}

// stamp returns the clock in UTC to the millisecond, or the contract's
// earliest time when the clock is out of its range (a Pi without RTC before
// NTP reads 1970).
func (r *Reporter) stamp() time.Time {
	t := r.clock.Now().UTC().Truncate(time.Millisecond)
	if t.Year() < 2020 || t.Year() > 2099 {
		return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

// wait waits for tok, at most limit, and returns its error.
func wait(ctx context.Context, tok mqtt.Token, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer from the broker in %v", limit)
	}
}

// failed returns the error of a token that already failed, without
// waiting for one in progress.
func failed(tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return nil
	}
}
