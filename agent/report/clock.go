package report

import "time"

// Clock is the time source of a Reporter: the timestamps of status and
// metrics, and every delay of its own schedule (ack timeout, polling,
// metrics interval, reconnect backoff, command time bound). Tests inject a
// fake one. The MQTT client's network timeouts (connect, keepalive, waits
// for the broker's acknowledgements) run on the system clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends on its channel once d has
	// elapsed; d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// SystemClock returns the Clock of package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
