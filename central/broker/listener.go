package broker

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener is a mochi listener over a net.Listener opened by New, so that
// the address is known (port 0 in tests) and listening errors come out of
// New. It bounds the connections (open ones share sem; one more is closed
// at once) and gives a new connection connectTimeout for its TLS handshake
// and CONNECT packet: mochi sets no deadline before CONNECT, so without it
// an idle socket would be held forever. Close waits until every
// connection it handed to mochi is over, after closing them: mochi counts
// connections in a WaitGroup that a connection accepted during its Close
// would otherwise join too late.
type listener struct {
	id             string
	ln             net.Listener
	tls            *tls.Config // nil for plain MQTT
	sem            chan struct{}
	connectTimeout time.Duration
	log            *slog.Logger
	refused        *atomic.Uint64

	mu     sync.Mutex
	closed bool                  // guarded by mu
	conns  map[net.Conn]struct{} // open connections; guarded by mu
	wg     sync.WaitGroup        // connections handed to mochi
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return l.id }
func (l *listener) Address() string  { return l.ln.Addr().String() }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until the listener is closed.
func (l *listener) Serve(establish listeners.EstablishFn) {
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accepting an MQTT connection", "listener", l.id, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		select {
		case l.sem <- struct{}{}:
		default:
			if c := l.refused.Add(1); c&(c-1) == 0 {
				l.log.Warn("refused an MQTT connection: too many open", "max", cap(l.sem), "count", c)
			}
			conn.Close()
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			<-l.sem
			return
		}
		if l.conns == nil {
			l.conns = map[net.Conn]struct{}{}
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serveConn(conn, establish)
	}
}

func (l *listener) serveConn(conn net.Conn, establish listeners.EstablishFn) {
	defer func() {
		conn.Close()
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		<-l.sem
		l.wg.Done()
	}()
	conn.SetDeadline(time.Now().Add(l.connectTimeout))
	c := conn
	if l.tls != nil {
		c = tls.Server(conn, l.tls)
	}
	if err := establish(l.id, c); err != nil {
		l.log.Debug("MQTT connection ended", "listener", l.id, "remote", conn.RemoteAddr().String(), "err", err)
	}
}

// Close stops accepting, disconnects the listener's clients, closes the
// connections that have not logged in yet, and waits for them all.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.ln.Close()
	closeClients(l.id)
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
