package ippserver

import (
	"net/netip"
	"sync"
	"time"
)

// maxClients bounds the clients the limiter remembers. Past it (after
// forgetting idle clients), new clients are refused until some go idle: a
// flood of addresses cannot grow memory.
const maxClients = 4096

// limiter allows each client at most n events per window (a sliding
// window, with the time from now).
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	now    func() time.Time
	hits   map[string][]time.Time
}

func newLimiter(n int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{n: n, window: window, now: now, hits: map[string][]time.Time{}}
}

// allow records an event for the client and reports whether it is within
// the limit. Refused events are not recorded.
func (l *limiter) allow(client string) bool {
	key := clientKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	since := now.Add(-l.window)
	hits := recent(l.hits[key], since)
	if len(hits) >= l.n {
		l.hits[key] = hits
		return false
	}
	if _, known := l.hits[key]; !known && len(l.hits) >= maxClients {
		for k, h := range l.hits {
			if len(recent(h, since)) == 0 {
				delete(l.hits, k)
			}
		}
		if len(l.hits) >= maxClients {
			return false
		}
	}
	l.hits[key] = append(hits, now)
	return true
}

// recent drops the times before since (they are in order).
func recent(hits []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(hits) && !hits[i].After(since) {
		i++
	}
	return hits[i:]
}

// clientKey is what the limit applies to: an IPv4 address, or the /64 of
// an IPv6 address (one host may use many addresses of its network).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}
