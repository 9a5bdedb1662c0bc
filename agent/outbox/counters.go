package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Counter sums the events of one type over one local day.
type Counter struct {
	Count    int64 // events
	Pages    int64 // sum of pages (impressions printed, pages scanned)
	Sheets   int64 // sum of sheets
	Bytes    int64 // sum of document bytes
	Visitors int64 // sum of visitors (wifi.daily)
}

// Day returns the local day of t (YYYY-MM-DD) in the outbox's time zone.
func (o *Outbox) Day(t time.Time) string { return t.In(o.loc).Format(time.DateOnly) }

// Today returns the local day of the clock.
func (o *Outbox) Today() string { return o.Day(o.now()) }

// Counters returns the counters of a local day (YYYY-MM-DD) by event type;
// types without events that day are absent. An event counts on the local
// day of its Time, in Options.Location, except wifi.daily which counts on
// the day it describes (its Day). Counters of the last CounterDays days
// are kept.
func (o *Outbox) Counters(day string) (map[api.EventType]Counter, error) {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, fmt.Errorf("outbox: bad day %q, want YYYY-MM-DD", day)
	}
	rows, err := o.db.QueryContext(context.Background(),
		"SELECT type, count, pages, sheets, bytes, visitors FROM counters WHERE day = ?", day)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	cs := map[api.EventType]Counter{}
	for rows.Next() {
		var t string
		var c Counter
		if err := rows.Scan(&t, &c.Count, &c.Pages, &c.Sheets, &c.Bytes, &c.Visitors); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		cs[api.EventType(t)] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return cs, nil
}

// count adds e to its day's counters and forgets days older than
// CounterDays before the event's.
func (o *Outbox) count(ctx context.Context, tx *sql.Tx, e api.Event) error {
	local := e.Time.In(o.loc)
	day := local.Format(time.DateOnly)
	if e.Type == api.EventWiFiDaily {
		day = e.Day
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO counters (day, type, count, pages, sheets, bytes, visitors)
		VALUES (?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (day, type) DO UPDATE SET count = count + 1, pages = pages + excluded.pages,
			sheets = sheets + excluded.sheets, bytes = bytes + excluded.bytes,
			visitors = visitors + excluded.visitors`,
		day, string(e.Type), deref(e.Pages), deref(e.Sheets), deref(e.Bytes), deref(e.Visitors))
	if err != nil {
		return err
	}
	oldest := local.AddDate(0, 0, -CounterDays).Format(time.DateOnly)
	_, err = tx.ExecContext(ctx, "DELETE FROM counters WHERE day < ?", oldest)
	return err
}

func deref[T int | int64](p *T) int64 {
	if p == nil {
		return 0
	}
	return int64(*p)
}
