package outbox_test

import (
	"errors"
	"testing"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

func seqs(es []api.Event) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

func wantSeqs(t *testing.T, what string, es []api.Event, err error, from, to uint64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got := seqs(es)
	ok := len(got) == int(to-from+1)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i] == from+uint64(i)
	}
	if to < from {
		ok = len(got) == 0
	}
	if !ok {
		t.Errorf("%s: seqs %v, want %d..%d", what, got, from, to)
	}
}

func TestPendingAndAck(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{})
	for range 10 {
		record(t, o, printed(1))
	}
	es, err := o.Pending(0, 3)
	wantSeqs(t, "Pending(0, 3)", es, err, 1, 3)
	es, err = o.Pending(3, 100)
	wantSeqs(t, "Pending(3, 100)", es, err, 4, 10)
	es, err = o.Pending(0, 0)
	wantSeqs(t, "Pending(0, 0)", es, err, 1, 0)
	es, err = o.Pending(0, -1)
	wantSeqs(t, "Pending(0, -1)", es, err, 1, 0)
	es, err = o.Pending(10, 100)
	wantSeqs(t, "Pending(10, 100)", es, err, 1, 0)
	for _, e := range es {
		if err := e.Validate(); err != nil {
			t.Errorf("pending event %d: %v", e.Seq, err)
		}
	}

	if err := o.Ack(4); err != nil {
		t.Fatal(err)
	}
	es, err = o.Pending(0, 100)
	wantSeqs(t, "Pending(0, 100) after Ack(4)", es, err, 5, 10)
	es, err = o.Pending(6, 100)
	wantSeqs(t, "Pending(6, 100) after Ack(4)", es, err, 7, 10)
	want := outbox.Stats{Depth: 6, FirstPending: 5, LastSeq: 10, LastAck: 4}
	if s := stats(t, o); s.Depth != want.Depth || s.FirstPending != want.FirstPending ||
		s.LastSeq != want.LastSeq || s.LastAck != want.LastAck {
		t.Errorf("stats %+v, want %+v", s, want)
	}

	// Acks are idempotent, and an old ack does not go back.
	for _, upto := range []uint64{0, 2, 4} {
		if err := o.Ack(upto); err != nil {
			t.Errorf("Ack(%d) after Ack(4): %v", upto, err)
		}
	}
	// An ack beyond the last seq is refused and changes nothing.
	if err := o.Ack(11); !errors.Is(err, outbox.ErrAckBeyond) {
		t.Errorf("Ack(11) with last seq 10: %v, want ErrAckBeyond", err)
	}
	if s := stats(t, o); s.LastAck != 4 {
		t.Errorf("last ack %d after refused Ack(11), want 4", s.LastAck)
	}
	checkAccounting(t, o)

	if err := o.Ack(10); err != nil {
		t.Fatal(err)
	}
	es, err = o.Pending(0, 100)
	wantSeqs(t, "Pending after Ack(10)", es, err, 1, 0)
	if s := stats(t, o); s.Depth != 0 || s.FirstPending != 0 || s.PendingBytes != 0 || s.DeliveredBytes == 0 {
		t.Errorf("stats after acking everything: %+v", s)
	}
	checkAccounting(t, o)
}

func TestRecentKeepsDeliveredHistory(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{KeepDelivered: 3})
	for range 10 {
		record(t, o, printed(1))
	}
	es, err := o.Recent(4)
	wantSeqs(t, "Recent(4)", es, err, 7, 10)
	if err := o.Ack(10); err != nil {
		t.Fatal(err)
	}
	// Only the last 3 delivered events are kept.
	es, err = o.Recent(100)
	wantSeqs(t, "Recent(100) after Ack(10)", es, err, 8, 10)
	record(t, o, printed(1))
	es, err = o.Recent(2)
	wantSeqs(t, "Recent(2)", es, err, 10, 11)
	es, err = o.Recent(0)
	wantSeqs(t, "Recent(0)", es, err, 1, 0)
	checkAccounting(t, o)
}

func TestAckReturnsSpaceToTheFileSystem(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{KeepDelivered: -1})
	batch := make([]api.Event, 3000)
	for i := range batch {
		batch[i] = printed(1)
	}
	if err := o.RecordBatch(batch); err != nil {
		t.Fatal(err)
	}
	full := stats(t, o)
	if full.FileBytes < 512<<10 {
		t.Fatalf("3000 events take %d bytes, want at least 512 KiB for this test", full.FileBytes)
	}
	if err := o.Ack(full.LastSeq); err != nil {
		t.Fatal(err)
	}
	empty := stats(t, o)
	if empty.FileBytes > full.FileBytes/4 || empty.FreeBytes >= 256<<10 {
		t.Errorf("after delivering everything: file %d bytes (%d free), was %d", empty.FileBytes, empty.FreeBytes, full.FileBytes)
	}
	if e := record(t, o, printed(1)); e.Seq != full.LastSeq+1 {
		t.Errorf("next seq %d, want %d", e.Seq, full.LastSeq+1)
	}
	checkAccounting(t, o)
}
