package panel

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// t0 is when every test starts, on its fake clock.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// guard bounds a wait for something that must happen; it never paces a test.
const guard = 10 * time.Second

// write is one level written to an output pin, at the fake clock's time.
type write struct {
	at    time.Duration // since t0
	level gpio.Level
}

// outPin is a gpiotest pin used as an output that records what is written
// to it and fails the test if it is read: on periph.io's character-device
// driver, Read reconfigures an output as an input.
type outPin struct {
	*gpiotest.Pin
	t      testing.TB
	clock  clockwork.Clock
	mu     sync.Mutex
	writes []write
}

func newOutPin(t testing.TB, clock clockwork.Clock, name string) *outPin {
	return &outPin{Pin: &gpiotest.Pin{N: name, Clock: clockwork.NewRealClock()}, t: t, clock: clock}
}

func (o *outPin) Read() gpio.Level {
	o.t.Errorf("Read() on output pin %s", o.N)
	return o.Pin.Read()
}

func (o *outPin) Out(l gpio.Level) error {
	o.mu.Lock()
	o.writes = append(o.writes, write{o.clock.Now().Sub(t0), l})
	o.mu.Unlock()
	return o.Pin.Out(l)
}

// level is what the LED shows now.
func (o *outPin) level() gpio.Level {
	o.Lock()
	defer o.Unlock()
	return o.L
}

// taken returns the writes since the last call.
func (o *outPin) taken() []write {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.writes
	o.writes = nil
	return w
}

// rig is a running panel on gpiotest pins and a fake clock. The button
// pin's own clock is real: it only paces the reader's WaitForEdge polls,
// which notice a stop; debounce, thresholds and blinks follow the fake one.
type rig struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	button *gpiotest.Pin
	led    *outPin
	fault  *outPin
	p      *Panel
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	return newRigWith(t, opts, func(b *gpiotest.Pin) gpio.PinIn { return b })
}

// newRigWith is newRig with the button pin wrapped.
func newRigWith(t *testing.T, opts Options, wrap func(*gpiotest.Pin) gpio.PinIn) *rig {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	r := &rig{
		t:      t,
		clock:  clock,
		button: &gpiotest.Pin{N: "GPIO27", Clock: clockwork.NewRealClock(), EdgesChan: make(chan gpio.Level)},
		led:    newOutPin(t, clock, "GPIO17"),
		fault:  newOutPin(t, clock, "GPIO22"),
	}
	opts.Clock = clock
	p, err := New(Pins{Button: wrap(r.button), LED: r.led, FaultLED: r.fault}, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// run starts the panel until the end of the test.
func (r *rig) run() *rig {
	r.t.Helper()
	if err := r.p.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { r.p.Close() })
	return r
}

// edge puts the button at level, now, and waits until the panel has
// handled it.
func (r *rig) edge(level gpio.Level) {
	r.t.Helper()
	select {
	case r.button.EdgesChan <- level:
	case <-time.After(guard):
		r.t.Fatal("the button reader does not wait for edges")
	}
	select {
	case <-r.p.inputs[0].handled:
	case <-time.After(guard):
		r.t.Fatal("edge not handled")
	}
}

// advance moves the fake clock on and brings the panel up to date.
func (r *rig) advance(d time.Duration) {
	r.clock.Advance(d)
	r.p.Pattern()
}

// gesture returns the next gesture, which must come.
func (r *rig) gesture() Event {
	r.t.Helper()
	select {
	case ev := <-r.p.Gestures():
		return ev
	case <-time.After(guard):
		r.t.Fatal("no gesture")
		return Event{}
	}
}

// noGesture checks that no gesture is due by now.
func (r *rig) noGesture() {
	r.t.Helper()
	r.p.Pattern()
	select {
	case ev := <-r.p.Gestures():
		r.t.Errorf("unexpected gesture %+v at %v", ev, r.clock.Now().Sub(t0))
	default:
	}
}

// press holds the button for d, with clean edges, and lets the release's
// debounce window pass.
func (r *rig) press(d time.Duration) {
	r.edge(gpio.Low)
	r.advance(d)
	r.edge(gpio.High)
	r.advance(DefaultDebounce)
}
