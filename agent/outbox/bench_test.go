package outbox_test

import (
	"testing"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// BenchmarkRecord records one event per operation, each in its own
// transaction committed with synchronous=FULL (one WAL fsync) on the disk
// of the temporary directory.
func BenchmarkRecord(b *testing.B) {
	o, _ := open(b, nil, outbox.Options{})
	e := printed(2)
	for b.Loop() {
		if err := o.Record(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecordParallel records from many goroutines: commits are
// serialised on the one connection, so this measures the contention cost.
func BenchmarkRecordParallel(b *testing.B) {
	o, _ := open(b, nil, outbox.Options{})
	b.RunParallel(func(pb *testing.PB) {
		e := printed(2)
		for pb.Next() {
			if err := o.Record(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPendingAck measures what the publisher does per batch: read
// api.MaxBatchEvents pending events and ack them. The backlog is refilled,
// off the clock, in one transaction at a time.
func BenchmarkPendingAck(b *testing.B) {
	o, _ := open(b, nil, outbox.Options{})
	const batch = api.MaxBatchEvents
	fill := make([]api.Event, 16*batch)
	for i := range fill {
		fill[i] = printed(2)
	}
	var after uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if s := stats(b, o); s.Depth < batch {
			if err := o.RecordBatch(fill); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		es, err := o.Pending(after, batch)
		if err != nil || len(es) != batch {
			b.Fatalf("Pending: %d events, %v", len(es), err)
		}
		after = es[len(es)-1].Seq
		if err := o.Ack(after); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
