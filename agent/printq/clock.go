package printq

import "time"

// Clock is the queue's time source. The queue reads the time and waits only
// through its Clock, so that a test can drive every timer (printer polls,
// job polls, retry backoff, hold expiry) with a clock of its own.
//
// Timers are stopped when no longer needed, so that a test clock can tell
// how many are pending.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once, when
	// d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a single-shot timer made by a Clock.
type Timer interface {
	// C returns the channel on which the time is sent.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
