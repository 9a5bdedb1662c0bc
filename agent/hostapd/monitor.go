package hostapd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// EventKind says what an Event reports. Besides hostapd's own events, the
// Monitor sends EventAttached and EventDetached.
type EventKind string

// Event kinds. Other hostapd events (WPS, EAP, DFS, ...) are not passed on.
const (
	// EventAttached: the monitor is attached, after a start or a reconnect.
	// Events may have been missed: resynchronise with STATUS and Stations.
	EventAttached EventKind = "ATTACHED"
	// EventDetached: hostapd went away or stopped answering PING; Err says
	// why. Sent once per loss (and once if the first attach fails), not on
	// every failed retry.
	EventDetached        EventKind = "DETACHED"
	EventStaConnected    EventKind = "AP-STA-CONNECTED"    // Addr is set
	EventStaDisconnected EventKind = "AP-STA-DISCONNECTED" // Addr is set
	EventAPEnabled       EventKind = "AP-ENABLED"
	EventAPDisabled      EventKind = "AP-DISABLED"
	EventTerminating     EventKind = "CTRL-EVENT-TERMINATING" // EventDetached follows
)

// Event is one event of an attached control connection.
type Event struct {
	Kind  EventKind
	Level int              // hostapd's message level, the N of "<N>"
	Addr  net.HardwareAddr // station events: the station's address
	Err   error            // EventDetached
}

// ParseEvent parses one unsolicited message, such as
// "<3>AP-STA-CONNECTED 02:00:00:00:00:01" (optionally after "IFNAME=wlan0 "
// as the global control interface sends them). It reports false for
// replies, unknown events and garbage, including a station event without a
// valid address.
func ParseEvent(msg string) (Event, bool) {
	if len(msg) > MaxReplyBytes {
		return Event{}, false
	}
	if strings.HasPrefix(msg, "IFNAME=") {
		_, msg, _ = strings.Cut(msg, " ")
	}
	if !strings.HasPrefix(msg, "<") {
		return Event{}, false
	}
	lvl, body, ok := strings.Cut(msg[1:], ">")
	if !ok || len(lvl) > 2 {
		return Event{}, false
	}
	level, err := strconv.Atoi(lvl)
	if err != nil || level < 0 {
		return Event{}, false
	}
	fields := strings.Fields(body)
	if len(fields) == 0 {
		return Event{}, false
	}
	ev := Event{Kind: EventKind(fields[0]), Level: level}
	switch ev.Kind {
	case EventStaConnected, EventStaDisconnected:
		if len(fields) < 2 {
			return Event{}, false
		}
		if ev.Addr, err = parseMAC(fields[1]); err != nil {
			return Event{}, false
		}
	case EventAPEnabled, EventAPDisabled, EventTerminating:
	default:
		return Event{}, false
	}
	return ev, true
}

// Monitor follows one access point's events: it opens its own control
// connection, sends ATTACH, passes on the events, sends PING every
// PingInterval and takes a missing PONG (or a refused send, as after kill
// -9) as hostapd gone. It then reconnects with exponential backoff, from
// MinBackoff to MaxBackoff, until the control socket answers again (hostapd
// restarted and recreated it).
type Monitor struct {
	Path string // hostapd's control socket, such as /run/hostapd/wlan0
	Dir  string // where to bind the client socket (a runtime directory)

	PingInterval time.Duration // 0 means 10 s
	MinBackoff   time.Duration // 0 means 250 ms
	MaxBackoff   time.Duration // 0 means 10 s
}

// Run sends events on events until ctx ends, then returns ctx.Err(). It
// blocks while events is full.
func (m *Monitor) Run(ctx context.Context, events chan<- Event) error {
	ping := orDefault(m.PingInterval, 10*time.Second)
	minB := orDefault(m.MinBackoff, 250*time.Millisecond)
	maxB := max(orDefault(m.MaxBackoff, 10*time.Second), minB)
	backoff := minB
	down := false // EventDetached sent and not followed by EventAttached
	for {
		attached, err := m.session(ctx, events, ping)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attached {
			backoff = minB
		}
		if attached || !down {
			down = true
			if !send(ctx, events, Event{Kind: EventDetached, Err: err}) {
				return ctx.Err()
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, maxB)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func send(ctx context.Context, events chan<- Event, ev Event) bool {
	select {
	case events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

var errTerminating = errors.New("hostapd is terminating")

// session attaches once and follows events until the connection fails or
// ctx ends. attached tells whether EventAttached was sent.
func (m *Monitor) session(ctx context.Context, events chan<- Event, ping time.Duration) (attached bool, err error) {
	c, err := Dial(m.Path, m.Dir)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := attach(ctx, c, ping); err != nil {
		return false, err
	}
	if !send(ctx, events, Event{Kind: EventAttached}) {
		return true, ctx.Err()
	}

	msgs := make(chan string)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		buf := make([]byte, MaxReplyBytes)
		for {
			n, err := c.conn.Read(buf)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- string(buf[:n]):
			case <-done:
				return
			}
		}
	}()

	tick := time.NewTicker(ping)
	defer tick.Stop()
	awaiting := false // a PING is out, its PONG not back
	for {
		select {
		case <-ctx.Done():
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.conn.Write([]byte("DETACH"))
			return true, ctx.Err()
		case err := <-readErr:
			return true, err
		case msg := <-msgs:
			if ev, ok := ParseEvent(msg); ok {
				if !send(ctx, events, ev) {
					return true, ctx.Err()
				}
				if ev.Kind == EventTerminating {
					return true, errTerminating
				}
			} else if strings.TrimSpace(msg) == "PONG" {
				awaiting = false
			}
		case <-tick.C:
			if awaiting {
				return true, fmt.Errorf("hostapd did not answer PING within %v", ping)
			}
			c.conn.SetWriteDeadline(time.Now().Add(ping))
			if _, err := c.conn.Write([]byte("PING")); err != nil {
				return true, err
			}
			awaiting = true
		}
	}
}

// attach sends ATTACH and waits for its OK, at most timeout.
func attach(ctx context.Context, c *Conn, timeout time.Duration) error {
	deadline := time.Now().Add(max(timeout, time.Second))
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetDeadline(deadline)
	defer c.conn.SetDeadline(time.Time{})
	if _, err := c.conn.Write([]byte("ATTACH")); err != nil {
		return err
	}
	buf := make([]byte, MaxReplyBytes)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return err
		}
		reply := strings.TrimSpace(string(buf[:n]))
		switch {
		case strings.HasPrefix(reply, "<"):
			continue
		case reply == "OK":
			return nil
		default:
			return fmt.Errorf("hostapd answered ATTACH with %.40q", reply)
		}
	}
}
