package dnssd

import (
	"context"
	"time"
)

// poll signals on ch every pollInterval until ctx ends, and returns ch.
func poll(ctx context.Context, ch chan struct{}) <-chan struct{} {
	go func() {
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wake(ch)
			}
		}
	}()
	return ch
}

// wake wakes the reader of ch unless it already has a wake-up pending.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
