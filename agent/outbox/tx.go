package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// state is the single row of the state table.
type state struct {
	lastSeq, lastAck uint64
	lastMS           int64
	pending          int64 // accounted bytes of undelivered events
	delivered        int64 // of delivered events kept for Recent
	metrics          int64 // of metrics snapshots
}

func (s state) used() int64 { return s.pending + s.delivered + s.metrics }

const stateColumns = "last_seq, last_ack, last_ms, pending_bytes, delivered_bytes, metrics_bytes"

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadState(ctx context.Context, q queryer) (state, error) {
	var s state
	err := q.QueryRowContext(ctx, "SELECT "+stateColumns+" FROM state WHERE id = 1").
		Scan(&s.lastSeq, &s.lastAck, &s.lastMS, &s.pending, &s.delivered, &s.metrics)
	return s, err
}

func saveState(ctx context.Context, tx *sql.Tx, s state) error {
	_, err := tx.ExecContext(ctx, `UPDATE state SET last_seq = ?, last_ack = ?, last_ms = ?,
		pending_bytes = ?, delivered_bytes = ?, metrics_bytes = ? WHERE id = 1`,
		s.lastSeq, s.lastAck, s.lastMS, s.pending, s.delivered, s.metrics)
	return err
}

// errNoChange makes write roll back and return nil.
var errNoChange = errors.New("no change")

// write runs fn in one write transaction (BEGIN IMMEDIATE) with the current
// state, saves the state fn leaves and commits: with synchronous=FULL the
// commit has reached the disk when write returns nil. If fn fails, nothing
// is written.
func (o *Outbox) write(fn func(ctx context.Context, tx *sql.Tx, st *state) error) error {
	ctx := context.Background()
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer tx.Rollback()
	st, err := loadState(ctx, tx)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := fn(ctx, tx, &st); errors.Is(err, errNoChange) {
		return nil
	} else if err != nil {
		return err
	}
	if err := saveState(ctx, tx, st); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	return nil
}
