package outbox

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/relais-fr/relais/central/api"
)

// RecordBatch records es in one transaction through the same path as
// RecordEvent: benchmarks and tests use it to fill an outbox quickly.
func (o *Outbox) RecordBatch(es []api.Event) error {
	return o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		for _, e := range es {
			e.Time = o.stamp(st)
			if _, err := o.appendEvent(ctx, tx, st, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pragma returns the value of a pragma on the outbox's own connection.
func (o *Outbox) Pragma(name string) (string, error) {
	var v string
	err := o.db.QueryRow("PRAGMA " + name).Scan(&v)
	return v, err
}

// CheckAccounting recomputes the accounted sizes from the rows and
// compares them with the state row.
func (o *Outbox) CheckAccounting() error {
	st, err := loadState(context.Background(), o.db)
	if err != nil {
		return err
	}
	var pending, delivered, metrics, rows int64
	err = o.db.QueryRow(`SELECT
		(SELECT coalesce(sum(size), 0) FROM events WHERE seq > ?),
		(SELECT coalesce(sum(size), 0) FROM events WHERE seq <= ?),
		(SELECT coalesce(sum(size), 0) FROM metrics),
		(SELECT count(*) FROM events WHERE seq > ?)`, st.lastAck, st.lastAck, st.lastAck).
		Scan(&pending, &delivered, &metrics, &rows)
	if err != nil {
		return err
	}
	if pending != st.pending || delivered != st.delivered || metrics != st.metrics {
		return fmt.Errorf("accounted pending/delivered/metrics %d/%d/%d, rows hold %d/%d/%d",
			st.pending, st.delivered, st.metrics, pending, delivered, metrics)
	}
	if uint64(rows) != st.lastSeq-st.lastAck {
		return fmt.Errorf("%d undelivered rows, want %d", rows, st.lastSeq-st.lastAck)
	}
	if u := st.used(); u > o.max {
		return fmt.Errorf("used %d > max %d", u, o.max)
	}
	return nil
}
