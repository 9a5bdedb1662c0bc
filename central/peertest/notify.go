package peertest

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NotifySocket plays systemd's part for a service under test: it listens on
// a datagram socket for sd_notify messages. Pass its path as NOTIFY_SOCKET;
// Await returns once a message with the given line (such as "READY=1")
// arrives.
type NotifySocket struct {
	Path string
	conn *net.UnixConn
}

// ListenNotify opens a notify socket that is closed when the test ends.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &NotifySocket{Path: path, conn: conn}
}

// Await waits at most limit for a message containing line, and fails the
// test otherwise.
func (n *NotifySocket) Await(t testing.TB, line string, limit time.Duration) {
	t.Helper()
	n.conn.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 4096)
	for {
		m, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("no %s from the service: %v", line, err)
		}
		for _, l := range strings.Split(string(buf[:m]), "\n") {
			if l == line {
				return
			}
		}
	}
}
