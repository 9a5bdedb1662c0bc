package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limiter counts failures per key over a sliding window: a key with max
// failures within the last window is limited until the oldest of them
// leaves the window. It keeps at most maxKeys keys; when full it first drops
// the keys whose failures have all expired, then arbitrary ones (Go's map
// order), so memory stays bounded even when an attacker cycles addresses.
type limiter struct {
	max     int
	window  time.Duration
	maxKeys int

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, at most max, all within window of the last add
}

func newLimiter(max int, window time.Duration, maxKeys int) *limiter {
	return &limiter{max: max, window: window, maxKeys: maxKeys, failures: make(map[string][]time.Time)}
}

// take records an attempt of key at now, counted as a failure until undo,
// and returns 0; or, when key is limited, records nothing and returns how
// long it still is. Recording before the attempt is checked keeps
// concurrent attempts from all passing the limit at once.
func (l *limiter) take(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.live(key, now)
	if len(f) >= l.max {
		return f[0].Add(l.window).Sub(now)
	}
	l.add(key, f, now)
	return 0
}

// undo forgets the attempt of key that take recorded at t.
func (l *limiter) undo(key string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failures[key]
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].Equal(t) {
			f = append(f[:i], f[i+1:]...)
			break
		}
	}
	if len(f) == 0 {
		delete(l.failures, key)
	} else {
		l.failures[key] = f
	}
}

// add appends now to f, the live failures of key.
func (l *limiter) add(key string, f []time.Time, now time.Time) {
	if f == nil && len(l.failures) >= l.maxKeys {
		l.evict(now)
	}
	f = append(f, now)
	if len(f) > l.max {
		f = f[len(f)-l.max:]
	}
	l.failures[key] = f
}

// reset forgets the failures of key.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// live drops the expired failures of key and returns the others.
func (l *limiter) live(key string, now time.Time) []time.Time {
	f := l.failures[key]
	i := 0
	for i < len(f) && !f[i].Add(l.window).After(now) {
		i++
	}
	if i == len(f) {
		delete(l.failures, key)
		return nil
	}
	if i > 0 {
		f = append(f[:0], f[i:]...)
		l.failures[key] = f
	}
	return f
}

func (l *limiter) evict(now time.Time) {
	for k, f := range l.failures {
		if !f[len(f)-1].Add(l.window).After(now) {
			delete(l.failures, k)
		}
	}
	for k := range l.failures {
		if len(l.failures) < l.maxKeys {
			break
		}
		delete(l.failures, k)
	}
}

// clientKey is the rate-limit key of the request's client: its IP address
// from the connection (RemoteAddr), an IPv6 address reduced to its /64
// since one host usually holds a whole /64. Forwarding headers are not
// trusted: behind a reverse proxy every client shares the proxy's key.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "ip:" + host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + addr.String()
}

// userKey is the rate-limit key of a user name; case-folded so that
// variants of one name share it.
func userKey(name string) string { return "user:" + strings.ToLower(name) }
