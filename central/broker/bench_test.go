package broker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/peertest"
)

// benchParam reads a positive integer from the environment.
func benchParam(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestBenchIngest measures, when RELAIS_BENCH=1, the events per second
// that go from N publishers through the embedded broker into SQLite and
// come back acked (publish → committed → ack), and, in the same run, the
// rate of raw Mosquitto delivering the same payloads from N publishers to
// one subscriber with no store, and prints their ratio. Sizes:
// RELAIS_BENCH_AGENTS (20), RELAIS_BENCH_EVENTS per agent (2000),
// RELAIS_BENCH_BATCH events per message (8).
//
//	RELAIS_BENCH=1 go test -run TestBenchIngest -v ./central/broker/
func TestBenchIngest(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a benchmark: RELAIS_BENCH=1 runs it")
	}
	agents := benchParam(t, "RELAIS_BENCH_AGENTS", 20)
	events := benchParam(t, "RELAIS_BENCH_EVENTS", 2000)
	batch := min(benchParam(t, "RELAIS_BENCH_BATCH", 8), api.MaxBatchEvents)
	msgs := (events + batch - 1) / batch
	events = msgs * batch
	payloads := make([][][]byte, agents)
	for a := range agents {
		for m := range msgs {
			payloads[a] = append(payloads[a], eventsPayload(t, benchAgent(a), uint64(m*batch+1), batch))
		}
	}
	total := agents * events
	shape := fmt.Sprintf("%d agents × %d events, %d per message", agents, events, batch)

	// Embedded broker and SQLite.
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{Logger: quiet})
	b := startBroker(t, st, in, Options{Logger: quiet})
	clients := make([]*mqttClient, agents)
	acked := make([]chan struct{}, agents)
	for a := range agents {
		pw := addAgent(t, st, site, benchAgent(a))
		c := dial(t, b.Addr().String(), benchAgent(a), Username(site, benchAgent(a)), pw, nil)
		done := make(chan struct{})
		acked[a] = done
		var once sync.Once
		tok := c.c.Subscribe(api.AckTopic(site, benchAgent(a)), 1, func(_ paho.Client, m paho.Message) {
			if ack, err := api.DecodeAck(m.Payload()); err == nil && ack.Upto == uint64(events) {
				once.Do(func() { close(done) })
			}
		})
		if !tok.WaitTimeout(limit) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		clients[a] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	for a := range agents {
		wg.Go(func() {
			for _, p := range payloads[a] {
				clients[a].c.Publish(api.EventsTopic(site, benchAgent(a)), 1, false, p)
			}
			select {
			case <-acked[a]:
			case <-time.After(10 * time.Minute):
				t.Errorf("agent %d: not every event acked", a)
			}
		})
	}
	wg.Wait()
	embedded := time.Since(start)
	s := in.Stats()
	if s.Inserted != uint64(total) {
		t.Fatalf("%d events inserted, want %d", s.Inserted, total)
	}
	embeddedRate := float64(total) / embedded.Seconds()
	t.Logf("bench ingest: embedded broker + SQLite, %s: %.0f events/s end to end (publish → commit → ack), %d store transactions for %d messages",
		shape, embeddedRate, s.Transactions, agents*msgs)

	// Raw Mosquitto, same payloads, no store.
	addr := benchMosquitto(t)
	var got atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	sub := dial(t, addr, "bench-sub", "", "", nil)
	tok := sub.c.Subscribe(api.AgentFilter(api.KindEvents), 1, func(_ paho.Client, m paho.Message) {
		if got.Add(1) == int64(agents*msgs) {
			once.Do(func() { close(all) })
		}
	})
	if !tok.WaitTimeout(limit) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pubs := make([]*mqttClient, agents)
	for a := range agents {
		pubs[a] = dial(t, addr, "bench-pub-"+benchAgent(a), "", "", nil)
	}
	start = time.Now()
	for a := range agents {
		wg.Go(func() {
			for _, p := range payloads[a] {
				pubs[a].c.Publish(api.EventsTopic(site, benchAgent(a)), 1, false, p)
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		t.Fatalf("mosquitto delivered %d of %d messages", got.Load(), agents*msgs)
	}
	raw := time.Since(start)
	rawRate := float64(total) / raw.Seconds()
	t.Logf("bench ingest: mosquitto alone, %s: %.0f events/s (publish → subscriber, no store)", shape, rawRate)
	t.Logf("bench ingest: ratio embedded+SQLite / mosquitto alone: %.3f", embeddedRate/rawRate)
	peertest.BenchRow(t, "ingest, embedded broker + SQLite, "+shape+" (events/s)", fmt.Sprintf("%.0f", embeddedRate),
		"mosquitto alone, same payloads", fmt.Sprintf("%.0f", rawRate), fmt.Sprintf("%.3fx", embeddedRate/rawRate))
}

func benchAgent(i int) string { return fmt.Sprintf("bench-%03d", i) }

// benchMosquitto runs mosquitto without limits on queued and in-flight
// messages, logging no debug lines (peertest.Mosquitto logs every
// packet, which would slow it down).
func benchMosquitto(t *testing.T) string {
	t.Helper()
	bin := peertest.Program(t, "mosquitto", "mosquitto")
	port := peertest.FreePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"+
		"log_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_inflight_messages 0\nmax_queued_messages 0\nset_tcp_nodelay true\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := peertest.StartAndWait(t, exec.Command(bin, "-c", conf), " running", 20*time.Second); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
