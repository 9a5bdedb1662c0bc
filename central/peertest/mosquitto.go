package peertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// peers that cannot be told to pick their own.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Mosquitto runs Debian's mosquitto on a free loopback port with the given
// extra configuration lines (listener and logging are set here) and returns
// its address, host:port, once mosquitto says it is running. It is stopped
// when the test ends.
func Mosquitto(t testing.TB, extra string) string {
	t.Helper()
	bin := Program(t, "mosquitto", "mosquitto")
	port := FreePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nlog_dest stderr\nlog_type all\npersistence false\n%s\n", port, extra)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	// mosquitto logs to stderr, unbuffered: "... running" once it listens.
	if err := StartAndWait(t, cmd, " running", 20*time.Second); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// StartAndWait starts cmd and waits until a line of its standard error
// contains ready, for at most limit. The command is killed when the test
// ends; its further output is discarded. On failure the error carries what
// the command printed.
func StartAndWait(t testing.TB, cmd *exec.Cmd, ready string, limit time.Duration) error {
	t.Helper()
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log []string
		ok := false
		for sc.Scan() {
			switch {
			case ok: // drain
			case strings.Contains(sc.Text(), ready):
				ok = true
				found <- nil
			case len(log) < 200:
				log = append(log, sc.Text())
			}
		}
		if !ok {
			found <- append(log, "")
		}
	}()
	select {
	case log := <-found:
		if log != nil {
			return fmt.Errorf("exited before %q:\n%s", ready, strings.Join(log, "\n"))
		}
		return nil
	case <-time.After(limit):
		return fmt.Errorf("not ready after %v", limit)
	}
}
