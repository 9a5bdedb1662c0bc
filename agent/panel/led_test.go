package panel

import (
	"fmt"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// priority lists the patterns from the most urgent down, with how to make
// each active at t0.
var priority = []struct {
	pattern  string
	activate func(l *leds)
}{
	{PatternIdentify, func(l *leds) { l.identify(t0, IdentifyDuration) }},
	{PatternAcknowledge, func(l *leds) { l.flicker(t0) }},
	{PatternFault, func(l *leds) { l.set(Fault, true, t0) }},
	{PatternWorking, func(l *leds) { l.set(Working, true, t0) }},
	{PatternHeld, func(l *leds) { l.set(Held, true, t0) }},
	{PatternReady, func(l *leds) {}},
}

func TestLEDPriorityEveryPair(t *testing.T) {
	for i, hi := range priority {
		for _, lo := range priority[i+1:] {
			for _, order := range []string{"higher first", "lower first"} {
				l := leds{running: true}
				if order == "higher first" {
					hi.activate(&l)
					lo.activate(&l)
				} else {
					lo.activate(&l)
					hi.activate(&l)
				}
				if got, _, _ := l.show(t0); got != hi.pattern {
					t.Errorf("%s and %s (%s): shows %s", hi.pattern, lo.pattern, order, got)
				}
				l.running = false // the agent stopped: off, whatever is active
				if got, level, _ := l.show(t0); got != PatternOff || level != gpio.Low {
					t.Errorf("%s and %s stopped: shows %s", hi.pattern, lo.pattern, got)
				}
			}
		}
	}
}

// timeline walks the LED from t0 to end and returns its changes, as
// "offset level pattern".
func timeline(l *leds, end time.Duration) []string {
	var out []string
	now := t0
	prevP, prevL := "", gpio.Level(false)
	for now.Sub(t0) <= end {
		p, level, next := l.show(now)
		if p != prevP || level != prevL {
			out = append(out, fmt.Sprintf("%v %v %s", now.Sub(t0), level, p))
			prevP, prevL = p, level
		}
		if next.IsZero() {
			break
		}
		if !next.After(now) {
			panic(fmt.Sprintf("next %v not after %v", next, now))
		}
		now = next
	}
	return out
}

func TestLEDPatterns(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(l *leds)
		end   time.Duration
		want  []string
	}{
		{"ready", func(l *leds) {}, time.Minute, []string{"0s High ready"}},
		{"working 1 Hz", func(l *leds) { l.set(Working, true, t0) }, 2 * time.Second,
			[]string{"0s High working", "500ms Low working", "1s High working", "1.5s Low working", "2s High working"}},
		{"held double flash every 2 s", func(l *leds) { l.set(Held, true, t0) }, 2 * time.Second,
			[]string{"0s High held", "150ms Low held", "300ms High held", "450ms Low held", "2s High held"}},
		{"fault 4 Hz", func(l *leds) { l.set(Fault, true, t0) }, 500 * time.Millisecond,
			[]string{"0s High fault", "125ms Low fault", "250ms High fault", "375ms Low fault", "500ms High fault"}},
		{"flicker on ready: off 100 ms", func(l *leds) { l.flicker(t0) }, time.Minute,
			[]string{"0s Low acknowledge", "100ms High ready"}},
		{"flicker on held's dark time: on 100 ms", func(l *leds) {
			l.set(Held, true, t0.Add(-time.Second))
			l.flicker(t0)
		}, time.Second, []string{"0s High acknowledge", "100ms Low held", "1s High held"}},
		{"flicker on working keeps its phase", func(l *leds) {
			l.set(Working, true, t0.Add(-200*time.Millisecond))
			l.flicker(t0)
		}, time.Second, []string{"0s Low acknowledge", "100ms High working", "300ms Low working", "800ms High working"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := leds{running: true}
			tc.setup(&l)
			if got := timeline(&l, tc.end); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestIdentifyExactlyTenSeconds(t *testing.T) {
	l := leds{running: true}
	l.identify(t0, IdentifyDuration)
	got := timeline(&l, time.Minute)
	// 160 half periods of 62.5 ms, lit first, then ready (steady on) at
	// exactly 10 s.
	if len(got) != 161 {
		t.Fatalf("%d changes, want 161: %v", len(got), got)
	}
	for k := range 160 {
		level := "High"
		if k%2 == 1 {
			level = "Low"
		}
		if want := fmt.Sprintf("%v %s identify", time.Duration(k)*62500*time.Microsecond, level); got[k] != want {
			t.Errorf("change %d: %q, want %q", k, got[k], want)
		}
	}
	if got[160] != "10s High ready" {
		t.Errorf("end: %q, want 10s High ready", got[160])
	}
	if p, _, _ := l.show(t0.Add(IdentifyDuration - 1)); p != PatternIdentify {
		t.Errorf("1 ns before 10 s: %s", p)
	}

	// Identify over held prints: held's double flash resumes in its own
	// phase (dark from 450 ms to 2 s) when identify ends.
	l = leds{running: true}
	l.set(Held, true, t0)
	l.identify(t0, time.Second)
	got = timeline(&l, 1200*time.Millisecond)
	if len(got) != 17 || got[15] != "937.5ms Low identify" || got[16] != "1s Low held" {
		t.Errorf("identify for 1 s over held: %v", got)
	}

	l = leds{running: true}
	l.identify(t0, IdentifyDuration)
	l.identify(t0.Add(time.Second), 0)
	if p, _, _ := l.show(t0.Add(time.Second)); p != PatternReady {
		t.Errorf("after Identify(0): %s", p)
	}
}
