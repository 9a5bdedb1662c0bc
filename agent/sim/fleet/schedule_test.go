package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/configs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitUntil waits until cond holds, re-checking every millisecond, for at
// most 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// simulate runs a fleet of agents on a fake clock for d, with no broker
// listening (reporters retry in vain), stops it without a drain, and
// returns each agent's recorded events, read back from its outbox, and the
// fleet's figures.
func simulate(t *testing.T, seed uint64, agents int, rate float64, d time.Duration) ([][]api.Event, Stats) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 3, 10, 9, 0, 0, 0, time.Local))
	cfg := Config{
		Agents: agents, Rate: rate, Seed: seed, FaultShare: 0.05, StateDir: t.TempDir(),
		MQTT:  configs.AgentMQTT{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", peertest.FreePort(t))},
		Clock: fc, Logger: quiet,
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	// Steps shorter than maxLag: a late arrival would be skipped.
	const step = 250 * time.Millisecond
	for elapsed := time.Duration(0); elapsed < d; elapsed += step {
		fc.Advance(step)
		now := fc.Now().UnixNano()
		waitUntil(t, "the arrivals to be dispatched", func() bool { return f.nextArrival.Load() > now })
	}
	waitUntil(t, "the arrivals to be recorded", func() bool { return f.applied.Load() == f.dispatched.Load() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := f.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]api.Event, agents)
	for i := range agents {
		id := cfg.AgentID(i)
		ob, err := outbox.Open(filepath.Join(cfg.StateDir, id.Site, id.Agent, "outbox.db"), outbox.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		for after := uint64(0); ; {
			es, err := ob.Pending(after, outbox.MaxList)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			out[i] = append(out[i], es...)
			after = es[len(es)-1].Seq
		}
		ob.Close()
	}
	return out, s
}

// what is an event without what the outbox assigns (seq, id, time).
func what(e api.Event) string {
	e.Seq, e.ID, e.Time = 0, "", time.Time{}
	if e.Fault != nil {
		f := *e.Fault
		f.Since = time.Time{}
		e.Fault = &f
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestArrivalsFollowRateAndSeed drives the arrivals with a fake clock:
// over 60 s at 10 events per second the fleet records about 600 events
// (a Poisson count: within 4 standard deviations), with the mix drawAction
// describes, and the same seed gives every agent the same events.
func TestArrivalsFollowRateAndSeed(t *testing.T) {
	const agents, rate, secs = 4, 10, 60
	a, sa := simulate(t, 42, agents, rate, secs*time.Second)
	b, _ := simulate(t, 42, agents, rate, secs*time.Second)
	c, _ := simulate(t, 43, agents, rate, secs*time.Second)
	if sa.Skipped != 0 || sa.Failures != 0 || sa.Acked != 0 || sa.Pending != sa.Recorded {
		t.Errorf("figures %+v; want nothing skipped, failed or acked", sa)
	}
	types := map[api.EventType]int{}
	total, same, differ := 0, true, false
	for i := range agents {
		if len(a[i]) != len(b[i]) {
			same = false
		}
		for j, e := range a[i] {
			types[e.Type]++
			total++
			if j < len(b[i]) && what(e) != what(b[i][j]) {
				same = false
			}
			if j >= len(c[i]) || what(e) != what(c[i][j]) {
				differ = true
			}
			if j == 0 && (e.Type != api.EventWiFiDaily || e.Day != "2026-03-09") {
				t.Errorf("agent %d: first event %s; want wifi.daily for the day before", i, what(e))
			}
		}
	}
	if !same {
		t.Error("the same seed gave different events")
	}
	if !differ {
		t.Error("another seed gave the same events")
	}
	if uint64(total) != sa.Recorded {
		t.Errorf("%d events in the outboxes; the fleet counted %d", total, sa.Recorded)
	}
	arrivals := float64(total - agents) // less the wifi.daily of the day before
	if want := float64(rate * secs); math.Abs(arrivals-want) > 4*math.Sqrt(want) {
		t.Errorf("%v arrivals in %d s; want about %v", arrivals, secs, want)
	}
	t.Logf("%v arrivals, types %v", arrivals, types)
	prints := float64(types[api.EventPrintCompleted]) / arrivals
	faults := float64(types[api.EventFaultRaised]+types[api.EventFaultCleared]) / arrivals
	if prints < 0.35 || prints > 0.50 || faults < 0.02 || faults > 0.08 {
		t.Errorf("prints %.2f, fault changes %.2f of arrivals; want about 0.43 and 0.05", prints, faults)
	}
}

// TestOutagesShareAndSimulatedDays runs agents offline about half the
// time on a fake clock: the share offline is about OfflineShare; each
// simulated day brings a wifi.daily, dated backwards for a short Day.
func TestOutagesShareAndSimulatedDays(t *testing.T) {
	fc := clockwork.NewFakeClockAt(time.Date(2026, 3, 10, 9, 0, 0, 0, time.Local))
	cfg := Config{
		Agents: 40, Seed: 5, OfflineShare: 0.5, OfflineMean: time.Minute, Day: time.Hour,
		StateDir: t.TempDir(), MQTT: configs.AgentMQTT{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", peertest.FreePort(t))},
		Clock: fc, Logger: quiet,
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	offline := 0
	const samples = 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The ramp (all at once) gives every agent its first outage timer.
	if err := fc.BlockUntilContext(ctx, cfg.Agents+1); err != nil {
		t.Fatal(err)
	}
	for range samples {
		fc.Advance(3 * time.Minute)
		// Outages start and end on the fake clock's timers, in their own
		// goroutines; each agent has one such timer pending once they are
		// done, and the simulated days one.
		if err := fc.BlockUntilContext(ctx, cfg.Agents+1); err != nil {
			t.Fatal(err)
		}
		offline += f.Stats().Offline
	}
	if share := float64(offline) / samples / float64(cfg.Agents); share < 0.3 || share > 0.7 {
		t.Errorf("share offline %.2f; want about 0.5", share)
	}
	// One hour of simulated day passed: every agent records the day
	// before Start and the one before that.
	waitUntil(t, "two wifi.daily per agent", func() bool {
		return f.applied.Load() == uint64(2*cfg.Agents)
	})
	cancel()
	s, err := f.Stop(ctx)
	if err != nil || s.Recorded != uint64(2*cfg.Agents) {
		t.Fatalf("%+v, %v; want two events per agent", s, err)
	}
	id := cfg.AgentID(0)
	ob, err := outbox.Open(filepath.Join(cfg.StateDir, id.Site, id.Agent, "outbox.db"), outbox.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	es, err := ob.Pending(0, 10)
	if err != nil || len(es) != 2 || es[0].Day != "2026-03-09" || es[1].Day != "2026-03-08" {
		t.Errorf("wifi.daily %+v, %v; want 2026-03-09 then 2026-03-08", es, err)
	}
}
