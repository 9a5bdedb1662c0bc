package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// MaxIngest is the most events one Ingest call takes: a few MQTT batches
// (api.MaxBatchEvents each) gathered into one transaction.
const MaxIngest = 4 * api.MaxBatchEvents

// insertChunk bounds the rows of one multi-row INSERT.
const insertChunk = 128

// Ingest implements Store.
//
// Events are unique by id within their agent: the same id from another
// agent is another event, so that no agent can turn another's events into
// duplicates. Within one call, an id given twice is inserted once.
//
// The watermark: the agent's row in agent_state holds upto (every seq of
// the current epoch up to it is committed) and the count of seqs
// committed beyond a gap, which wait in seq_pending. A call sorts the
// seqs it inserted, advances upto through those that follow it, files the
// others in seq_pending, and walks seq_pending only while it holds some:
// the work is proportional to the events inserted, never to the events
// stored. An inserted seq 1 while upto is 1 or more means the agent lost
// its outbox and numbers from 1 again: the epoch changes, upto restarts
// from 0 and the old epoch's pending seqs are forgotten (its events stay).
// Every event of such a call counts in the new epoch.
//
// Rollups: each inserted event adds to the usage of its site on its UTC
// date, in usage_day, usage_week and usage_month (see UsageRow):
// print.completed from a PC or a phone counts a print job and its pages;
// every print.completed and copy.completed counts its sheets (Sheets, or
// when absent one sheet per page, or per two pages when Duplex); print.failed
// counts a failed print; copy.completed a copy job and its pages;
// scan.completed a scan and its pages. wifi.daily is the whole count of one
// agent's day (its Day field): a later wifi.daily of the same agent and
// day, as an agent resends after a restart, replaces the earlier one
// rather than adding to it; the latest by ts wins.
func (s *db) Ingest(ctx context.Context, site, agent string, events []api.Event, at time.Time) (IngestResult, error) {
	if err := checkAgent(site, agent); err != nil {
		return IngestResult{}, err
	}
	if at.IsZero() {
		return IngestResult{}, fmt.Errorf("store: Ingest: zero time")
	}
	if len(events) > MaxIngest {
		return IngestResult{}, fmt.Errorf("store: Ingest: %d events, more than %d", len(events), MaxIngest)
	}
	// Validate and encode outside the transaction; keep the first of
	// each id.
	rows := make([]eventRow, 0, len(events))
	seen := make(map[string]bool, len(events))
	dups := 0
	for i, e := range events {
		if err := e.Validate(); err != nil {
			return IngestResult{}, fmt.Errorf("store: Ingest: event %d: %w", i, err)
		}
		if e.Seq > math.MaxInt64 {
			return IngestResult{}, fmt.Errorf("store: Ingest: event %d: seq above 2^63-1", i)
		}
		if seen[e.ID] {
			dups++
			continue
		}
		seen[e.ID] = true
		body, err := json.Marshal(e)
		if err != nil {
			return IngestResult{}, fmt.Errorf("store: Ingest: event %d: %w", i, err)
		}
		rows = append(rows, eventRow{e: e, body: string(body)})
	}
	var res IngestResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.ingest(ctx, tx, site, agent, rows, at)
		res.Duplicates += dups
		return err
	})
	return res, s.wrap("Ingest", err)
}

// eventRow is an event to insert and its JSON encoding.
type eventRow struct {
	e    api.Event
	body string
}

// ingest is Ingest's transaction.
func (s *db) ingest(ctx context.Context, tx *sql.Tx, site, agent string, rows []eventRow, at time.Time) (IngestResult, error) {
	// Lock the agent's row first: the calls of one agent run in turn.
	var upto, epoch, gaps int64
	err := tx.QueryRowContext(ctx, `INSERT INTO agent_state (site, agent, last_seen) VALUES ($1, $2, $3)
		ON CONFLICT (site, agent) DO UPDATE SET last_seen = `+latest("agent_state.last_seen", "excluded.last_seen")+`
		RETURNING upto, epoch, gaps`, site, agent, s.d.time(at)).Scan(&upto, &epoch, &gaps)
	if err != nil {
		return IngestResult{}, err
	}
	inserted, err := s.insertEvents(ctx, tx, site, agent, rows, at)
	if err != nil {
		return IngestResult{}, err
	}
	res := IngestResult{Inserted: len(inserted), Duplicates: len(rows) - len(inserted)}

	seqs := make([]int64, 0, len(inserted))
	for _, e := range inserted {
		seqs = append(seqs, int64(e.Seq))
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	if len(seqs) > 0 && seqs[0] == 1 && upto >= 1 {
		// The agent numbers from 1 again.
		epoch++
		upto = 0
		if gaps > 0 {
			if _, err := tx.ExecContext(ctx, "DELETE FROM seq_pending WHERE site = $1 AND agent = $2", site, agent); err != nil {
				return res, err
			}
			gaps = 0
		}
	}
	if upto, gaps, err = s.advance(ctx, tx, site, agent, seqs, upto, gaps); err != nil {
		return res, err
	}
	if err := s.addUsage(ctx, tx, site, agent, inserted); err != nil {
		return res, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE agent_state SET upto = $3, epoch = $4, gaps = $5, events = events + $6
		WHERE site = $1 AND agent = $2`, site, agent, upto, epoch, gaps, len(inserted))
	res.Upto = uint64(upto)
	return res, err
}

// latest is the SQL for the later of two nullable times, portable between
// the backends (SQLite's max and PostgreSQL's GREATEST treat NULL apart).
func latest(old, new string) string {
	return fmt.Sprintf("CASE WHEN %[1]s IS NULL OR %[1]s < %[2]s THEN %[2]s ELSE %[1]s END", old, new)
}

// insertEvents inserts rows, skipping the ids stored already, and returns
// the events inserted.
func (s *db) insertEvents(ctx context.Context, tx *sql.Tx, site, agent string, rows []eventRow, at time.Time) ([]api.Event, error) {
	var inserted []api.Event
	for chunk := range slices.Chunk(rows, insertChunk) {
		var q strings.Builder
		q.WriteString("INSERT INTO events (site, agent, received, id, seq, ts, type, body) VALUES ")
		p := s.params()
		byID := make(map[string]api.Event, len(chunk))
		for i, r := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(p.list(site, agent, s.d.time(at), r.e.ID, int64(r.e.Seq), s.d.time(r.e.Time), string(r.e.Type), r.body))
			byID[r.e.ID] = r.e
		}
		q.WriteString(" ON CONFLICT (site, agent, id) DO NOTHING RETURNING id")
		res, err := tx.QueryContext(ctx, q.String(), p.args...)
		if err != nil {
			return nil, err
		}
		for res.Next() {
			var id string
			if err := res.Scan(&id); err != nil {
				res.Close()
				return nil, err
			}
			inserted = append(inserted, byID[id])
		}
		if err := res.Close(); err != nil {
			return nil, err
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// advance moves the watermark upto through seqs (sorted, unique, newly
// committed), files the seqs beyond a gap in seq_pending, and walks
// seq_pending while it holds seqs (gaps counts them). It returns the new
// upto and gaps.
func (s *db) advance(ctx context.Context, tx *sql.Tx, site, agent string, seqs []int64, upto, gaps int64) (int64, int64, error) {
	var ahead []int64
	for _, q := range seqs {
		switch {
		case q <= upto: // a late event of an old epoch, or a seq reused
		case q == upto+1:
			upto = q
		default:
			ahead = append(ahead, q)
		}
	}
	for chunk := range slices.Chunk(ahead, insertChunk) {
		p := s.params()
		var q strings.Builder
		q.WriteString("INSERT INTO seq_pending (site, agent, seq) VALUES ")
		for i, seq := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(p.list(site, agent, seq))
		}
		q.WriteString(" ON CONFLICT (site, agent, seq) DO NOTHING")
		n, err := affected(tx.ExecContext(ctx, q.String(), p.args...))
		if err != nil {
			return 0, 0, err
		}
		gaps += n
	}
	if gaps == 0 {
		return upto, 0, nil
	}
	// Walk the pending seqs that follow upto, a page at a time.
	const page = 256
	for {
		pending, err := s.pendingAfter(ctx, tx, site, agent, upto, page)
		if err != nil {
			return 0, 0, err
		}
		run := 0
		for _, q := range pending {
			if q != upto+1 {
				break
			}
			upto = q
			run++
		}
		if run < page {
			break
		}
	}
	n, err := affected(tx.ExecContext(ctx, "DELETE FROM seq_pending WHERE site = $1 AND agent = $2 AND seq <= $3", site, agent, upto))
	if err != nil {
		return 0, 0, err
	}
	return upto, gaps - n, nil
}

// pendingAfter returns at most limit pending seqs above upto, in order.
func (s *db) pendingAfter(ctx context.Context, tx *sql.Tx, site, agent string, upto int64, limit int) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq FROM seq_pending WHERE site = $1 AND agent = $2 AND seq > $3
		ORDER BY seq LIMIT $4`, site, agent, upto, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var q int64
		if err := rows.Scan(&q); err != nil {
			return nil, err
		}
		seqs = append(seqs, q)
	}
	return seqs, rows.Err()
}

// counts are the usage counters of one rollup row, in the order of
// usageColumns.
type counts [9]int64

// usageColumns are the counter columns of the rollup tables.
var usageColumns = []string{"print_jobs", "pages", "sheets", "copy_jobs", "copy_pages", "scans", "scan_pages", "failed_prints", "wifi_visitors"}

// Indexes into counts.
const (
	cPrintJobs = iota
	cPages
	cSheets
	cCopyJobs
	cCopyPages
	cScans
	cScanPages
	cFailedPrints
	cWiFiVisitors
)

func (c *counts) add(o counts) {
	for i := range c {
		c[i] += o[i]
	}
}

func (c counts) zero() bool { return c == counts{} }

// row is c as a UsageRow.
func (c counts) row(site string, start day) UsageRow {
	return UsageRow{
		Site: site, Start: start.time(),
		PrintJobs: c[cPrintJobs], Pages: c[cPages], Sheets: c[cSheets],
		CopyJobs: c[cCopyJobs], CopyPages: c[cCopyPages],
		Scans: c[cScans], ScanPages: c[cScanPages],
		FailedPrints: c[cFailedPrints], WiFiVisitors: c[cWiFiVisitors],
	}
}

// eventCounts is what one event other than wifi.daily adds to its day.
func eventCounts(e api.Event) counts {
	var c counts
	pages := int64(0)
	if e.Pages != nil {
		pages = int64(*e.Pages)
	}
	switch e.Type {
	case api.EventPrintCompleted:
		if e.Source == api.SourcePC || e.Source == api.SourcePhone {
			c[cPrintJobs] = 1
			c[cPages] = pages
		}
		c[cSheets] = sheets(e, pages)
	case api.EventPrintFailed:
		c[cFailedPrints] = 1
	case api.EventCopyCompleted:
		c[cCopyJobs] = 1
		c[cCopyPages] = pages
		c[cSheets] = sheets(e, pages)
	case api.EventScanCompleted:
		c[cScans] = 1
		c[cScanPages] = pages
	}
	return c
}

// sheets is the paper a print or copy used: Sheets when reported, else
// one sheet per impression, or per two when printed on both sides.
func sheets(e api.Event, pages int64) int64 {
	switch {
	case e.Sheets != nil:
		return int64(*e.Sheets)
	case e.Duplex != nil && *e.Duplex:
		return (pages + 1) / 2
	}
	return pages
}

// Rollup tables, finest first, with the start of the period a day is in.
var rollups = []struct {
	table string
	start func(day) day
}{
	{"usage_day", func(d day) day { return d }},
	{"usage_week", day.weekStart},
	{"usage_month", day.monthStart},
}

// upsertSQL[i] adds a row's counters to rollups[i].
var upsertSQL = func() []string {
	var qs []string
	for _, r := range rollups {
		var set []string
		for _, c := range usageColumns {
			set = append(set, fmt.Sprintf("%[1]s = %[2]s.%[1]s + excluded.%[1]s", c, r.table))
		}
		qs = append(qs, fmt.Sprintf("INSERT INTO %s (start, site, %s) VALUES %s ON CONFLICT (start, site) DO UPDATE SET %s",
			r.table, strings.Join(usageColumns, ", "), numbered(2+len(usageColumns)), strings.Join(set, ", ")))
	}
	return qs
}()

// addUsage adds the usage of the inserted events of one agent to the
// rollups of its site.
func (s *db) addUsage(ctx context.Context, tx *sql.Tx, site, agent string, events []api.Event) error {
	perDay := map[day]counts{}
	// The latest wifi.daily of each day in this call.
	wifi := map[day]api.Event{}
	for _, e := range events {
		if e.Type == api.EventWiFiDaily {
			d, err := parseDay(e.Day)
			if err != nil {
				return fmt.Errorf("wifi.daily day %q: %w", e.Day, err)
			}
			if w, ok := wifi[d]; !ok || !e.Time.Before(w.Time) {
				wifi[d] = e
			}
			continue
		}
		if c := eventCounts(e); !c.zero() {
			d := dayOf(e.Time.UTC())
			sum := perDay[d]
			sum.add(c)
			perDay[d] = sum
		}
	}
	for d, e := range wifi {
		delta, err := s.setVisitors(ctx, tx, site, agent, d, e)
		if err != nil {
			return err
		}
		if delta != 0 {
			sum := perDay[d]
			sum[cWiFiVisitors] += delta
			perDay[d] = sum
		}
	}
	if len(perDay) == 0 {
		return nil
	}
	// Update each table's rows in the order of their keys (start, site),
	// the same in every transaction: no two can deadlock.
	for i, r := range rollups {
		per := map[day]counts{}
		for d, c := range perDay {
			sum := per[r.start(d)]
			sum.add(c)
			per[r.start(d)] = sum
		}
		starts := make([]day, 0, len(per))
		for d := range per {
			starts = append(starts, d)
		}
		slices.Sort(starts)
		for _, d := range starts {
			c := per[d]
			if c.zero() {
				continue
			}
			args := []any{s.d.day(d), site}
			for _, v := range c {
				args = append(args, v)
			}
			if _, err := tx.ExecContext(ctx, upsertSQL[i], args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// setVisitors records the wifi.daily e of one agent's day d unless a
// later one is recorded, and returns the change of the day's visitors.
func (s *db) setVisitors(ctx context.Context, tx *sql.Tx, site, agent string, d day, e api.Event) (int64, error) {
	visitors := int64(*e.Visitors)
	var old int64
	var oldTS time.Time
	err := tx.QueryRowContext(ctx, "SELECT visitors, ts FROM wifi_daily WHERE site = $1 AND agent = $2 AND day = $3",
		site, agent, s.d.day(d)).Scan(&old, timeCol{&oldTS})
	switch {
	case err == sql.ErrNoRows:
		_, err = tx.ExecContext(ctx, "INSERT INTO wifi_daily (site, agent, day, visitors, ts) VALUES ($1, $2, $3, $4, $5)",
			site, agent, s.d.day(d), visitors, s.d.time(e.Time))
		return visitors, err
	case err != nil:
		return 0, err
	case micro(e.Time).Before(oldTS):
		return 0, nil
	}
	_, err = tx.ExecContext(ctx, "UPDATE wifi_daily SET visitors = $4, ts = $5 WHERE site = $1 AND agent = $2 AND day = $3",
		site, agent, s.d.day(d), visitors, s.d.time(e.Time))
	return visitors - old, err
}
