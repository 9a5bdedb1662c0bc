package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/store"
)

// stream is an open GET /events.
type stream struct {
	t      testing.TB
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// openStream opens /events as c, failing unless it answers 200.
func (c *client) openStream() *stream {
	c.e.t.Helper()
	s, code := c.tryStream()
	if code != http.StatusOK {
		c.e.t.Fatalf("GET /events: %d", code)
	}
	return s
}

// tryStream opens /events and returns the stream, or nil and the status.
func (c *client) tryStream() (*stream, int) {
	t := c.e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.e.srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	s := &stream{t: t, resp: resp, lines: make(chan string, 64), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s, resp.StatusCode
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// event reads the next event (skipping comments and retry), failing after
// limit. It returns the event's name and data, or ok false when the stream
// ended.
func (s *stream) event(limit time.Duration) (name, data string, ok bool) {
	s.t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case line, open := <-s.lines:
			switch {
			case !open:
				return "", "", false
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && name != "":
				return name, data, true
			}
		case <-timer.C:
			s.t.Fatalf("no event within %v", limit)
		}
	}
}

// ready waits for the stream's preamble, sent once it is subscribed.
func (s *stream) ready() {
	s.t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case line, open := <-s.lines:
			if !open {
				s.t.Fatal("the stream ended before its preamble")
			}
			if strings.HasPrefix(line, "retry: ") {
				return
			}
		case <-timer.C:
			s.t.Fatal("no preamble within 10 s")
		}
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loggedIn("tech", store.Technician)
	s := c.openStream()
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	s.ready()

	e.d.Changed("biblio", "rdc")
	name, data, ok := s.event(10 * time.Second)
	if !ok || name != "update" || data != "biblio/rdc" {
		t.Fatalf("event %q %q %v, want update biblio/rdc", name, data, ok)
	}

	// Several changes: every key arrives (TestHubCoalesces checks that
	// they are coalesced, without depending on timing).
	keys := []string{"a/x", "b/y", "c/z", "b/y", "a/x"}
	for _, k := range keys {
		site, agent, _ := strings.Cut(k, "/")
		e.d.Changed(site, agent)
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		_, data, ok := s.event(10 * time.Second)
		if !ok {
			t.Fatal("the stream ended")
		}
		for _, k := range strings.Fields(data) {
			if !slices.Contains(keys, k) {
				t.Fatalf("unexpected key %q", k)
			}
			seen[k] = true
		}
	}

	// Close ends the streams.
	e.d.Close()
	for {
		if _, _, ok := s.event(10 * time.Second); !ok {
			break
		}
	}
	if _, code := c.tryStream(); code != http.StatusServiceUnavailable {
		t.Errorf("GET /events after Close: %d", code)
	}
}

func TestEventsNeedALogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client()
	if _, code := c.tryStream(); code != http.StatusUnauthorized {
		t.Errorf("GET /events without a session: %d", code)
	}
}

func TestEventsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxSubscribers: 2})
	c := e.loggedIn("tech", store.Technician)
	s1, s2 := c.openStream(), c.openStream()
	s1.ready()
	s2.ready()
	if _, code := c.tryStream(); code != http.StatusServiceUnavailable {
		t.Fatalf("a third stream: %d, want 503", code)
	}
	// When one ends, a new one may open.
	s1.close()
	deadline := time.Now().Add(10 * time.Second)
	for e.d.hub.count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open after one closed", e.d.hub.count())
		}
		<-time.After(time.Millisecond) // polling a condition, bounded by the deadline
	}
	s3 := c.openStream()
	s3.ready()
	e.d.Changed("s", "a")
	for _, s := range []*stream{s2, s3} {
		if _, data, ok := s.event(10 * time.Second); !ok || data != "s/a" {
			t.Errorf("event %q %v", data, ok)
		}
	}
}

func TestHubCoalesces(t *testing.T) {
	t.Parallel()
	h := newHub(1)
	s, ok := h.subscribe()
	if !ok {
		t.Fatal("subscribe failed")
	}
	if _, ok := h.subscribe(); ok {
		t.Fatal("a second subscriber past the bound")
	}
	for _, k := range []string{"z/1", "a/1", "z/1"} {
		h.publish(k)
	}
	select {
	case <-s.wake:
	default:
		t.Fatal("no wake-up")
	}
	select {
	case <-s.wake:
		t.Fatal("two wake-ups for one wait")
	default:
	}
	if got := s.take(); !slices.Equal(got, []string{"a/1", "z/1"}) {
		t.Errorf("take: %q", got)
	}
	if got := s.take(); len(got) != 0 {
		t.Errorf("take again: %q", got)
	}
	// Too many keys collapse into "*".
	for i := range maxPendingKeys + 1 {
		h.publish("s/" + string(rune('a'+i%26)) + strings.Repeat("x", i))
	}
	if got := s.take(); !slices.Equal(got, []string{"*"}) {
		t.Errorf("take after overflow: %q", got)
	}
	h.unsubscribe(s)
	if _, ok := h.subscribe(); !ok {
		t.Error("no room after unsubscribe")
	}
	h.close()
	if _, ok := h.subscribe(); ok {
		t.Error("subscribed to a closed hub")
	}
}
