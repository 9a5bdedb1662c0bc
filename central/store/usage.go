package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/relais-fr/relais/central/api"
)

// Usage query limits.
const (
	// MaxUsageDays bounds the days From to To of a usage query: ten years.
	MaxUsageDays = 3653
	// MaxUsageSites bounds the sites a usage query names.
	MaxUsageSites = 5000
)

// Usage implements Store. Rows come ordered by Start, then Site, and only
// for the periods and sites with some usage. A period cut by From or To
// counts only its days within them, and still starts on its first day.
//
// Ingest keeps one rollup table per period (day, week, month), so that a
// query reads one row per site and period: whole periods come from their
// table, and the days of a period cut by From or To from the day table.
func (s *db) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	if q.From.IsZero() || q.To.IsZero() {
		return nil, fmt.Errorf("store: Usage: From and To are required")
	}
	from, to := dayOf(q.From), dayOf(q.To)
	if from > to {
		return nil, fmt.Errorf("store: Usage: From %s is after To %s", from, to)
	}
	if to-from >= MaxUsageDays {
		return nil, fmt.Errorf("store: Usage: %d days, more than %d", to-from+1, MaxUsageDays)
	}
	if len(q.Sites) > MaxUsageSites {
		return nil, fmt.Errorf("store: Usage: %d sites, more than %d", len(q.Sites), MaxUsageSites)
	}
	for _, site := range q.Sites {
		if !api.ValidID(site) {
			return nil, fmt.Errorf("store: Usage: bad site id %q", clip(site))
		}
	}
	var p int // index into rollups
	switch q.Period {
	case Day:
		p = 0
	case Week:
		p = 1
	case Month:
		p = 2
	default:
		return nil, fmt.Errorf("store: Usage: unknown period %q: want day, week or month", q.Period)
	}
	start := rollups[p].start
	// end is the last day of d's period.
	end := func(d day) day {
		switch p {
		case 1:
			return d.weekStart() + 6
		case 2:
			return (d.monthStart() + 31).monthStart() - 1
		}
		return d
	}
	var out []UsageRow
	if p == 0 || start(from) == start(to) && (start(from) != from || end(to) != to) {
		// Days, or a part of one period.
		if p == 0 {
			return s.usageWhole(ctx, "usage_day", from, to, q.Sites, out)
		}
		return s.usagePart(ctx, from, to, start(from), q.Sites, out)
	}
	// The head and tail periods cut by From and To, and the whole ones
	// between.
	first, last := from, to
	var err error
	if start(from) != from {
		if out, err = s.usagePart(ctx, from, end(from), start(from), q.Sites, out); err != nil {
			return nil, err
		}
		first = end(from) + 1
	}
	if end(to) != to {
		last = start(to) - 1
	}
	if first <= last {
		if out, err = s.usageWhole(ctx, rollups[p].table, first, start(last), q.Sites, out); err != nil {
			return nil, err
		}
	}
	if end(to) != to {
		if out, err = s.usagePart(ctx, start(to), to, start(to), q.Sites, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// usageWhere is "WHERE start BETWEEN first AND last", and "AND site IN
// (sites...)" unless sites is empty.
func (s *db) usageWhere(first, last day, sites []string) (string, []any) {
	p := s.params()
	w := " WHERE start BETWEEN " + p.add(s.d.day(first)) + " AND " + p.add(s.d.day(last))
	if len(sites) > 0 {
		vs := make([]any, len(sites))
		for i, site := range sites {
			vs[i] = site
		}
		w += " AND site IN " + p.list(vs...)
	}
	return w, p.args
}

var usageSum = func() string {
	var s []string
	for _, c := range usageColumns {
		s = append(s, "CAST(SUM("+c+") AS BIGINT)")
	}
	return strings.Join(s, ", ")
}()

// usageWhole appends the rows of table whose start is within [first, last].
func (s *db) usageWhole(ctx context.Context, table string, first, last day, sites []string, out []UsageRow) ([]UsageRow, error) {
	where, args := s.usageWhere(first, last, sites)
	rows, err := s.r.QueryContext(ctx, "SELECT start, site, "+strings.Join(usageColumns, ", ")+
		" FROM "+table+where+" ORDER BY start, site", args...)
	if err != nil {
		return nil, s.wrap("Usage", err)
	}
	return s.scanUsage(rows, true, 0, out)
}

// usagePart appends the sums over the days first to last of each site, as
// the rows of the period that starts on start.
func (s *db) usagePart(ctx context.Context, first, last, start day, sites []string, out []UsageRow) ([]UsageRow, error) {
	where, args := s.usageWhere(first, last, sites)
	rows, err := s.r.QueryContext(ctx, "SELECT site, "+usageSum+
		" FROM usage_day"+where+" GROUP BY site ORDER BY site", args...)
	if err != nil {
		return nil, s.wrap("Usage", err)
	}
	return s.scanUsage(rows, false, start, out)
}

// scanUsage appends the rows: start, site and counters when withStart,
// else site and counters, as the rows of the period that starts on start.
func (s *db) scanUsage(rows *sql.Rows, withStart bool, start day, out []UsageRow) ([]UsageRow, error) {
	defer rows.Close()
	var site string
	var c counts
	var d day
	dest := []any{&site}
	for i := range c {
		dest = append(dest, &c[i])
	}
	if withStart {
		dest = append([]any{dayCol{&d}}, dest...)
	} else {
		d = start
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, s.wrap("Usage", err)
		}
		out = append(out, c.row(site, d))
	}
	return out, s.wrap("Usage", rows.Err())
}
