package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/relais-fr/relais/central/api"
)

// Metric is a stored metrics snapshot.
type Metric struct {
	ID      int64  // increasing, never reused
	Payload []byte // as given to AddMetrics
}

// AddMetrics stores a metrics snapshot (the JSON payload of the metrics
// topic, valid under api.DecodeMetrics) until AckMetrics. When space is
// needed, delivered events are dropped first, then the oldest snapshots;
// if undelivered events leave no room, the snapshot is refused with
// ErrFull.
func (o *Outbox) AddMetrics(payload []byte) error {
	if _, err := api.DecodeMetrics(payload); err != nil {
		return fmt.Errorf("outbox: metrics: %w", err)
	}
	return o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		size := int64(len(payload)) + RowOverhead
		if err := o.makeRoom(ctx, tx, st, size, false); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO metrics (size, body) VALUES (?, ?)", size, payload); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		st.metrics += size
		return nil
	})
}

// PendingMetrics returns up to limit (capped at MaxList) stored snapshots
// with an ID above afterID, oldest first.
func (o *Outbox) PendingMetrics(afterID int64, limit int) ([]Metric, error) {
	rows, err := o.db.QueryContext(context.Background(),
		"SELECT id, body FROM metrics WHERE id > ? ORDER BY id LIMIT ?", afterID, clampList(limit))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var ms []Metric
	for rows.Next() {
		var m Metric
		if err := rows.Scan(&m.ID, &m.Payload); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return ms, nil
}

// AckMetrics deletes the snapshots with an ID up to upto. Metrics travel at
// QoS 0 and central does not ack them: the publisher calls AckMetrics once
// it has handed them to the client.
func (o *Outbox) AckMetrics(upto int64) error {
	err := o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		freed, n, err := dropOldest(ctx, tx, "metrics", "id", upto, math.MaxInt64)
		if err == nil && n == 0 {
			return errNoChange
		}
		st.metrics -= freed
		return err
	})
	if err != nil {
		return err
	}
	if err := o.vacuum(); err != nil {
		o.log.Warn("outbox: vacuum failed", "err", err)
	}
	return nil
}

// makeRoom makes the accounted size of st fit MaxBytes once need more bytes
// are stored: it drops delivered events, oldest first, then metrics
// snapshots, oldest first, and never an undelivered event. It fails with
// ErrFull, having dropped nothing, if undelivered events leave no room.
func (o *Outbox) makeRoom(ctx context.Context, tx *sql.Tx, st *state, need int64, event bool) error {
	excess := st.used() + need - o.max
	if excess <= 0 {
		return nil
	}
	if st.pending+need > o.max {
		what := "metrics snapshot"
		if event {
			what = "event"
		}
		return fmt.Errorf("%w: %s of %d bytes, undelivered events hold %d of %d",
			ErrFull, what, need, st.pending, o.max)
	}
	freed, _, err := dropOldest(ctx, tx, "events", "seq", int64(st.lastAck), excess)
	if err != nil {
		return err
	}
	st.delivered -= freed
	excess -= freed
	if excess <= 0 {
		return nil
	}
	freed, n, err := dropOldest(ctx, tx, "metrics", "id", math.MaxInt64, excess)
	if err != nil {
		return err
	}
	st.metrics -= freed
	if n > 0 {
		o.log.Warn("outbox: size bound reached, dropped the oldest metrics snapshots", "count", n, "bytes", freed)
	}
	return nil
}

// dropOldest deletes the oldest rows of table whose key is up to upto,
// until their accounted size reaches want, and returns the size freed and
// the number of rows deleted. table and key are constants of this package.
func dropOldest(ctx context.Context, tx *sql.Tx, table, key string, upto, want int64) (freed int64, n int, err error) {
	rows, err := tx.QueryContext(ctx,
		fmt.Sprintf("SELECT %s, size FROM %s WHERE %s <= ? ORDER BY %s", key, table, key, key), upto)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: %w", err)
	}
	var last int64
	for freed < want && rows.Next() {
		var size int64
		if err := rows.Scan(&last, &size); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("outbox: %w", err)
		}
		freed += size
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("outbox: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s <= ?", table, key), last); err != nil {
		return 0, 0, fmt.Errorf("outbox: %w", err)
	}
	return freed, n, nil
}
