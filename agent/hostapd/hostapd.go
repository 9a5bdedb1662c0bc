// Package hostapd talks to hostapd's control interface, the UNIX datagram
// socket that hostapd opens for each access point (such as
// /run/hostapd/wlan0): requests such as PING, STATUS and STA-FIRST/STA-NEXT
// (Stations), replies parsed into key=value maps, and a Monitor that
// follows unsolicited events (AP-STA-CONNECTED, AP-ENABLED, ...) on a second,
// attached connection, notices a dead hostapd by PING and reconnects when it
// comes back. The client binds its own socket, in a directory it is given,
// because hostapd answers to the sender's address. Station addresses are
// handed to the caller and never logged here.
package hostapd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxReplyBytes bounds one reply; hostapd's own limit is 4 KiB for most
// commands.
const MaxReplyBytes = 16 << 10

// Conn is a connection to one hostapd control socket. Requests are
// serialised: hostapd answers in order, one reply per request.
type Conn struct {
	mu    sync.Mutex
	conn  *net.UnixConn
	local string
}

var seq atomic.Uint64

// Dial connects to the control socket at path, binding the client's own
// socket in dir (a runtime directory the agent owns).
func Dial(path, dir string) (*Conn, error) {
	local := filepath.Join(dir, fmt.Sprintf("hostapd-%d-%d", os.Getpid(), seq.Add(1)))
	os.Remove(local)
	conn, err := net.DialUnix("unixgram",
		&net.UnixAddr{Name: local, Net: "unixgram"},
		&net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Conn{conn: conn, local: local}, nil
}

// Close closes the connection and removes the client's socket.
func (c *Conn) Close() error {
	err := c.conn.Close()
	os.Remove(c.local)
	return err
}

// Request sends one command and returns hostapd's reply. A reply of FAIL or
// UNKNOWN COMMAND is an error.
func (c *Conn) Request(ctx context.Context, cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	buf := make([]byte, MaxReplyBytes)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return "", err
		}
		reply := string(buf[:n])
		if strings.HasPrefix(reply, "<") {
			continue // an unsolicited event for an attached client
		}
		switch strings.TrimSpace(reply) {
		case "FAIL":
			return "", &refusedError{cmd}
		case "UNKNOWN COMMAND":
			return "", &unknownError{cmd}
		}
		return reply, nil
	}
}

// refusedError is hostapd's FAIL reply to a command.
type refusedError struct{ cmd string }

func (e *refusedError) Error() string { return fmt.Sprintf("hostapd refused %q", e.cmd) }

// unknownError is hostapd's UNKNOWN COMMAND reply.
type unknownError struct{ cmd string }

func (e *unknownError) Error() string { return fmt.Sprintf("hostapd does not know %q", e.cmd) }

// Ping checks that hostapd answers.
func (c *Conn) Ping(ctx context.Context) error {
	reply, err := c.Request(ctx, "PING")
	if err != nil {
		return err
	}
	if strings.TrimSpace(reply) != "PONG" {
		return errors.New("hostapd answered PING with " + strconv.Quote(reply))
	}
	return nil
}

// Status is what STATUS says of the access point.
type Status struct {
	State    string // ENABLED, DISABLED, COUNTRY_UPDATE, ...
	SSID     string
	Channel  int
	Stations int
}

// Status asks hostapd for the state of its first BSS.
func (c *Conn) Status(ctx context.Context) (Status, error) {
	reply, err := c.Request(ctx, "STATUS")
	if err != nil {
		return Status{}, err
	}
	kv := ParseKV(reply)
	st := Status{State: kv["state"], SSID: kv["ssid[0]"]}
	st.Channel, _ = strconv.Atoi(kv["channel"])
	st.Stations, _ = strconv.Atoi(kv["num_sta[0]"])
	if st.State == "" {
		return st, fmt.Errorf("STATUS reply without state: %.80q", reply)
	}
	return st, nil
}

// ParseKV parses a reply made of key=value lines. Lines without '=' are
// ignored; a repeated key keeps its first value.
func ParseKV(reply string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(reply, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if _, dup := kv[k]; !dup {
			kv[k] = v
		}
	}
	return kv
}
