package panel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/host/v3"

	"github.com/relais-fr/relais/configs"
)

// poll bounds each WaitForEdge: periph.io host v3.8.5 returns at once from
// WaitForEdge(-1), so the button is watched with finite timeouts in a loop,
// which also rereads the level in case an edge was lost and notices a stop.
const poll = 100 * time.Millisecond

// Options tune a Panel; the zero value is DESIGN §5's behaviour.
type Options struct {
	Clock      clockwork.Clock // time of debounce, thresholds and blinks; nil: the real clock
	Thresholds Thresholds      // zero: DefaultThresholds
	Debounce   time.Duration   // zero: DefaultDebounce
	Logger     *slog.Logger    // nil: no log
}

// Pins are a panel's GPIO pins. Button may be nil: the panel then has only
// the simulated button that Press drives. FaultLED may be nil.
type Pins struct {
	Button   gpio.PinIn
	LED      gpio.PinOut
	FaultLED gpio.PinOut
}

// Panel is the button and its LEDs. Its methods are safe for concurrent
// use. LED states can be set before Run; the LEDs stay off ("agent stopped")
// until Run and after it.
type Panel struct {
	clock    clockwork.Clock
	log      *slog.Logger
	pins     Pins
	inputs   []*input
	sim      *input // the simulated button that Press drives
	gestures chan Event
	stopped  chan struct{} // closed when Run has returned or Close was called

	mu        sync.Mutex
	leds      leds
	lit, flit gpio.Level // last levels written to LED and FaultLED
	written   bool       // lit and flit hold what the pins show
	timer     clockwork.Timer
	timerAt   time.Time
	timerGen  int
	started   bool
	cancel    context.CancelFunc
	runDone   chan struct{}
	pressing  bool
	simMu     sync.Mutex // one simulated edge at a time, each waiting for its own handling
	closeOnce sync.Once
}

// input is one button: the real one on its GPIO pin, or the simulated one.
type input struct {
	name    string
	pin     gpio.PinIn
	edges   chan gpio.Level // the simulated pin's edges, nil for a real pin
	det     detector
	level   gpio.Level    // last level handled; owned by the reader
	handled chan struct{} // a token after each handled edge
}

// Open opens the panel that cfg describes: simulated pins when cfg.Simulate
// is set, else the named GPIO pins through periph.io's host drivers.
func Open(cfg configs.AgentPanel, opts Options) (*Panel, error) {
	if cfg.Simulate {
		pins := Pins{LED: simPin(cmp.Or(cfg.LED, "LED"))}
		if cfg.FaultLED != "" {
			pins.FaultLED = simPin(cfg.FaultLED)
		}
		return New(pins, opts)
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("panel: no GPIO (%v); set [panel] simulate = true to run without a button", err)
	}
	if len(gpioreg.All()) == 0 {
		return nil, errors.New("panel: no GPIO driver loaded on this board; set [panel] simulate = true to run without a button")
	}
	var pins Pins
	for _, p := range []struct {
		key, name string
		set       func(gpio.PinIO)
	}{
		{"panel.button", cfg.Button, func(p gpio.PinIO) { pins.Button = p }},
		{"panel.led", cfg.LED, func(p gpio.PinIO) { pins.LED = p }},
		{"panel.fault_led", cfg.FaultLED, func(p gpio.PinIO) { pins.FaultLED = p }},
	} {
		if p.name == "" && p.key == "panel.fault_led" {
			continue
		}
		pin := gpioreg.ByName(p.name)
		if pin == nil {
			return nil, fmt.Errorf("panel: %s: pin %q does not exist on this board", p.key, p.name)
		}
		p.set(pin)
	}
	return New(pins, opts)
}

// simPin returns an in-memory output pin: Pattern tells what it shows.
func simPin(name string) gpio.PinOut {
	return &gpiotest.Pin{N: name, Clock: clockwork.NewRealClock()}
}

// New makes a panel of the given pins: the button is set as an input with
// its pull-up (pressed is Low) and both edges, the LEDs as outputs, off.
func New(pins Pins, opts Options) (*Panel, error) {
	if pins.LED == nil {
		return nil, errors.New("panel: no LED pin")
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Thresholds == (Thresholds{}) {
		opts.Thresholds = DefaultThresholds()
	}
	if opts.Debounce == 0 {
		opts.Debounce = DefaultDebounce
	}
	if err := opts.Thresholds.check(opts.Debounce); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Panel{
		clock:    opts.Clock,
		log:      opts.Logger,
		pins:     pins,
		gestures: make(chan Event, 16),
		stopped:  make(chan struct{}),
	}
	if pins.Button != nil {
		if err := pins.Button.In(gpio.PullUp, gpio.BothEdges); err != nil {
			return nil, fmt.Errorf("panel: button %s: %w", pins.Button.Name(), err)
		}
		p.inputs = append(p.inputs, newInput("button", pins.Button, nil, opts.Debounce, opts.Thresholds))
	}
	// The simulated button: [panel] simulate's only button, and a second
	// one beside a real button for `relais-agent ctl press`. Its edges do
	// not bounce, so it has no debounce window.
	edges := make(chan gpio.Level)
	sim := &gpiotest.Pin{N: "SIMULATED", Clock: clockwork.NewRealClock(), EdgesChan: edges}
	if err := sim.In(gpio.PullUp, gpio.BothEdges); err != nil {
		return nil, err
	}
	p.sim = newInput("ctl", sim, edges, 0, opts.Thresholds)
	p.inputs = append(p.inputs, p.sim)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.apply(p.clock.Now()); err != nil {
		return nil, err
	}
	return p, nil
}

func newInput(name string, pin gpio.PinIn, edges chan gpio.Level, debounce time.Duration, th Thresholds) *input {
	level := pin.Read()
	return &input{
		name: name, pin: pin, edges: edges, level: level,
		det:     newDetector(debounce, th, level),
		handled: make(chan struct{}, 1),
	}
}

// Gestures returns the gestures as they are made. It holds a few; while it
// is full, further gestures are dropped (and logged): read it promptly, as
// Dispatcher does.
func (p *Panel) Gestures() <-chan Event { return p.gestures }

// Run watches the button and drives the LEDs until ctx is done or Close is
// called, then turns the LEDs off and returns. A panel runs once.
func (p *Panel) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	p.Wait()
	return nil
}

// Wait waits until a started panel has stopped (its LEDs off).
func (p *Panel) Wait() {
	p.mu.Lock()
	done := p.runDone
	p.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Start is Run without waiting: it lights the LED, starts watching the
// button and returns; the panel stops when ctx is done or on Close.
func (p *Panel) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("panel: already started")
	}
	p.started = true
	ctx, p.cancel = context.WithCancel(ctx)
	p.runDone = make(chan struct{})
	p.leds.running = true
	err := p.apply(p.clock.Now())
	p.mu.Unlock()
	if err != nil {
		p.cancel()
		p.stop()
		close(p.runDone)
		return err
	}
	var wg sync.WaitGroup
	for _, in := range p.inputs {
		wg.Go(func() { p.watch(ctx, in) })
	}
	p.log.Info("panel running", "button", pinName(p.pins.Button), "led", p.pins.LED.Name(), "fault_led", pinName(p.pins.FaultLED))
	go func() {
		<-ctx.Done()
		for _, in := range p.inputs {
			_ = in.pin.Halt() // interrupts a WaitForEdge on the character device
		}
		p.stop()
		wg.Wait()
		close(p.runDone)
	}()
	return nil
}

func pinName(p interface{ Name() string }) string {
	if p == nil {
		return ""
	}
	return p.Name()
}

// stop turns the LEDs off for good.
func (p *Panel) stop() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.leds.running = false
		if err := p.apply(p.clock.Now()); err != nil {
			p.log.Warn("panel: turning the LEDs off", "err", err)
		}
		close(p.stopped)
	})
}

// Close stops the panel if it runs, waits for it to stop watching the
// button, and turns the LEDs off ("agent stopped").
func (p *Panel) Close() error {
	p.mu.Lock()
	cancel, done := p.cancel, p.runDone
	p.started = true // no Start after Close
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	p.stop()
	return nil
}

// watch reads one button input until ctx is done.
func (p *Panel) watch(ctx context.Context, in *input) {
	for ctx.Err() == nil {
		edge := in.pin.WaitForEdge(poll)
		level := in.pin.Read()
		if !edge && level == in.level {
			continue
		}
		in.level = level
		p.handleEdge(in, p.clock.Now(), level)
		select {
		case in.handled <- struct{}{}:
		default:
		}
	}
}

func (p *Panel) handleEdge(in *input, now time.Time, level gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in == p.sim && level == gpio.High {
		p.pressing = false
	}
	p.catchUp(now)
	if in.det.edge(now, level) {
		p.leds.flicker(now)
	}
	p.catchUp(now)
	p.applyLogged(now)
}

// catchUp brings every button to now, reporting its gestures.
func (p *Panel) catchUp(now time.Time) {
	for _, in := range p.inputs {
		for _, o := range in.det.advance(now) {
			if o.gesture == "" {
				p.log.Info("button: press between short and long ignored", "input", in.name,
					"held", o.held, "short_below", in.det.th.Short, "long_from", in.det.th.Long)
				continue
			}
			ev := Event{Gesture: o.gesture, Input: in.name, At: o.at, Held: o.held}
			p.log.Info("button: gesture", "gesture", ev.Gesture, "input", ev.Input, "held", ev.Held)
			select {
			case p.gestures <- ev:
			default:
				p.log.Warn("button: gesture dropped, nobody reads them", "gesture", ev.Gesture)
			}
		}
	}
}

func (p *Panel) applyLogged(now time.Time) {
	if err := p.apply(now); err != nil {
		p.log.Warn("panel: LED", "err", err)
	}
}

// apply writes the LEDs as they must be at now (only when their level
// changes: the output pins are never read back, since Read reconfigures a
// periph.io character-device pin as an input) and arms the timer for the
// next change. p.mu is held.
func (p *Panel) apply(now time.Time) error {
	_, level, next := p.leds.show(now)
	fault := gpio.Level(p.leds.fault())
	var errs []error
	if !p.written || level != p.lit {
		if err := p.pins.LED.Out(level); err != nil {
			errs = append(errs, fmt.Errorf("LED %s: %w", p.pins.LED.Name(), err))
		}
		p.lit = level
	}
	if p.pins.FaultLED != nil && (!p.written || fault != p.flit) {
		if err := p.pins.FaultLED.Out(fault); err != nil {
			errs = append(errs, fmt.Errorf("fault LED %s: %w", p.pins.FaultLED.Name(), err))
		}
		p.flit = fault
	}
	p.written = true
	if p.leds.running {
		for _, in := range p.inputs {
			if t, ok := in.det.next(); ok {
				next = earliest(next, t)
			}
		}
	} else {
		next = time.Time{}
	}
	p.schedule(now, next)
	return errors.Join(errs...)
}

// schedule arms the timer to bring the panel up to date at next (zero:
// disarm). p.mu is held.
func (p *Panel) schedule(now, next time.Time) {
	if next.Equal(p.timerAt) && p.timer != nil {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.timerGen++
	p.timerAt = next
	if next.IsZero() {
		return
	}
	gen := p.timerGen
	p.timer = p.clock.AfterFunc(next.Sub(now), func() { p.tick(gen) })
}

func (p *Panel) tick(gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.timerGen || !p.leds.running {
		return
	}
	p.timer = nil
	p.timerAt = time.Time{}
	now := p.clock.Now()
	p.catchUp(now)
	p.applyLogged(now)
}

// update runs f on the LED state at the current time and shows the result.
func (p *Panel) update(f func(now time.Time)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	p.catchUp(now)
	f(now)
	p.applyLogged(now)
}

// Set sets or clears a state of the LED.
func (p *Panel) Set(s State, on bool) {
	if s < 0 || s >= numStates {
		return
	}
	p.update(func(now time.Time) { p.leds.set(s, on, now) })
}

// Flicker acknowledges: the LED is inverted for 100 ms. Every press of the
// button flickers by itself.
func (p *Panel) Flicker() { p.update(p.leds.flicker) }

// Identify blinks the LED at 8 Hz for d (IdentifyDuration for IPP
// Identify-Printer and central's identify); d ≤ 0 stops it.
func (p *Panel) Identify(d time.Duration) {
	p.update(func(now time.Time) { p.leds.identify(now, d) })
}

// Pattern returns the name of the LED's current pattern: off, ready,
// acknowledge, working, held, fault or identify.
func (p *Panel) Pattern() string {
	var name string
	p.update(func(now time.Time) { name, _, _ = p.leds.show(now) })
	return name
}

// Press makes gesture g on the simulated button, as a person would: the
// button goes down at once (and the LED acknowledges), and comes up after
// a hold that makes g (200 ms; the long threshold plus 250 ms; the very
// long one plus 250 ms) on the panel's clock. Press returns when the press
// has been handled; the gesture follows on Gestures. It drives the same
// debounce-free detector as the real button, beside it if there is one.
func (p *Panel) Press(g Gesture) error {
	th := p.sim.det.th
	const margin = 250 * time.Millisecond
	var hold time.Duration
	switch g {
	case Short:
		hold = min(200*time.Millisecond, th.Short/2)
	case Long:
		hold = min(th.Long+margin, (th.Long+th.VeryLong)/2)
	case VeryLong:
		hold = th.VeryLong + margin
	default:
		return fmt.Errorf("panel: unknown gesture %q: want %s, %s or %s", g, Short, Long, VeryLong)
	}
	p.mu.Lock()
	if !p.leds.running {
		p.mu.Unlock()
		return errors.New("panel: not running")
	}
	if p.pressing {
		p.mu.Unlock()
		return ErrBusy
	}
	p.pressing = true
	p.mu.Unlock()
	if !p.simulate(gpio.Low) {
		return errors.New("panel: stopped")
	}
	p.clock.AfterFunc(hold, func() { p.simulate(gpio.High) })
	return nil
}

// simulate puts the simulated button at level and waits for the edge to be
// handled; false if the panel stopped first.
func (p *Panel) simulate(level gpio.Level) bool {
	p.simMu.Lock()
	defer p.simMu.Unlock()
	select {
	case p.sim.edges <- level:
	case <-p.stopped:
		return false
	}
	select {
	case <-p.sim.handled:
		return true
	case <-p.stopped:
		return false
	}
}
