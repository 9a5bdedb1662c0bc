package panel

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// State is a condition that the LED shows while it is set.
type State int

// The states set by the agent; acknowledge and identify are started by
// Flicker and Identify and end by themselves.
const (
	Working State = iota // a copy, scan or status page under way
	Held                 // held prints waiting for release
	Fault                // a fault needing staff: no paper, jam, printer or scanner unreachable
	numStates
)

func (s State) String() string {
	switch s {
	case Working:
		return PatternWorking
	case Held:
		return PatternHeld
	case Fault:
		return PatternFault
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// The names of the LED patterns, as Pattern returns them.
const (
	PatternOff         = "off"
	PatternReady       = "ready"
	PatternAcknowledge = "acknowledge"
	PatternWorking     = "working"
	PatternHeld        = "held"
	PatternFault       = "fault"
	PatternIdentify    = "identify"
)

// Durations of the one-shot patterns.
const (
	FlickerDuration  = 100 * time.Millisecond
	IdentifyDuration = 10 * time.Second
)

// blink is a periodic pattern: lit during the on spans of each period,
// counted from the state's start.
type blink struct {
	period time.Duration
	on     [][2]time.Duration
}

var (
	identifyBlink = blink{125 * time.Millisecond, [][2]time.Duration{{0, 62500 * time.Microsecond}}} // 8 Hz
	faultBlink    = blink{250 * time.Millisecond, [][2]time.Duration{{0, 125 * time.Millisecond}}}   // 4 Hz
	workingBlink  = blink{time.Second, [][2]time.Duration{{0, 500 * time.Millisecond}}}              // 1 Hz
	heldBlink     = blink{2 * time.Second, [][2]time.Duration{                                       // double flash
		{0, 150 * time.Millisecond}, {300 * time.Millisecond, 450 * time.Millisecond}}}
)

// at returns the level of the pattern started at start, at now (not before
// start), and when it next changes.
func (b blink) at(start, now time.Time) (gpio.Level, time.Time) {
	phase := now.Sub(start) % b.period
	base := now.Add(-phase)
	for _, s := range b.on {
		if phase < s[0] {
			return gpio.Low, base.Add(s[0])
		}
		if phase < s[1] {
			return gpio.High, base.Add(s[1])
		}
	}
	return gpio.Low, base.Add(b.period)
}

// leds is the LED state machine: which states are active since when. It
// is pure: show computes the LED at a given time.
type leds struct {
	running bool
	on      [numStates]bool
	since   [numStates]time.Time

	identifyFrom, identifyUntil time.Time
	ackUntil                    time.Time
	ackLevel                    gpio.Level
}

// show returns the pattern and level of the main LED at now, and when
// either next changes (zero: not until a state changes).
func (l *leds) show(now time.Time) (pattern string, level gpio.Level, next time.Time) {
	if !l.running {
		return PatternOff, gpio.Low, time.Time{}
	}
	if now.Before(l.identifyUntil) {
		level, next = identifyBlink.at(l.identifyFrom, now)
		return PatternIdentify, level, earliest(next, l.identifyUntil)
	}
	if now.Before(l.ackUntil) {
		return PatternAcknowledge, l.ackLevel, l.ackUntil
	}
	for _, s := range []struct {
		state State
		blink blink
	}{{Fault, faultBlink}, {Working, workingBlink}, {Held, heldBlink}} {
		if l.on[s.state] {
			level, next = s.blink.at(l.since[s.state], now)
			return s.state.String(), level, next
		}
	}
	return PatternReady, gpio.High, time.Time{}
}

// fault reports whether the fault LED is lit.
func (l *leds) fault() bool { return l.running && l.on[Fault] }

func (l *leds) set(s State, on bool, now time.Time) {
	if on && !l.on[s] {
		l.since[s] = now
	}
	l.on[s] = on
}

// flicker starts the acknowledgement: the LED is inverted for 100 ms from
// what it shows at now. A flicker during a flicker extends it.
func (l *leds) flicker(now time.Time) {
	if !now.Before(l.ackUntil) {
		_, level, _ := l.show(now)
		l.ackLevel = !level
	}
	l.ackUntil = now.Add(FlickerDuration)
}

// identify blinks for d from now; d ≤ 0 stops identifying.
func (l *leds) identify(now time.Time, d time.Duration) {
	if d <= 0 {
		l.identifyUntil = time.Time{}
		return
	}
	if !now.Before(l.identifyUntil) {
		l.identifyFrom = now
	}
	l.identifyUntil = now.Add(d)
}

// earliest returns the earlier of two times, a zero time meaning never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
