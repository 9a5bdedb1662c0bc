package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"

	"github.com/relais-fr/relais/central/api"
)

// Pending returns up to limit undelivered events with a seq above afterSeq,
// in seq order; limit is capped at MaxList. The publisher passes the last
// seq it has sent, or 0 after a reconnect to resend everything unacked.
func (o *Outbox) Pending(afterSeq uint64, limit int) ([]api.Event, error) {
	return o.events(`SELECT body FROM events
		WHERE seq > max(?, (SELECT last_ack FROM state WHERE id = 1)) ORDER BY seq LIMIT ?`,
		afterSeq, clampList(limit))
}

// Recent returns the last n events recorded (n capped at MaxList), delivered
// or not, in seq order: for `ctl queue` and status pages. Seqs up to
// Stats().LastAck are delivered. Delivered events are kept only up to
// Options.KeepDelivered, and dropped first when space is needed.
func (o *Outbox) Recent(n int) ([]api.Event, error) {
	return o.events(`SELECT body FROM (SELECT seq, body FROM events ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
		clampList(n))
}

func (o *Outbox) events(query string, args ...any) ([]api.Event, error) {
	rows, err := o.db.QueryContext(context.Background(), query, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var es []api.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		var e api.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("outbox: stored event: %w", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return es, nil
}

func clampList(n int) int { return max(0, min(n, MaxList)) }

// Ack marks every event with a seq up to upto as delivered, as central's
// {"upto":N} says. It is idempotent: an ack at or below the last one does
// nothing. An ack beyond the last seq assigned is refused with ErrAckBeyond
// and changes nothing: it means central counts seqs this outbox never gave
// (a reset or restored outbox, or another agent under the same name), and
// clamping it would mark events as delivered that central never received.
// Delivered events beyond the last Options.KeepDelivered are deleted, and
// freed pages are returned to the file system when they are many.
func (o *Outbox) Ack(upto uint64) error {
	err := o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		if upto <= st.lastAck {
			return errNoChange
		}
		if upto > st.lastSeq {
			return fmt.Errorf("%w: ack %d, last seq %d", ErrAckBeyond, upto, st.lastSeq)
		}
		var moved int64
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(sum(size), 0) FROM events WHERE seq > ? AND seq <= ?",
			st.lastAck, upto).Scan(&moved); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		st.pending -= moved
		st.delivered += moved
		st.lastAck = upto
		if upto <= o.keep {
			return nil
		}
		freed, _, err := dropOldest(ctx, tx, "events", "seq", int64(upto-o.keep), math.MaxInt64)
		st.delivered -= freed
		return err
	})
	if err != nil {
		return err
	}
	if err := o.vacuum(); err != nil {
		o.log.Warn("outbox: vacuum failed", "err", err) // the ack itself is committed
	}
	return nil
}

// vacuumMinBytes is how much free space vacuum leaves in the file.
const vacuumMinBytes = 256 << 10

// vacuum returns free pages to the file system (auto_vacuum=incremental)
// once they are more than vacuumMinBytes and a quarter of the file, so that
// the file shrinks back after a long offline period has been delivered.
func (o *Outbox) vacuum() error {
	s, err := o.Stats()
	if err != nil {
		return err
	}
	if s.FreeBytes < vacuumMinBytes || s.FreeBytes*4 < s.FileBytes {
		return nil
	}
	if _, err := o.db.ExecContext(context.Background(), "PRAGMA incremental_vacuum"); err != nil {
		return fmt.Errorf("outbox: vacuum: %w", err)
	}
	return nil
}
