package outbox_test

import (
	"errors"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// snapshot returns a valid metrics payload.
func snapshot(t *testing.T, at time.Time) []byte {
	t.Helper()
	b, err := api.Encode(api.Metrics{Time: at.UTC(), Queue: &api.Queue{Pending: 1, CompletedToday: 12}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metricIDs(t *testing.T, o *outbox.Outbox) []int64 {
	t.Helper()
	ms, err := o.PendingMetrics(0, outbox.MaxList)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func TestMetricsPendingAndAck(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{})
	var want [][]byte
	for range 3 {
		want = append(want, snapshot(t, c.Now()))
		if err := o.AddMetrics(want[len(want)-1]); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	ms, err := o.PendingMetrics(1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != 2 || string(ms[0].Payload) != string(want[1]) || string(ms[1].Payload) != string(want[2]) {
		t.Errorf("PendingMetrics(1, 10) = %+v", ms)
	}
	if err := o.AckMetrics(2); err != nil {
		t.Fatal(err)
	}
	if err := o.AckMetrics(2); err != nil {
		t.Fatal(err)
	}
	if ids := metricIDs(t, o); len(ids) != 1 || ids[0] != 3 {
		t.Errorf("metrics after AckMetrics(2): %v, want [3]", ids)
	}
	if err := o.AckMetrics(3); err != nil {
		t.Fatal(err)
	}
	// IDs are never reused, even once the table is empty.
	if err := o.AddMetrics(snapshot(t, c.Now())); err != nil {
		t.Fatal(err)
	}
	if ids := metricIDs(t, o); len(ids) != 1 || ids[0] != 4 {
		t.Errorf("metrics after emptying and adding: %v, want [4]", ids)
	}
	if s := stats(t, o); s.Metrics != 1 || s.MetricsBytes != int64(len(snapshot(t, c.Now())))+outbox.RowOverhead {
		t.Errorf("stats: %+v", s)
	}
	checkAccounting(t, o)
}

func TestAddMetricsRefusesInvalid(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{})
	for name, p := range map[string][]byte{
		"empty":      nil,
		"not json":   []byte("{"),
		"no ts":      []byte(`{"queue":{"pending":1,"held":0,"processing":0,"completed_today":0}}`),
		"free text":  []byte(`{"ts":"2026-03-10T10:00:00Z","job":"secret.pdf"}`),
		"over limit": append([]byte(`{"ts":"2026-03-10T10:00:00Z"`), make([]byte, api.MaxPayloadBytes)...),
	} {
		if err := o.AddMetrics(p); err == nil {
			t.Errorf("%s: AddMetrics succeeded", name)
		}
	}
	if s := stats(t, o); s.Metrics != 0 {
		t.Errorf("%d metrics stored", s.Metrics)
	}
}

// TestSizeBound fills a small outbox: metrics go first, oldest first, then
// Record refuses with ErrFull; no event is ever dropped.
func TestSizeBound(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{MaxBytes: outbox.MinMaxBytes})
	const nMetrics = 40
	for range nMetrics {
		if err := o.AddMetrics(snapshot(t, c.Now())); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	if s := stats(t, o); s.Metrics != nMetrics || s.UsedBytes() > s.MaxBytes/2 {
		t.Fatalf("after %d metrics: %+v; the test wants them to fit in half the bound", nMetrics, s)
	}

	var recorded uint64
	wasNearFull := false
	for {
		err := o.Record(printed(1))
		if errors.Is(err, outbox.ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		recorded++
		s := stats(t, o)
		if s.UsedBytes() > s.MaxBytes {
			t.Fatalf("after %d events: used %d > max %d", recorded, s.UsedBytes(), s.MaxBytes)
		}
		// The metrics left are always the newest ones: oldest go first.
		if ids := metricIDs(t, o); len(ids) > 0 && (ids[len(ids)-1] != nMetrics || ids[0] != nMetrics-int64(len(ids))+1) {
			t.Fatalf("after %d events: metrics %v, want the newest", recorded, ids)
		}
		if near := o.NearFull(); near != s.NearFull() || near != (s.PendingBytes*100 > s.MaxBytes*outbox.NearFullPercent) {
			t.Fatalf("NearFull %v with %+v", near, s)
		} else if near {
			wasNearFull = true
		} else if wasNearFull {
			t.Fatalf("NearFull went back to false while only recording")
		}
	}
	s := stats(t, o)
	if s.Metrics != 0 || s.LastSeq != recorded || s.Depth != recorded || !s.NearFull() || !wasNearFull {
		t.Errorf("full: %+v after %d events, near full seen %v", s, recorded, wasNearFull)
	}
	es := all(t, o)
	if len(es) != int(recorded) || es[0].Seq != 1 {
		t.Errorf("%d events kept, first %d; want all %d", len(es), es[0].Seq, recorded)
	}
	if err := o.AddMetrics(snapshot(t, c.Now())); !errors.Is(err, outbox.ErrFull) {
		t.Errorf("AddMetrics when full of events: %v, want ErrFull", err)
	}
	checkAccounting(t, o)

	// Once central acks, delivered events make room, oldest first.
	if err := o.Ack(recorded / 2); err != nil {
		t.Fatal(err)
	}
	if o.NearFull() {
		t.Error("still near full after delivering half")
	}
	for range 5 {
		record(t, o, printed(1))
	}
	kept, err := o.Recent(outbox.MaxList)
	if err != nil {
		t.Fatal(err)
	}
	if first := kept[0].Seq; first <= 1 || first > recorded/2 {
		t.Errorf("oldest event kept: %d; want the oldest delivered dropped, none undelivered", first)
	}
	if last := kept[len(kept)-1].Seq; last != recorded+5 {
		t.Errorf("last event %d, want %d", last, recorded+5)
	}
	checkAccounting(t, o)
}
