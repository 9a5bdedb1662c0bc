package panel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/relais-fr/relais/configs"
)

const ms = time.Millisecond

func TestThresholdsExact(t *testing.T) {
	for _, tc := range []struct {
		held time.Duration
		want Gesture // "": ignored
	}{
		{DefaultDebounce + 1, Short}, // shorter is a glitch: see TestGlitchIsAcknowledgedButNoGesture
		{1499 * ms, Short},
		{1500 * ms, ""},
		{2999 * ms, ""},
		{3000 * ms, Long},
		{9999 * ms, Long},
	} {
		t.Run(tc.held.String(), func(t *testing.T) {
			r := newRig(t, Options{}).run()
			r.edge(gpio.Low)
			r.advance(tc.held)
			r.noGesture()
			r.edge(gpio.High)
			r.advance(DefaultDebounce - 1)
			r.noGesture() // a release is reported once confirmed
			r.advance(1)
			if tc.want == "" {
				r.noGesture()
				return
			}
			ev := r.gesture()
			if ev.Gesture != tc.want || ev.Held != tc.held || ev.Input != "button" {
				t.Errorf("got %+v, want %s held %v", ev, tc.want, tc.held)
			}
			if want := t0.Add(tc.held + DefaultDebounce); !ev.At.Equal(want) {
				t.Errorf("reported at %v, want %v", ev.At.Sub(t0), want.Sub(t0))
			}
		})
	}
}

func TestVeryLongReportedAtThreshold(t *testing.T) {
	r := newRig(t, Options{}).run()
	r.edge(gpio.Low)
	r.advance(10*time.Second - 1)
	r.noGesture()
	r.advance(1)
	ev := r.gesture()
	if ev.Gesture != VeryLong || ev.Held != 10*time.Second || !ev.At.Equal(t0.Add(10*time.Second)) {
		t.Errorf("got %+v, want very long at 10 s, still held", ev)
	}
	r.advance(5 * time.Second)
	r.edge(gpio.High)
	r.advance(time.Second)
	r.noGesture() // the release of a very long press says nothing more
}

func TestBouncingIsOnePress(t *testing.T) {
	r := newRig(t, Options{}).run()
	r.led.taken()
	// A burst of edges within the debounce window on pressing...
	r.edge(gpio.Low)
	for _, step := range []struct {
		after time.Duration
		level gpio.Level
	}{{2 * ms, gpio.High}, {3 * ms, gpio.Low}, {1 * ms, gpio.High}, {4 * ms, gpio.Low}, {15 * ms, gpio.High}, {3 * ms, gpio.Low}} {
		r.advance(step.after)
		r.edge(step.level)
	}
	r.advance(100*ms - 28*ms) // the acknowledgement ends
	r.advance(700 * ms)
	// ... and on releasing.
	r.edge(gpio.High)
	r.advance(1 * ms)
	r.edge(gpio.Low)
	r.advance(2 * ms)
	r.edge(gpio.High)
	r.advance(5 * ms)
	r.edge(gpio.Low)
	r.advance(1 * ms)
	r.edge(gpio.High)
	r.advance(time.Second)
	ev := r.gesture()
	if ev.Gesture != Short || ev.Held != 800*ms {
		t.Errorf("got %+v, want one short press of 800 ms", ev)
	}
	r.noGesture()
	// One acknowledgement only: off at the first edge, on 100 ms later.
	want := []write{{0, gpio.Low}, {100 * ms, gpio.High}}
	if got := r.led.taken(); !equalWrites(got, want) {
		t.Errorf("LED writes %v, want %v", got, want)
	}
}

func TestGlitchIsAcknowledgedButNoGesture(t *testing.T) {
	r := newRig(t, Options{}).run()
	r.edge(gpio.Low)
	if got := r.p.Pattern(); got != PatternAcknowledge {
		t.Errorf("pattern %q at the press edge, want acknowledge", got)
	}
	r.advance(1 * ms)
	r.edge(gpio.High) // gone before the debounce window ends: a glitch
	r.advance(time.Minute)
	r.noGesture()
	r.press(time.Second)
	if ev := r.gesture(); ev.Gesture != Short {
		t.Errorf("after a glitch, got %+v, want short", ev)
	}
}

func TestBounceWhileHeldKeepsThePress(t *testing.T) {
	r := newRig(t, Options{}).run()
	r.edge(gpio.Low)
	r.advance(time.Second)
	r.edge(gpio.High)
	r.advance(5 * ms)
	r.edge(gpio.Low) // back down within the window: not a release
	r.advance(time.Second)
	r.noGesture()
	r.advance(1200*ms - 5*ms)
	r.edge(gpio.High)
	r.advance(DefaultDebounce)
	if ev := r.gesture(); ev.Gesture != Long || ev.Held != 3200*ms {
		t.Errorf("got %+v, want long 3.2 s", ev)
	}
}

func TestConfiguredThresholdsAndDebounce(t *testing.T) {
	r := newRig(t, Options{Debounce: 50 * ms, Thresholds: Thresholds{Short: time.Second, Long: 2 * time.Second, VeryLong: 5 * time.Second}}).run()
	r.edge(gpio.Low)
	r.advance(2 * time.Second)
	r.edge(gpio.High)
	r.advance(49 * ms)
	r.noGesture()
	r.advance(1 * ms)
	if ev := r.gesture(); ev.Gesture != Long {
		t.Errorf("got %+v, want long at the 2 s threshold", ev)
	}
	r.edge(gpio.Low)
	r.advance(5 * time.Second)
	if ev := r.gesture(); ev.Gesture != VeryLong {
		t.Errorf("got %+v, want very long at 5 s", ev)
	}
	for _, bad := range []Options{
		{Debounce: 2 * time.Second},
		{Thresholds: Thresholds{Short: 2 * time.Second, Long: time.Second, VeryLong: 5 * time.Second}},
		{Thresholds: Thresholds{Short: time.Second, Long: 5 * time.Second, VeryLong: 5 * time.Second}},
	} {
		if _, err := New(Pins{LED: newOutPin(t, r.clock, "L")}, bad); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
}

func TestButtonDownAtStartIsIgnoredUntilReleased(t *testing.T) {
	r := newRigWith(t, Options{}, func(b *gpiotest.Pin) gpio.PinIn { return &stuckPin{b} }).run()
	r.advance(time.Minute)
	r.noGesture()
	r.edge(gpio.High)
	r.advance(time.Second)
	r.noGesture()
	r.press(500 * ms)
	if ev := r.gesture(); ev.Gesture != Short {
		t.Errorf("got %+v, want short once released", ev)
	}
}

// stuckPin is a button held down (or stuck) while the agent starts.
type stuckPin struct{ *gpiotest.Pin }

func (s *stuckPin) In(pull gpio.Pull, edge gpio.Edge) error {
	err := s.Pin.In(pull, edge)
	s.Lock()
	s.L = gpio.Low
	s.Unlock()
	return err
}

func TestLEDFollowsStates(t *testing.T) {
	r := newRig(t, Options{})
	if got := r.p.Pattern(); got != PatternOff || r.led.level() != gpio.Low {
		t.Errorf("before Run: %q, LED %v; want off", got, r.led.level())
	}
	r.p.Set(Fault, true) // known before Run, shown from Run on
	if r.fault.level() != gpio.Low {
		t.Error("fault LED lit before Run")
	}
	r.p.Set(Fault, false)
	r.run()
	if got := r.p.Pattern(); got != PatternReady || r.led.level() != gpio.High {
		t.Errorf("running: %q, LED %v; want ready, on", got, r.led.level())
	}
	r.led.taken()

	r.p.Set(Working, true) // at 0: 1 Hz, lit first
	r.advance(500 * ms)
	r.advance(500 * ms)
	r.advance(200 * ms)
	r.p.Set(Fault, true) // at 1.2 s: 4 Hz from now, above working
	if got := r.p.Pattern(); got != PatternFault || r.fault.level() != gpio.High {
		t.Errorf("pattern %q, fault LED %v; want fault, on", got, r.fault.level())
	}
	for range 4 {
		r.advance(125 * ms)
	}
	r.p.Set(Fault, false) // at 1.7 s: working again, in its own phase (off half)
	r.advance(300 * ms)
	r.p.Set(Working, false) // at 2 s: ready
	want := []write{
		{500 * ms, gpio.Low}, {1000 * ms, gpio.High},
		{1325 * ms, gpio.Low}, {1450 * ms, gpio.High}, {1575 * ms, gpio.Low}, {1700 * ms, gpio.High},
		{1700 * ms, gpio.Low}, {2000 * ms, gpio.High},
	}
	if got := r.led.taken(); !equalWrites(got, want) {
		t.Errorf("LED writes\n got %v\nwant %v", got, want)
	}
	if got := r.p.Pattern(); got != PatternReady || r.fault.level() != gpio.Low {
		t.Errorf("pattern %q, fault LED %v; want ready, off", got, r.fault.level())
	}
	r.p.Close()
	if got := r.p.Pattern(); got != PatternOff || r.led.level() != gpio.Low || r.fault.level() != gpio.Low {
		t.Errorf("after Close: %q; want off", got)
	}
}

func equalWrites(a, b []write) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIdentifyEightHertzForTenSeconds(t *testing.T) {
	r := newRig(t, Options{}).run()
	r.led.taken()
	r.p.Identify(IdentifyDuration)
	const half = 62500 * time.Microsecond
	for k := 1; k <= 160; k++ {
		r.advance(half)
		if k < 160 {
			if got := r.p.Pattern(); got != PatternIdentify {
				t.Fatalf("%v: pattern %q, want identify", time.Duration(k)*half, got)
			}
		}
	}
	got := r.led.taken()
	if len(got) != 160 {
		t.Fatalf("%d LED writes in 10 s, want 160 (8 Hz): %v", len(got), got)
	}
	for k, w := range got {
		want := write{time.Duration(k+1) * half, gpio.Level((k+1)%2 == 0)}
		if w != want {
			t.Errorf("write %d: %v, want %v", k, w, want)
		}
	}
	if p := r.p.Pattern(); p != PatternReady || r.led.level() != gpio.High {
		t.Errorf("at 10 s: %q, want ready", p)
	}
	r.advance(time.Minute)
	if w := r.led.taken(); len(w) != 0 {
		t.Errorf("writes after identify: %v", w)
	}
}

func TestSimulatedPanel(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	p, err := Open(configs.AgentPanel{Simulate: true, Button: "GPIO27", LED: "GPIO17"}, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Press(Short); err == nil {
		t.Error("Press before Start succeeded")
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Press("double"); err == nil {
		t.Error("Press(double) succeeded")
	}
	for _, tc := range []struct {
		g    Gesture
		hold time.Duration
	}{{Short, 200 * ms}, {Long, 3250 * ms}, {VeryLong, 10 * time.Second}} {
		if err := p.Press(tc.g); err != nil {
			t.Fatal(err)
		}
		if got := p.Pattern(); got != PatternAcknowledge {
			t.Errorf("%s: pattern %q after the press, want acknowledge", tc.g, got)
		}
		if err := p.Press(Short); !errors.Is(err, ErrBusy) {
			t.Errorf("second Press during %s: %v, want ErrBusy", tc.g, err)
		}
		clock.Advance(tc.hold)
		select {
		case ev := <-p.Gestures():
			if ev.Gesture != tc.g || ev.Input != "ctl" || ev.Held != tc.hold {
				t.Errorf("got %+v, want %s held %v from ctl", ev, tc.g, tc.hold)
			}
		case <-time.After(guard):
			t.Fatalf("no gesture for Press(%s)", tc.g)
		}
	}
	if got := p.Pattern(); got != PatternReady {
		t.Errorf("pattern %q, want ready", got)
	}
}

func TestOpenRealPinsNamesTheProblem(t *testing.T) {
	_, err := Open(configs.AgentPanel{Button: "GPIO999", LED: "GPIO17"}, Options{})
	if err == nil {
		t.Fatal("Open found pin GPIO999")
	}
	// Without GPIO (as on a PC) the error says how to run without a button;
	// on a board, it names the missing pin and its key.
	if msg := err.Error(); !strings.Contains(msg, "simulate = true") && !strings.Contains(msg, `panel.button: pin "GPIO999"`) {
		t.Errorf("error %q names neither the way out nor the pin", msg)
	}
}
