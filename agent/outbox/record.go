package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
)

// Bounds of a valid timestamp in the wire contract: [minTime, maxTime).
var (
	minTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Record records e durably; it implements printq.Recorder. See RecordEvent.
func (o *Outbox) Record(e api.Event) error {
	_, err := o.RecordEvent(e)
	return err
}

// RecordEvent assigns e its Seq (the next of this outbox, from 1, never
// reused), a new UUIDv7 ID and its Time (the clock, in UTC, truncated to the
// millisecond), whatever e held there; validates it against the contract;
// and commits it, with the day's counters, in one transaction that is on
// disk when RecordEvent returns the event as recorded. An event the contract
// refuses fails with an error matching api.ErrInvalid, and one that does not
// fit beside the undelivered events with ErrFull; either way nothing is
// stored and no seq is consumed.
//
// Within one process, IDs increase with Seq: both are assigned in the same
// serialised transaction and uuid.NewV7 is monotonic.
func (o *Outbox) RecordEvent(e api.Event) (api.Event, error) {
	err := o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		e.Time = o.stamp(st)
		var err error
		e, err = o.appendEvent(ctx, tx, st, e)
		return err
	})
	if err != nil {
		return api.Event{}, err
	}
	return e, nil
}

// MaxKeyBytes bounds a RecordOnce key.
const MaxKeyBytes = 256

// RecordOnce records e as Record does, unless an event was recorded with
// the same key before, in which case it does nothing and returns nil: a
// caller that records an event and then notes that it did (a print job
// marking its usage event recorded) records it once even if it crashes
// between the two. Keys are kept as long as the outbox; the caller makes
// them unique, such as "print-job/" and the job's UUID.
func (o *Outbox) RecordOnce(key string, e api.Event) error {
	if key == "" || len(key) > MaxKeyBytes {
		return fmt.Errorf("outbox: a key has 1 to %d bytes", MaxKeyBytes)
	}
	return o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		var seq int64
		switch err := tx.QueryRowContext(ctx, "SELECT seq FROM recorded_keys WHERE key = ?", key).Scan(&seq); {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("outbox: %w", err)
		}
		e.Time = o.stamp(st)
		rec, err := o.appendEvent(ctx, tx, st, e)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO recorded_keys (key, seq) VALUES (?, ?)", key, rec.Seq); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		return nil
	})
}

// stamp returns the time for the next event: the clock in UTC, truncated to
// the millisecond. A clock outside the contract's range (a Pi without RTC
// before NTP sets it reads 1970) gives the time of the last event instead,
// or 2020-01-01T00:00:00Z if there is none, so that the event is kept
// rather than lost; a warning is logged once.
func (o *Outbox) stamp(st *state) time.Time {
	t := o.now().UTC().Truncate(time.Millisecond)
	if !t.Before(minTime) && t.Before(maxTime) {
		return t
	}
	o.clockBad.Do(func() {
		o.log.Warn("outbox: clock out of range, events get the time of the last one", "clock", t)
	})
	if st.lastMS > 0 {
		return time.UnixMilli(st.lastMS).UTC()
	}
	return minTime
}

// appendEvent gives e (whose Time is set) the next seq and a new ID,
// validates and stores it, and counts it; st is updated.
func (o *Outbox) appendEvent(ctx context.Context, tx *sql.Tx, st *state, e api.Event) (api.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return api.Event{}, fmt.Errorf("outbox: %w", err)
	}
	e.Seq = st.lastSeq + 1
	e.ID = id.String()
	body, err := api.Encode(e) // validates, bounds the size
	if err != nil {
		return api.Event{}, fmt.Errorf("outbox: %w", err)
	}
	size := int64(len(body)) + RowOverhead
	if err := o.makeRoom(ctx, tx, st, size, true); err != nil {
		return api.Event{}, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO events (seq, size, body) VALUES (?, ?, ?)",
		e.Seq, size, string(body)); err != nil {
		return api.Event{}, fmt.Errorf("outbox: %w", err)
	}
	if err := o.count(ctx, tx, e); err != nil {
		return api.Event{}, fmt.Errorf("outbox: %w", err)
	}
	st.lastSeq = e.Seq
	st.lastMS = e.Time.UnixMilli()
	st.pending += size
	return e, nil
}
