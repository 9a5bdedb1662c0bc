package outbox

import (
	"context"
	"fmt"
)

// Stats describes the outbox for the status page, `ctl` and metrics.
type Stats struct {
	Depth        uint64 // events not yet delivered
	FirstPending uint64 // seq of the oldest undelivered event; 0 if none
	LastSeq      uint64 // last seq assigned; 0 before the first event
	LastAck      uint64 // every seq up to it is delivered
	Metrics      int64  // metrics snapshots stored

	// Accounted sizes (payload length plus RowOverhead per row), which
	// MaxBytes bounds.
	PendingBytes   int64 // undelivered events
	DeliveredBytes int64 // delivered events kept for Recent
	MetricsBytes   int64 // metrics snapshots
	MaxBytes       int64

	// The database as SQLite sees it, committed pages still in the WAL
	// included: page_count and freelist_count times page_size.
	FileBytes int64
	FreeBytes int64
}

// UsedBytes is the accounted size that MaxBytes bounds.
func (s Stats) UsedBytes() int64 { return s.PendingBytes + s.DeliveredBytes + s.MetricsBytes }

// NearFull reports whether undelivered events hold more than
// NearFullPercent of MaxBytes: the agent then raises the fault
// "outbox-near-full" (device agent) before Record starts failing with
// ErrFull. Delivered events and metrics do not count, since they are
// dropped to make room.
func (s Stats) NearFull() bool { return s.PendingBytes*100 > s.MaxBytes*NearFullPercent }

// Stats returns the outbox's current figures, read in one snapshot.
func (o *Outbox) Stats() (Stats, error) {
	var st state
	var pages, free, size int64
	var s Stats
	err := o.db.QueryRowContext(context.Background(), "SELECT "+stateColumns+`,
		(SELECT count(*) FROM metrics), (SELECT page_count FROM pragma_page_count),
		(SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)
		FROM state WHERE id = 1`).Scan(&st.lastSeq, &st.lastAck, &st.lastMS, &st.pending, &st.delivered,
		&st.metrics, &s.Metrics, &pages, &free, &size)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox: %w", err)
	}
	s.Depth, s.LastSeq, s.LastAck = st.lastSeq-st.lastAck, st.lastSeq, st.lastAck
	if s.Depth > 0 {
		s.FirstPending = st.lastAck + 1
	}
	s.PendingBytes, s.DeliveredBytes, s.MetricsBytes, s.MaxBytes = st.pending, st.delivered, st.metrics, o.max
	s.FileBytes, s.FreeBytes = pages*size, free*size
	return s, nil
}

// NearFull reports Stats().NearFull(); it reports false if the figures
// cannot be read (the error is logged).
func (o *Outbox) NearFull() bool {
	s, err := o.Stats()
	if err != nil {
		o.log.Warn("outbox: reading stats", "err", err)
		return false
	}
	return s.NearFull()
}
