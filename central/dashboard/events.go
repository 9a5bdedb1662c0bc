package dashboard

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Bounds of the live updates.
const (
	// defaultMaxSubscribers bounds the /events streams open at once.
	defaultMaxSubscribers = 256
	// maxPendingKeys bounds the agents a subscriber remembers between two
	// events; past it the next event says "*" (everything changed).
	maxPendingKeys = 32
	// heartbeatEvery is how often an idle stream gets a comment, so that
	// proxies keep it open and a dead client is noticed.
	heartbeatEvery = 25 * time.Second
	// minEventGap is the least time between two events of one stream:
	// changes in between are coalesced into the next event.
	minEventGap = time.Second
	// maxStreamAge ends a stream after a while; the browser reconnects, and
	// the session is checked again.
	maxStreamAge = 15 * time.Minute
	// streamWriteTimeout drops a client that does not read.
	streamWriteTimeout = 10 * time.Second
)

// hub fans Changed calls out to the /events streams. Each subscriber has a
// set of pending agent keys and a wake-up channel of capacity one: a
// publish never blocks, and the changes that arrive while a stream is busy
// or waiting collapse into its next event.
type hub struct {
	max int

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

// subscriber is one /events stream.
type subscriber struct {
	wake chan struct{} // capacity 1
	done chan struct{} // closed when the hub closes

	mu      sync.Mutex
	pending map[string]struct{}
	all     bool // more than maxPendingKeys changed
}

func newHub(max int) *hub {
	return &hub{max: max, subs: map[*subscriber]struct{}{}}
}

// subscribe adds a stream, or returns false when the hub is full or closed.
func (h *hub) subscribe() (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= h.max {
		return nil, false
	}
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{}), pending: map[string]struct{}{}}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// count returns the number of open streams.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// publish tells every stream that key ("site/agent") changed. It never
// blocks.
func (h *hub) publish(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		if !s.all {
			s.pending[key] = struct{}{}
			if len(s.pending) > maxPendingKeys {
				s.all, s.pending = true, map[string]struct{}{}
			}
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// close ends every stream and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		close(s.done)
	}
}

// take returns and forgets the pending keys, sorted, or ["*"].
func (s *subscriber) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all {
		s.all = false
		return []string{"*"}
	}
	keys := make([]string, 0, len(s.pending))
	for k := range s.pending {
		keys = append(keys, k)
	}
	clear(s.pending)
	slices.Sort(keys)
	return keys
}

// Changed tells the live pages that an agent's data changed. Ingest calls it
// after each committed change; it never blocks.
func (d *Dashboard) Changed(site, agent string) {
	d.fleetCache.invalidate()
	d.hub.publish(site + "/" + agent)
}

// changedAll tells the live pages that anything may have changed.
func (d *Dashboard) changedAll() {
	d.fleetCache.invalidate()
	d.hub.publish("*")
}

// Close ends the live streams and refuses new ones, so that
// http.Server.Shutdown does not wait for them: register it with
// RegisterOnShutdown.
func (d *Dashboard) Close() {
	d.hub.close()
}

// events serves GET /events: a text/event-stream of "update" events whose
// data is the space-separated "site/agent" keys that changed (or "*"),
// with a comment every heartbeatEvery.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	s, ok := d.hub.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, d.words(r).T("error.busy"), http.StatusServiceUnavailable)
		return
	}
	defer d.hub.unsubscribe(s)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	send := func(format string, args ...any) bool {
		// A deadline per write: a client that stops reading is dropped,
		// and the server's WriteTimeout does not cut the stream.
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// retry: how long the browser waits before reconnecting.
	if !send("retry: 5000\n: relais-central\n\n") {
		return
	}
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	age := time.NewTimer(maxStreamAge)
	defer age.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-age.C:
			return
		case <-heartbeat.C:
			if !send(": ping\n\n") {
				return
			}
		case <-s.wake:
			if !send("event: update\ndata: %s\n\n", strings.Join(s.take(), " ")) {
				return
			}
			// Coalesce: what changes during the gap goes in the next event.
			gap := time.NewTimer(minEventGap)
			select {
			case <-r.Context().Done():
				gap.Stop()
				return
			case <-s.done:
				gap.Stop()
				return
			case <-gap.C:
			}
		}
	}
}
