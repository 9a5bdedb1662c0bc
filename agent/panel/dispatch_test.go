package panel

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

type observed struct {
	ev      Event
	ignored bool
}

func TestDispatcherIgnoresPressesWhileWorking(t *testing.T) {
	r := newRig(t, Options{}).run()
	started, finish := make(chan Event), make(chan struct{})
	seen := make(chan observed, 8)
	calls := 0
	d := &Dispatcher{
		Panel: r.p,
		Handlers: map[Gesture]Handler{
			Short: func(ctx context.Context, ev Event) error {
				calls++
				started <- ev
				<-finish
				return errors.New("printer out of paper") // logged; the dispatcher goes on
			},
			Long: func(ctx context.Context, ev Event) error { calls++; return nil },
		},
		Observe: func(ev Event, ignored bool) { seen <- observed{ev, ignored} },
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	next := func() observed {
		t.Helper()
		select {
		case o := <-seen:
			return o
		case <-time.After(guard):
			t.Fatal("no gesture reached the dispatcher")
			return observed{}
		}
	}

	r.press(500 * ms) // a copy
	if o := next(); o.ev.Gesture != Short || o.ignored {
		t.Fatalf("first press: %+v", o)
	}
	<-started
	if got := r.p.Pattern(); got != PatternWorking {
		t.Errorf("pattern %q during the copy, want working", got)
	}

	// The visitor presses again: acknowledged at once, then ignored.
	before := r.led.level()
	r.edge(gpio.Low)
	if got := r.p.Pattern(); got != PatternAcknowledge || r.led.level() == before {
		t.Errorf("second press: pattern %q, LED %v (was %v); want acknowledge, inverted", got, r.led.level(), before)
	}
	r.advance(3200 * ms)
	r.edge(gpio.High) // a scan, while the copy goes on
	r.advance(DefaultDebounce)
	if o := next(); o.ev.Gesture != Long || !o.ignored {
		t.Errorf("press during work: %+v, want long ignored", o)
	}
	if got := r.p.Pattern(); got != PatternWorking {
		t.Errorf("pattern %q after the ignored press, want working", got)
	}

	close(finish)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("%d handler calls, want 1", calls)
	}
	if got := r.p.Pattern(); got != PatternReady {
		t.Errorf("pattern %q after the copy, want ready", got)
	}
}
