package panel

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/relais-fr/relais/central/api"
)

// Gesture is a press of the button, as reported to central.
type Gesture = api.Gesture

// The gestures, by how long the button is held.
const (
	Short    = api.GestureShort    // copy, or release held prints
	Long     = api.GestureLong     // scan to the local inbox
	VeryLong = api.GestureVeryLong // print the status page
)

// DefaultDebounce is how long the button's contacts may bounce after a
// press or a release.
const DefaultDebounce = 30 * time.Millisecond

// Thresholds tell gestures apart by how long the button was held, from the
// press's leading edge to the release's.
type Thresholds struct {
	Short    time.Duration // a press released before Short is short
	Long     time.Duration // from Long on, a press is long (between Short and Long: ignored)
	VeryLong time.Duration // from VeryLong on, very long, reported as soon as reached
}

// DefaultThresholds are DESIGN §5's: 1.5 s, 3 s and 10 s.
func DefaultThresholds() Thresholds {
	return Thresholds{Short: 1500 * time.Millisecond, Long: 3 * time.Second, VeryLong: 10 * time.Second}
}

func (t Thresholds) check(debounce time.Duration) error {
	if debounce < 0 || debounce >= t.Short {
		return fmt.Errorf("panel: debounce %v must be from 0 to less than the short press (%v)", debounce, t.Short)
	}
	if t.Short <= 0 || t.Short > t.Long || t.Long >= t.VeryLong {
		return fmt.Errorf("panel: thresholds %v, %v, %v must grow: 0 < short ≤ long < very long", t.Short, t.Long, t.VeryLong)
	}
	return nil
}

// Event is a gesture made on the button (Input "button") or through Press
// (Input "ctl").
type Event struct {
	Gesture Gesture
	Input   string
	At      time.Time     // when it was recognised
	Held    time.Duration // how long the button had been down then
}

// ErrBusy is returned by Press while a simulated press is still held.
var ErrBusy = errors.New("panel: a simulated press is still held")

// detector turns the timed levels of one button input into gestures. It is
// a pure state machine: edge and advance are given the time, and next says
// when advance must be called again.
//
// Debouncing acts on the leading edge: the first edge that leaves the
// debounced level starts a transition at once (so that a press is
// acknowledged without delay), edges during the following debounce window
// are ignored, and the transition is confirmed only if the input is still
// at the new level when the window ends. A press whose level is gone by
// then was a glitch (the acknowledgement has shown, no gesture follows); a
// release whose level is gone was a bounce while held (the press goes on).
type detector struct {
	debounce time.Duration
	th       Thresholds

	raw     gpio.Level // last level seen
	stable  gpio.Level // debounced level; gpio.Low is pressed
	pending bool       // a transition away from stable awaits confirmation
	since   time.Time  // leading edge of the pending transition
	pressed time.Time  // leading edge of the current press
	done    bool       // the current press needs no report on release
}

func newDetector(debounce time.Duration, th Thresholds, level gpio.Level) detector {
	// A button already down when the panel starts (stuck, or held during a
	// restart) makes no gesture until it has been released.
	return detector{debounce: debounce, th: th, raw: level, stable: level, done: level == gpio.Low}
}

// outcome is what a confirmed press came to; an ambiguous press has no
// gesture.
type outcome struct {
	gesture Gesture
	at      time.Time
	held    time.Duration
}

// edge records that the input was at level at t; it reports whether this
// is the leading edge of a press, to be acknowledged.
func (d *detector) edge(t time.Time, level gpio.Level) (press bool) {
	d.raw = level
	if d.pending || level == d.stable {
		return false
	}
	d.pending, d.since = true, t
	return level == gpio.Low
}

// veryLongAt is when the current press becomes very long.
func (d *detector) veryLongAt() time.Time { return d.pressed.Add(d.th.VeryLong) }

// advance confirms transitions and reaches thresholds due by now, in time
// order, and returns what the presses came to.
func (d *detector) advance(now time.Time) []outcome {
	var out []outcome
	for {
		// A press still down at the very long threshold is very long,
		// even if a release has started since (the release edge came
		// after the threshold).
		if d.stable == gpio.Low && !d.done && !now.Before(d.veryLongAt()) &&
			(!d.pending || !d.since.Before(d.veryLongAt())) {
			d.done = true
			out = append(out, outcome{VeryLong, d.veryLongAt(), d.th.VeryLong})
			continue
		}
		if !d.pending || now.Before(d.since.Add(d.debounce)) {
			return out
		}
		d.pending = false
		if d.raw == d.stable {
			continue // a glitch or a bounce: the transition is undone
		}
		d.stable = d.raw
		if d.stable == gpio.Low {
			d.pressed, d.done = d.since, false
			continue
		}
		if d.done {
			continue
		}
		held := d.since.Sub(d.pressed)
		o := outcome{at: d.since.Add(d.debounce), held: held}
		switch {
		case held < d.th.Short:
			o.gesture = Short
		case held >= d.th.Long:
			o.gesture = Long
		}
		out = append(out, o)
	}
}

// next returns when advance must next be called, if ever.
func (d *detector) next() (time.Time, bool) {
	if d.pending {
		return d.since.Add(d.debounce), true
	}
	if d.stable == gpio.Low && !d.done {
		return d.veryLongAt(), true
	}
	return time.Time{}, false
}
