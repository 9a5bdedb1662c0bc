package panel

import (
	"context"
	"log/slog"
)

// Handler carries out a gesture: make a copy, scan to the inbox, print the
// status page.
type Handler func(ctx context.Context, ev Event) error

// Dispatcher runs the handler of each gesture of a Panel, one at a time,
// with the LED in the working pattern meanwhile. A gesture made while a
// handler runs has already been acknowledged by the LED, and is ignored: a
// visitor who presses again because the copy seems slow does not want a
// second copy, nor does a scan interrupt it.
type Dispatcher struct {
	Panel    *Panel
	Handlers map[Gesture]Handler
	// Observe, if set, is told of every gesture (e.g. to record the
	// button.pressed event), and whether it was ignored because another
	// gesture's handler was running or it has no handler.
	Observe func(ev Event, ignored bool)
	Logger  *slog.Logger // nil: no log
}

// Run dispatches gestures until ctx is done, then waits for the running
// handler, whose context is ctx, and returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	done := make(chan struct{})
	busy := false
	for {
		select {
		case <-ctx.Done():
			if busy {
				<-done
			}
			return nil
		case <-done:
			busy = false
		case ev := <-d.Panel.Gestures():
			h := d.Handlers[ev.Gesture]
			ignored := busy || h == nil
			if d.Observe != nil {
				d.Observe(ev, ignored)
			}
			switch {
			case busy:
				log.Info("button: gesture ignored while working", "gesture", ev.Gesture)
				continue
			case h == nil:
				log.Warn("button: no handler for gesture", "gesture", ev.Gesture)
				continue
			}
			busy = true
			d.Panel.Set(Working, true)
			go func() {
				defer func() { done <- struct{}{} }()
				defer d.Panel.Set(Working, false)
				if err := h(ctx, ev); err != nil {
					log.Warn("button: gesture failed", "gesture", ev.Gesture, "err", err)
				}
			}()
		}
	}
}
