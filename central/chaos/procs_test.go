package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// Bounds of the processes' life cycle.
const (
	readyLimit = 90 * time.Second // from start to READY=1 (or an open port)
	stopLimit  = 30 * time.Second // from SIGTERM to exit, then SIGKILL
)

// buildBinaries builds relais-agent and relais-central, as they ship (no
// race detector), into a directory of the test, and returns it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir,
		"github.com/relais-fr/relais/agent/cmd/relais-agent",
		"github.com/relais-fr/relais/central/cmd/relais-central")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("binaries built in %v", time.Since(start).Round(100*time.Millisecond))
	return dir
}

// proc is a program the scenario runs as a child process, again and again
// with the same arguments: started, killed, stopped and started again. Its
// output from every run goes to one log file, shown on failure.
type proc struct {
	t    *testing.T
	name string
	exe  string
	args []string
	env  []string
	log  string
	// notify: the program says READY=1 on $NOTIFY_SOCKET, as under systemd.
	notify bool
	// ready, if set, is polled after the start until it holds.
	ready func() bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// newProc describes a program; it is started by start. Its log goes to the
// test's temporary directory, and its tail is logged if the test fails.
func newProc(t *testing.T, name, exe string, args ...string) *proc {
	p := &proc{t: t, name: name, exe: exe, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s log (%s), last lines:\n%s", p.name, p.log, tail(p.log, 6<<10))
		}
	})
	return p
}

// start starts a run and waits until the program is ready.
func (p *proc) start() {
	p.t.Helper()
	if err := p.startErr(); err != nil {
		p.t.Fatalf("%s: %v\n%s", p.name, err, tail(p.log, 4<<10))
	}
}

func (p *proc) startErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("started twice")
	}
	p.runs++
	log, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== chaos: run %d of %s at %s\n", p.runs, p.name, time.Now().Format(time.TimeOnly))
	cmd := exec.Command(p.exe, p.args...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=")
	cmd.Env = append(cmd.Env, p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	var conn *net.UnixConn
	if p.notify {
		// The socket stays open as long as the program runs, as
		// systemd's does: it says STATUS= and STOPPING=1 there too.
		path := filepath.Join(p.t.TempDir(), "notify")
		if conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+path)
	}
	if err := cmd.Start(); err != nil {
		if conn != nil {
			conn.Close()
		}
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		if conn != nil {
			conn.Close()
		}
		close(done)
	}()
	p.cmd, p.done = cmd, done
	if conn != nil {
		if err := awaitReady(conn, done, readyLimit); err != nil {
			return err
		}
		go func() { // the later messages are read and dropped
			conn.SetReadDeadline(time.Time{})
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}()
		return nil
	}
	if p.ready != nil {
		return pollUntil(readyLimit, func() bool {
			select {
			case <-done:
				return true
			default:
			}
			return p.ready()
		}, func() error {
			select {
			case <-done:
				return fmt.Errorf("exited (%v) before it was ready", cmd.ProcessState)
			default:
				return nil
			}
		})
	}
	return nil
}

// awaitReady reads sd_notify messages until READY=1, the program's exit or
// the limit.
func awaitReady(conn *net.UnixConn, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	buf := make([]byte, 4096)
	for {
		select {
		case <-done:
			return errors.New("exited before READY=1")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no READY=1 within %v", limit)
		}
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := conn.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			continue
		}
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if l == "READY=1" {
				return nil
			}
		}
	}
}

// signal sends sig and waits for the exit, at most stopLimit before
// SIGKILL. It returns the exit status, or an error if the program had to
// be killed or was not running.
func (p *proc) signal(sig syscall.Signal) (*os.ProcessState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil, errors.New("not running")
	}
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	cmd.Process.Signal(sig)
	select {
	case <-done:
		return cmd.ProcessState, nil
	case <-time.After(stopLimit):
		cmd.Process.Kill()
		<-done
		return cmd.ProcessState, fmt.Errorf("still running %v after %v: killed", sig, stopLimit)
	}
}

// kill stops the program the hard way, as a power cut would; it does
// nothing if the program is not running.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
}

// stop stops the program as systemd does, with SIGTERM, and fails the test
// unless it exits cleanly.
func (p *proc) stop() {
	p.t.Helper()
	st, err := p.signal(syscall.SIGTERM)
	if err == nil && !st.Success() {
		err = fmt.Errorf("exit after SIGTERM: %v", st)
	}
	if err != nil {
		p.t.Fatalf("%s: %v\n%s", p.name, err, tail(p.log, 4<<10))
	}
}

// restart kills (or, with term, stops) the program and starts it again.
func (p *proc) restart(term bool) {
	p.t.Helper()
	if term {
		p.stop()
	} else {
		p.kill()
	}
	p.start()
}

// broker is a real mosquitto on a fixed loopback port, so that it can be
// stopped and started again where the clients look for it. It keeps no
// state between runs (persistence false): a restart loses its sessions and
// retained messages, as a broker replaced after a crash would.
type broker struct {
	*proc
	Addr string
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := peertest.Program(t, "mosquitto", "mosquitto")
	port := peertest.FreePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n"+
		"log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &broker{proc: newProc(t, "mosquitto", bin, "-c", conf), Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b.ready = func() bool {
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	b.start()
	return b
}

// startCentral runs relais-central in region mode: PostgreSQL at db and
// the external broker, with its dashboard on a loopback port.
func startCentral(t *testing.T, bin, db, brokerAddr string) *proc {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "central.toml") // empty: the flags say it all
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, "relais-central", filepath.Join(bin, "relais-central"), "run", "--config", conf,
		"--set", fmt.Sprintf("http.listen=127.0.0.1:%d", peertest.FreePort(t)),
		"--set", "storage.dir="+t.TempDir(), "--set", "db.url="+db,
		"--set", "broker.embedded=false", "--set", "broker.url=mqtt://"+brokerAddr)
	p.notify = true
	p.start()
	return p
}

// pollUntil polls cond every 100 ms until it holds, or returns the error
// of why (or a timeout) after limit. why may be nil.
func pollUntil(limit time.Duration, cond func() bool, why func() error) error {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			if why != nil {
				return why()
			}
			return nil
		}
		if time.Now().After(deadline) {
			if why != nil {
				if err := why(); err != nil {
					return err
				}
			}
			return fmt.Errorf("not within %v", limit)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not synchronising
	}
}

// tail returns the last n bytes of a file, from a line start.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
