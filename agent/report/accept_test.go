package report

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	ossignal "os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
)

// The test binary runs childMain instead of the tests when childEnv names
// an outbox directory.
const (
	childEnv       = "RELAIS_REPORT_TEST_CHILD"
	childBrokerEnv = "RELAIS_REPORT_TEST_BROKER"
	childTotalEnv  = "RELAIS_REPORT_TEST_TOTAL"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir))
	}
	os.Exit(m.Run())
}

// childMain is the agent of TestAcceptance: it opens the outbox in dir,
// runs a Reporter, and records fixture events at a steady pace (with a
// fault raised and cleared every thousand) until the outbox's last seq
// reaches the total, printing "rec N" after each; then it prints "done",
// and "acked" once the Reporter has recorded central's ack of the total.
// It stops on SIGTERM, or dies by SIGKILL.
func childMain(dir string) int {
	total, err := strconv.ParseUint(os.Getenv(childTotalEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer ob.Close()
	r, err := New(Config{
		MQTT: configs.AgentMQTT{Broker: os.Getenv(childBrokerEnv)},
		Site: site, Agent: agent, Version: "1.2.3-test",
		AckTimeout: 2 * time.Second, PollInterval: 100 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		KeepAlive: 2 * time.Second, MetricsInterval: 500 * time.Millisecond,
		Source: newFixtureSource(ob), Logger: log,
	}, ob)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()

	st, err := ob.Stats()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := st.LastSeq
	pace := time.NewTicker(time.Millisecond)
	defer pace.Stop()
	for n < total && ctx.Err() == nil {
		<-pace.C
		next := n + 1
		switch next % 1000 {
		case 500:
			err = ob.Raise(api.DevicePrinter, "media-empty", api.SeverityFault)
		case 700:
			err = ob.Clear(api.DevicePrinter, "media-empty")
		}
		if err == nil && (next%1000 == 500 || next%1000 == 700) {
			st, err = ob.Stats()
		}
		if err == nil && st.LastSeq > n {
			n = st.LastSeq
		} else if err == nil { // no fault change (already open or closed)
			var e api.Event
			e, err = ob.RecordEvent(eventFor(next))
			n = e.Seq
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		r.Kick()
		fmt.Printf("rec %d\n", n)
	}
	fmt.Println("done")
	for ctx.Err() == nil && r.State().LastAck < total {
		<-pace.C // a bounded poll: the parent gives up on its own limit
	}
	if ctx.Err() == nil {
		fmt.Println("acked")
	}
	<-ctx.Done()
	if err := <-ran; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	return 0
}

// child is a running childMain.
type child struct {
	t        *testing.T
	cmd      *exec.Cmd
	sig      signal
	recorded atomic.Uint64 // last "rec N"
	done     atomic.Bool
	acked    atomic.Bool
	eof      chan struct{}
	stderr   string // file path
}

func startChild(t *testing.T, dir string, b *broker, total int) *child {
	t.Helper()
	c := &child{t: t, eof: make(chan struct{}), stderr: filepath.Join(t.TempDir(), "stderr")}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+dir, childBrokerEnv+"="+b.url(), childTotalEnv+"="+strconv.Itoa(total))
	errFile, err := os.Create(c.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	c.cmd.Stderr = errFile
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.eof
		c.cmd.Wait()
		if t.Failed() {
			t.Logf("child %d stderr (tail):\n%s", c.cmd.Process.Pid, c.tail())
		}
	})
	go func() {
		defer close(c.eof)
		defer c.sig.broadcast()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "rec "):
				n, _ := strconv.ParseUint(line[4:], 10, 64)
				c.recorded.Store(n)
			case line == "done":
				c.done.Store(true)
			case line == "acked":
				c.acked.Store(true)
			}
			c.sig.broadcast()
		}
	}()
	return c
}

func (c *child) waitRecorded(n int) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("the child to record seq %d", n), 2*limit, &c.sig, func() bool {
		return c.recorded.Load() >= uint64(n) || c.exited()
	})
	if c.exited() {
		c.t.Fatalf("child exited:\n%s", c.tail())
	}
}

func (c *child) exited() bool {
	select {
	case <-c.eof:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the child and returns the last seq it reported.
func (c *child) kill() uint64 {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-c.eof
	err := c.cmd.Wait()
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("child ended with %v, not by SIGKILL", err)
	}
	return c.recorded.Load()
}

// stop stops the child with SIGTERM and checks that it exits cleanly.
func (c *child) stop() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.eof
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("child: %v\n%s", err, c.tail())
	}
}

// tail returns the last lines the child wrote on its standard error.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.stderr)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// TestAcceptance is the delivery guarantee end to end: an agent process
// records 10,000 events at a steady pace and publishes them through a real
// mosquitto to a central that deduplicates by id and acks contiguously,
// while the agent is SIGKILLed twice and the broker is stopped for a while
// (the second kill falls in the outage, and the third agent starts
// offline), at points drawn from a seeded source. Every event must arrive;
// duplicates are allowed and reported. On the way, the retained status
// shows the agent online, then offline by the will after the first kill.
func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 events through child processes")
	}
	t.Parallel() // the longest test: the others run meanwhile
	const total = 10000
	rng := rand.New(rand.NewPCG(20260310, 4))
	kill1 := 1500 + rng.IntN(1000)
	down := kill1 + 1500 + rng.IntN(1000)
	kill2 := down + 1000 + rng.IntN(1000)
	up := kill2 + 500 + rng.IntN(1000)

	b := newBroker(t)
	b.start()
	newCapture(t, b)
	ce := newCentral(t, b)
	dir := t.TempDir()
	began := time.Now()

	c := startChild(t, dir, b, total)
	c.waitRecorded(kill1)
	waitRetained(t, b, "the retained status online", func(s api.Status) bool { return s.Online })
	at := c.kill()
	waitRetained(t, b, "the will as retained status", func(s api.Status) bool { return !s.Online })
	if got := retained(t, b, api.StatusTopic(site, agent)); got != `{"online":false}` {
		t.Errorf("will: %s, want exactly {\"online\":false}", got)
	}
	t.Logf("%v: SIGKILL 1 at seq %d; central had %d; the will is the retained status", since(began), at, ce.stats().high)

	c = startChild(t, dir, b, total)
	c.waitRecorded(down)
	b.stop()
	outage := time.Now()
	t.Logf("%v: broker stopped at seq %d; central had %d", since(began), c.recorded.Load(), ce.stats().high)
	c.waitRecorded(kill2)
	at = c.kill()
	t.Logf("%v: SIGKILL 2 at seq %d, broker down", since(began), at)

	c = startChild(t, dir, b, total)
	c.waitRecorded(up)
	b.start()
	t.Logf("%v: broker restarted at seq %d after %v", since(began), c.recorded.Load(), since(outage))
	c.waitRecorded(total)
	t.Logf("%v: all recorded; central has %d", since(began), ce.stats().high)
	ce.waitHigh(total, 2*limit)
	waitFor(t, "the agent to record central's last ack", limit, &c.sig, func() bool { return c.acked.Load() || c.exited() })
	elapsed := time.Since(began)
	c.stop()

	cs := ce.stats()
	if cs.distinct != total || cs.high != total || cs.maxSeen != total || len(cs.bad) > 0 {
		t.Fatalf("central: %d distinct seqs, contiguous to %d, highest %d, problems %v", cs.distinct, cs.high, cs.maxSeen, cs.bad)
	}
	if got := retained(t, b, api.StatusTopic(site, agent)); got != `{"online":false}` {
		t.Errorf("retained status after SIGTERM: %s", got)
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	s, err := ob.Stats()
	if err != nil || s.LastSeq != total || s.LastAck != total || s.Depth != 0 {
		t.Errorf("outbox after the run: %+v, %v", s, err)
	}
	t.Logf("acceptance: %d events, all %d distinct ids and seqs received, 0 missing; %d duplicates in %d messages; "+
		"2 SIGKILLs (seqs %d and %d), broker down from seq %d to %d; %v",
		total, cs.distinct, cs.dups, cs.msgs, kill1, kill2, down, up, elapsed.Round(time.Millisecond))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
