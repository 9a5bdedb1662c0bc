package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/peertest"
)

// TestBenchDrain is the delivery load scenario of `make bench`, not a unit
// test: it runs only with RELAIS_BENCH=1. 100,000 events wait in the
// outbox (on disk) as after a long time offline; a Reporter connects and
// drains them through a real mosquitto to a central that acks in batches
// (one ack per wake-up, covering every message received meanwhile). Next
// to it, in the same run, mosquitto's raw rate: the same number of QoS 1
// messages of the same size, from a paho publisher with the same number of
// messages in flight to a paho subscriber. Printed with the ratio.
func TestBenchDrain(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a load scenario for make bench (RELAIS_BENCH=1)")
	}
	const events = 100000
	seed := seedOutbox(t, events)

	type row struct {
		name                string
		msgs, bytes, dups   int
		elapsed, rawElapsed time.Duration
	}
	var rows []row
	for _, c := range []struct {
		batch, window int
		nodelay       bool
	}{{DefaultBatch, DefaultWindow, true}, {256, 1024, true}, {16, 64, true}, {DefaultBatch, DefaultWindow, false}} {
		b := newBrokerNoDelay(t, c.nodelay)
		b.start()
		ce := newCentral(t, b)
		ce.light = true
		dir := t.TempDir()
		copyFile(t, seed, filepath.Join(dir, "outbox.db"))
		ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t, b)
		cfg.Logger = quiet
		cfg.Batch, cfg.Window, cfg.AckTimeout = c.batch, c.window, 30*time.Second
		r, err := New(cfg, ob)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		stop := run(t, r)
		ce.waitHigh(events, 5*time.Minute)
		elapsed := time.Since(start)
		waitFor(t, "the last ack", limit, nil, func() bool { return r.State().LastAck == events })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := lastAck(t, ob); got != events {
			t.Errorf("outbox acked to %d after the drain", got)
		}
		ob.Close()
		cs := ce.stats()
		inFlight := (c.window + c.batch - 1) / c.batch
		raw := rawRate(t, b, cs.msgs, cs.bytes/cs.msgs, inFlight)
		name := fmt.Sprintf("batch %d, window %d", c.batch, c.window)
		if !c.nodelay {
			name += " (*)"
		}
		rows = append(rows, row{name, cs.msgs, cs.bytes, cs.dups, elapsed, raw})
		b.stop()
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nEvent drain: %d events waiting in the outbox, published after (re)connection through mosquitto\n"+
		"to a central acking in batches, loopback. raw: mosquitto alone, the same number of QoS 1 messages of the\n"+
		"same size with as many in flight, paho publisher to paho subscriber, in the same run.\n", events)
	fmt.Fprintf(&sb, "%-24s %9s %6s %8s %9s %5s %8s %11s %9s\n",
		"report", "events/s", "msgs", "KiB/msg", "elapsed", "dups", "msgs/s", "raw msgs/s", "ratio")
	for _, r := range rows {
		rate := float64(r.msgs) / r.elapsed.Seconds()
		raw := float64(r.msgs) / r.rawElapsed.Seconds()
		fmt.Fprintf(&sb, "%-24s %9.0f %6d %8.1f %9s %5d %8.0f %11.0f %8.3fx\n", r.name,
			events/r.elapsed.Seconds(), r.msgs, float64(r.bytes)/float64(r.msgs)/1024,
			r.elapsed.Round(time.Millisecond), r.dups, rate, raw, rate/raw)
	}
	fmt.Fprintf(&sb, "(*) mosquitto without set_tcp_nodelay (its default): acks wait for Nagle and delayed ACKs; the others set it.\n")
	fmt.Print(sb.String())
	r := rows[0]
	raw := float64(r.msgs) / r.rawElapsed.Seconds()
	peertest.BenchRow(t, fmt.Sprintf("outbox drain, %s (events/s)", r.name), fmt.Sprintf("%.0f", events/r.elapsed.Seconds()),
		fmt.Sprintf("raw mosquitto QoS 1, %.0f KiB msgs (msgs/s)", float64(r.bytes)/float64(r.msgs)/1024),
		fmt.Sprintf("%.0f", raw), fmt.Sprintf("%.2fx msgs/s", float64(r.msgs)/r.elapsed.Seconds()/raw))
}

// seedOutbox records n events in an outbox and returns its file, closed
// (checkpointed). It records on /dev/shm when there is one, where fsync
// costs nothing, since only the drain is measured.
func seedOutbox(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "relais-report-bench-")
		if err == nil {
			dir = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	path := filepath.Join(dir, "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{Logger: quiet, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	record(t, ob, 1, uint64(n))
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawRate publishes msgs QoS 1 messages of size bytes through b with at
// most inFlight unacknowledged, to a paho subscriber, and returns the time
// until the subscriber has them all.
func rawRate(t *testing.T, b *broker, msgs, size, inFlight int) time.Duration {
	t.Helper()
	var got atomic.Int64
	all := make(chan struct{})
	client(t, b, "raw-sub", func(c mqtt.Client) {
		subscribeWait(c, "raw/events", 1, func(mqtt.Client, mqtt.Message) {
			if got.Add(1) == int64(msgs) {
				close(all)
			}
		})
	})
	pub := client(t, b, "raw-pub", nil)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	start := time.Now()
	window := make(chan mqtt.Token, inFlight)
	for range msgs {
		if len(window) == cap(window) {
			tok := <-window
			if !tok.WaitTimeout(limit) || tok.Error() != nil {
				t.Fatalf("raw publish: %v", tok.Error())
			}
		}
		window <- pub.Publish("raw/events", 1, false, payload)
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		t.Fatalf("raw: %d of %d messages received", got.Load(), msgs)
	}
	return time.Since(start)
}
