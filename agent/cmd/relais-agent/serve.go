package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// MaxConnections bounds the connections of each of the agent's HTTP
// listeners: a site has a handful of PCs and phones, and a flood from the
// public network must not exhaust the Pi's memory.
const MaxConnections = 64

// MaxConnectionsPerAddress bounds the connections of one client address
// on each listener, so that one device cannot hold them all: a browser
// opens up to six, a print client one or two.
const MaxConnectionsPerAddress = 16

// Body pace: once a request body has been arriving for bodyGrace, it must
// keep an average of at least minBodyRate, and no read may wait longer
// than bodyIdle. A slow Wi-Fi link uploads far faster; a client that
// trickles a byte a second to hold a connection is cut off.
const (
	bodyGrace   = 30 * time.Second
	bodyIdle    = 30 * time.Second
	minBodyRate = 4 << 10 // bytes per second
)

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &perAddressListener{Listener: netutil.LimitListener(ln, MaxConnections), open: map[string]int{}}, nil
}

// perAddressListener closes, as soon as they are accepted, the connections
// of an address that has MaxConnectionsPerAddress open already.
type perAddressListener struct {
	net.Listener
	mu   sync.Mutex
	open map[string]int
}

func (l *perAddressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		full := l.open[host] >= MaxConnectionsPerAddress
		if !full {
			l.open[host]++
		}
		l.mu.Unlock()
		if full {
			c.Close()
			continue
		}
		return &addressConn{Conn: c, l: l, host: host}, nil
	}
}

type addressConn struct {
	net.Conn
	l    *perAddressListener
	host string
	once sync.Once
}

func (c *addressConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.host]--; c.l.open[c.host] <= 0 {
			delete(c.l.open, c.host)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// paced makes every request body keep the pace of bodyGrace, bodyIdle and
// minBodyRate; a body too slow ends with an error, which the handlers
// report as a failed upload.
func paced(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			// The server decides from its own body's state whether the
			// connection can be kept: it gets it back once the handler
			// is done.
			orig := r.Body
			defer func() { r.Body = orig }()
			r.Body = &pacedBody{ReadCloser: orig, rc: http.NewResponseController(w), start: time.Now()}
		}
		h.ServeHTTP(w, r)
	})
}

type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	n     int64
}

// errTooSlow is returned by a body that does not keep the pace.
var errTooSlow = errors.New("request body too slow")

func (b *pacedBody) Read(p []byte) (int, error) {
	now := time.Now()
	if d := now.Sub(b.start); d > bodyGrace && float64(b.n)/d.Seconds() < minBodyRate {
		return 0, fmt.Errorf("%w: %d bytes in %v", errTooSlow, b.n, d.Round(time.Second))
	}
	// Errors are ignored: a connection without deadlines (HTTP/2 over
	// TLS is not served here) keeps the server's ReadTimeout.
	b.rc.SetReadDeadline(now.Add(bodyIdle))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// serveHTTP serves h on ln until ctx ends, then lets requests in progress
// (an upload being spooled) finish for a bounded time.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           paced(h),
		ReadHeaderTimeout: 10 * time.Second,
		// A whole request, document included, must arrive within
		// ReadTimeout: 64 MiB in 10 minutes is 110 kB/s, slower than any
		// Wi-Fi link that works at all. Headers get ReadHeaderTimeout.
		ReadTimeout:    10 * time.Minute,
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
