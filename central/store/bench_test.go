package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// Benchmark scale: a fleet of benchSites sites with usage every day of
// benchDays days from benchFirst.
const (
	benchSites = 1000
	benchDays  = 365
)

var benchFirst = date(2025, 1, 1)

// benchCounts is the synthetic usage of site i on day d.
func benchCounts(i int, d day) counts {
	n := int64(i*31+int(d)*7) % 97
	return counts{n/3 + 1, n, n - n/4, n / 10, n / 5, n / 8, n / 4, n / 30, n / 2}
}

// fillUsage writes the rollups of sites × days, as ingest would have left
// them, straight into the three rollup tables: one transaction, multi-row
// INSERTs.
func fillUsage(ctx context.Context, s Store, sites, days int, first time.Time) error {
	d := s.(*db)
	tables := make([]map[[2]int64]counts, len(rollups))
	for i := range tables {
		tables[i] = map[[2]int64]counts{}
	}
	for i := range sites {
		for k := range days {
			dd := dayOf(first) + day(k)
			c := benchCounts(i, dd)
			for t, r := range rollups {
				key := [2]int64{int64(r.start(dd)), int64(i)}
				sum := tables[t][key]
				sum.add(c)
				tables[t][key] = sum
			}
		}
	}
	return d.tx(ctx, func(tx *sql.Tx) error {
		for t, r := range rollups {
			keys := make([][2]int64, 0, len(tables[t]))
			for k := range tables[t] {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(a, b [2]int64) int {
				if a[0] != b[0] {
					return int(a[0] - b[0])
				}
				return int(a[1] - b[1])
			})
			for chunk := range slices.Chunk(keys, 500) {
				var q strings.Builder
				fmt.Fprintf(&q, "INSERT INTO %s (start, site, %s) VALUES ", r.table, strings.Join(usageColumns, ", "))
				p := d.params()
				for j, k := range chunk {
					if j > 0 {
						q.WriteString(", ")
					}
					vs := []any{d.d.day(day(k[0])), benchSite(int(k[1]))}
					for _, v := range tables[t][k] {
						vs = append(vs, v)
					}
					q.WriteString(p.list(vs...))
				}
				if _, err := tx.ExecContext(ctx, q.String(), p.args...); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func benchSite(i int) string { return fmt.Sprintf("site-%04d", i) }

// usageTimes runs q n times and returns the sorted durations.
func usageTimes(tb testing.TB, s Store, q UsageQuery, n, wantRows int) []time.Duration {
	tb.Helper()
	var ds []time.Duration
	for range n {
		start := time.Now()
		rows, err := s.Usage(context.Background(), q)
		ds = append(ds, time.Since(start))
		if err != nil {
			tb.Fatal(err)
		}
		if len(rows) != wantRows {
			tb.Fatalf("Usage %s: %d rows, want %d", q.Period, len(rows), wantRows)
		}
	}
	slices.Sort(ds)
	return ds
}

// quantile is the q-quantile of sorted durations (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// BenchmarkUsage queries a year of 1000 sites on SQLite, by month, week
// and day.
func BenchmarkUsage(b *testing.B) {
	s, err := Open(context.Background(), "sqlite:bench.db", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := fillUsage(context.Background(), s, benchSites, benchDays, benchFirst); err != nil {
		b.Fatal(err)
	}
	last := benchFirst.AddDate(0, 0, benchDays-1)
	for _, p := range []Period{Month, Week, Day} {
		b.Run(string(p), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Usage(context.Background(), UsageQuery{From: benchFirst, To: last, Period: p}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIngest ingests batches of 64 print events of one agent on
// SQLite, each batch one transaction committed with synchronous=FULL.
func BenchmarkIngest(b *testing.B) {
	s, err := Open(context.Background(), "sqlite:bench.db", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 64
	var seq uint64
	at := t0
	for b.Loop() {
		es := make([]api.Event, batch)
		for i := range es {
			seq++
			es[i] = printed(seq, at.Add(time.Duration(seq)*time.Minute), 2, api.SourcePC)
		}
		r, err := s.Ingest(context.Background(), "site", "agent", es, at)
		if err != nil || r.Upto != seq {
			b.Fatalf("Ingest: %+v, %v", r, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// TestBenchUsage measures the usage queries of the dashboard over a year of
// 1000 sites, on SQLite and on PostgreSQL, and prints p50 and p95. It runs
// with RELAIS_BENCH=1 only (make bench).
func TestBenchUsage(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a load scenario: set RELAIS_BENCH=1 (make bench)")
	}
	ctx := context.Background()
	last := benchFirst.AddDate(0, 0, benchDays-1)
	weeks := int(dayOf(last).weekStart()-dayOf(benchFirst).weekStart())/7 + 1
	runs := map[Period]int{Month: 30, Week: 20, Day: 10}
	rows := map[Period]int{Month: 12 * benchSites, Week: weeks * benchSites, Day: benchDays * benchSites}
	backends := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"sqlite", openSQLiteTest},
		{"postgres", openPostgresTest},
	}
	results := map[string]map[Period][2]time.Duration{}
	for _, be := range backends {
		s := be.open(t)
		start := time.Now()
		if err := fillUsage(ctx, s, benchSites, benchDays, benchFirst); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d sites x %d days of rollups written in %v", be.name, benchSites, benchDays, time.Since(start).Round(time.Millisecond))
		results[be.name] = map[Period][2]time.Duration{}
		for _, p := range []Period{Month, Week, Day} {
			q := UsageQuery{From: benchFirst, To: last, Period: p}
			usageTimes(t, s, q, 2, rows[p]) // warm the caches
			ds := usageTimes(t, s, q, runs[p], rows[p])
			p50, p95 := quantile(ds, 0.5), quantile(ds, 0.95)
			results[be.name][p] = [2]time.Duration{p50, p95}
			fmt.Printf("usage query %d sites x %d days (%s): p50 %s p95 %s (%s, %d rows, %d runs)\n",
				benchSites, benchDays, p, ms(p50), ms(p95), be.name, rows[p], runs[p])
		}
		// One site over the year, as the site page asks.
		ds := usageTimes(t, s, UsageQuery{From: benchFirst, To: last, Period: Day, Sites: []string{benchSite(7)}}, 20, benchDays)
		fmt.Printf("usage query 1 site x %d days (day): p50 %s p95 %s (%s)\n", benchDays, ms(quantile(ds, 0.5)), ms(quantile(ds, 0.95)), be.name)
	}
	for _, p := range []Period{Month, Week, Day} {
		sq, pg := results["sqlite"][p], results["postgres"][p]
		peertest.BenchRow(t, fmt.Sprintf("usage %d sites x %d days by %s, p50/p95", benchSites, benchDays, p),
			ms(sq[0])+" / "+ms(sq[1]), "PostgreSQL 15 (same store)", ms(pg[0])+" / "+ms(pg[1]),
			fmt.Sprintf("%.2fx", float64(sq[0])/float64(pg[0])))
	}
}
