package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
)

// t0 is a Monday, 09:00 UTC.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// date is midnight UTC of a day.
func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ev is an event of type typ with a fresh id; set fills the type's fields.
func ev(seq uint64, at time.Time, typ api.EventType, set func(*api.Event)) api.Event {
	e := api.Event{Seq: seq, ID: newID(), Time: at, Type: typ}
	if set != nil {
		set(&e)
	}
	return e
}

func printed(seq uint64, at time.Time, pages int, src api.Source) api.Event {
	return ev(seq, at, api.EventPrintCompleted, func(e *api.Event) { e.Pages, e.Source = new(pages), src })
}

func button(seq uint64, at time.Time) api.Event {
	return ev(seq, at, api.EventButtonPressed, func(e *api.Event) { e.Gesture = api.GestureShort })
}

func wifiDaily(seq uint64, at time.Time, d string, visitors int) api.Event {
	return ev(seq, at, api.EventWiFiDaily, func(e *api.Event) { e.Day, e.Visitors = d, new(visitors) })
}

// buttons returns events seq from..to, one a minute from t0.
func buttons(from, to uint64) []api.Event {
	var es []api.Event
	for s := from; s <= to; s++ {
		es = append(es, button(s, t0.Add(time.Duration(s)*time.Minute)))
	}
	return es
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// testStore is the conformance suite that every backend passes; open
// returns a new, empty store that the test closes.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s Store)
	}{
		{"Agents", testAgents},
		{"IngestIdempotent", testIngestIdempotent},
		{"IngestOutOfOrder", testIngestOutOfOrder},
		{"IngestSeqRestart", testIngestSeqRestart},
		{"IngestRejects", testIngestRejects},
		{"IngestWatermarkProperty", testWatermarkProperty},
		{"IngestConcurrent", testIngestConcurrent},
		{"UsageRollups", testUsageRollups},
		{"UsagePeriods", testUsagePeriods},
		{"UsageWiFi", testUsageWiFi},
		{"UsageRejects", testUsageRejects},
		{"StatusFaults", testStatusFaults},
		{"Metrics", testMetrics},
		{"Commands", testCommands},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"Tokens", testTokens},
		{"Incidents", testIncidents},
		{"Rejections", testRejections},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			tc.f(t, s)
		})
	}
}

func testAgents(t *testing.T, s Store) {
	ctx := t.Context()
	a := Agent{Site: "mairie", Agent: "pi-1", SecretHash: []byte("hash-1"), Created: t0.Add(123456789 * time.Nanosecond)}
	if err := s.AddAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAgent(ctx, a); !errors.Is(err, ErrExists) {
		t.Errorf("AddAgent twice: %v, want ErrExists", err)
	}
	got, err := s.Agent(ctx, "mairie", "pi-1")
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.Created = t0.Add(123456 * time.Microsecond) // kept to the microsecond
	if !agentEqual(got, want) {
		t.Errorf("Agent = %+v, want %+v", got, want)
	}
	if got.Created.Location() != time.UTC {
		t.Errorf("Created in %v, want UTC", got.Created.Location())
	}
	if err := s.SetAgentSecret(ctx, "mairie", "pi-1", []byte("hash-2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Agent(ctx, "mairie", "pi-1"); string(got.SecretHash) != "hash-2" {
		t.Errorf("after SetAgentSecret: %q", got.SecretHash)
	}
	if err := s.SetAgentSecret(ctx, "mairie", "pi-9", []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetAgentSecret unknown: %v", err)
	}
	if _, err := s.Agent(ctx, "mairie", "pi-9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Agent unknown: %v", err)
	}
	for _, bad := range []Agent{
		{Site: "Mairie", Agent: "pi", SecretHash: []byte("h"), Created: t0},
		{Site: "m", Agent: "", SecretHash: []byte("h"), Created: t0},
		{Site: "m", Agent: "pi", Created: t0},
		{Site: "m", Agent: "pi", SecretHash: []byte("h")},
	} {
		if err := s.AddAgent(ctx, bad); err == nil {
			t.Errorf("AddAgent(%+v) accepted", bad)
		}
	}

	// A registered agent is in the fleet before it reports; one that
	// reports without being registered joins it.
	st, err := s.AgentState(ctx, "mairie", "pi-1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Registered || st.Status.Online || !st.LastSeen.IsZero() || st.Upto != 0 || st.Events != 0 {
		t.Errorf("new agent's state: %+v", st)
	}
	if _, err := s.AgentState(ctx, "ailleurs", "pi"); !errors.Is(err, ErrNotFound) {
		t.Errorf("AgentState unknown: %v", err)
	}
	if _, err := s.Ingest(ctx, "ailleurs", "pi", buttons(1, 2), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fleet, err := s.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fleet) != 2 {
		t.Fatalf("Fleet: %d agents, want 2: %+v", len(fleet), fleet)
	}
	if f := fleet[0]; f.Site != "ailleurs" || f.Registered || f.Upto != 2 || f.Events != 2 || !f.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("Fleet[0] = %+v, want ailleurs/pi, unregistered, upto 2, 2 events", f)
	}
	if f := fleet[1]; f.Site != "mairie" || f.Agent != "pi-1" || !f.Registered {
		t.Errorf("Fleet[1] = %+v, want mairie/pi-1, registered", f)
	}
}

func agentEqual(a, b Agent) bool {
	return a.Site == b.Site && a.Agent == b.Agent && string(a.SecretHash) == string(b.SecretHash) && a.Created.Equal(b.Created)
}

func testIngestIdempotent(t *testing.T, s Store) {
	ctx := t.Context()
	es := buttons(1, 5)
	r, err := s.Ingest(ctx, "s", "a", es, t0)
	if err != nil {
		t.Fatal(err)
	}
	if r != (IngestResult{Inserted: 5, Upto: 5}) {
		t.Errorf("first Ingest: %+v", r)
	}
	// The same batch again, and a batch overlapping it with an id twice.
	r, err = s.Ingest(ctx, "s", "a", es, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r != (IngestResult{Duplicates: 5, Upto: 5}) {
		t.Errorf("same batch again: %+v", r)
	}
	more := append(buttons(6, 7), es[4], es[4])
	more = append(more, more[0])
	r, err = s.Ingest(ctx, "s", "a", more, t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r != (IngestResult{Inserted: 2, Duplicates: 3, Upto: 7}) {
		t.Errorf("overlapping batch: %+v", r)
	}
	// An empty call reports the watermark and counts as a message.
	r, err = s.Ingest(ctx, "s", "a", nil, t0.Add(time.Minute))
	if err != nil || r != (IngestResult{Upto: 7}) {
		t.Errorf("empty Ingest: %+v, %v", r, err)
	}
	st, err := s.AgentState(ctx, "s", "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 7 || st.Upto != 7 || !st.LastSeen.Equal(t0.Add(time.Minute)) || st.Registered {
		t.Errorf("state: %+v", st)
	}
	// An older message does not move last-seen back.
	if _, err := s.Ingest(ctx, "s", "a", nil, t0); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.AgentState(ctx, "s", "a"); !st.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("last seen moved back to %v", st.LastSeen)
	}
	// The same id from another agent is that agent's own event.
	r, err = s.Ingest(ctx, "s", "b", es[:1], t0)
	if err != nil || r != (IngestResult{Inserted: 1, Upto: 1}) {
		t.Errorf("another agent's id: %+v, %v", r, err)
	}
}

func testIngestOutOfOrder(t *testing.T, s Store) {
	ctx := t.Context()
	es := buttons(1, 10)
	steps := []struct {
		seqs []int
		upto uint64
	}{
		{[]int{3, 2}, 0},         // seq 1 missing
		{[]int{5, 7}, 0},         // more gaps
		{[]int{1}, 3},            // 1 fills up to 3
		{[]int{4, 4, 9}, 5},      // 4 fills to 5, 9 waits
		{[]int{8, 6}, 9},         // 6 fills 6..9
		{[]int{2, 10, 3}, 10},    // duplicates and the last
		{[]int{10, 9, 1, 5}, 10}, // only duplicates
	}
	for i, st := range steps {
		var batch []api.Event
		for _, q := range st.seqs {
			batch = append(batch, es[q-1])
		}
		r, err := s.Ingest(ctx, "s", "a", batch, t0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Upto != st.upto {
			t.Errorf("step %d %v: upto %d, want %d", i, st.seqs, r.Upto, st.upto)
		}
	}
	if st, _ := s.AgentState(ctx, "s", "a"); st.Events != 10 {
		t.Errorf("%d events stored, want 10", st.Events)
	}
}

func testIngestSeqRestart(t *testing.T, s Store) {
	ctx := t.Context()
	old := buttons(1, 8)
	// 1..5 and 7, 8 committed: upto 5, 7 and 8 wait for 6.
	if _, err := s.Ingest(ctx, "s", "a", append(old[:5:5], old[6:]...), t0); err != nil {
		t.Fatal(err)
	}
	// The agent lost its outbox: a new seq 1.
	fresh := buttons(1, 7)
	r, err := s.Ingest(ctx, "s", "a", fresh[:1], t0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Upto != 1 || r.Inserted != 1 {
		t.Errorf("after the restart: %+v, want upto 1", r)
	}
	// The old epoch's 7 and 8 are forgotten: 2..6 bring upto to 6 only.
	if r, _ = s.Ingest(ctx, "s", "a", fresh[1:6], t0); r.Upto != 6 {
		t.Errorf("new epoch 2..6: upto %d, want 6", r.Upto)
	}
	// The old seq 1 again is a duplicate: no restart.
	if r, _ = s.Ingest(ctx, "s", "a", old[:1], t0); r.Upto != 6 || r.Duplicates != 1 {
		t.Errorf("old seq 1 resent: %+v", r)
	}
	if r, _ = s.Ingest(ctx, "s", "a", fresh[6:], t0); r.Upto != 7 {
		t.Errorf("new epoch 7: upto %d", r.Upto)
	}
	if st, _ := s.AgentState(ctx, "s", "a"); st.Events != 7+7 {
		t.Errorf("%d events stored, want 14 (both epochs)", st.Events)
	}
	// A restart and its following events in one batch.
	again := buttons(1, 3)
	if r, _ = s.Ingest(ctx, "s", "a", []api.Event{again[2], again[0], again[1]}, t0); r.Upto != 3 {
		t.Errorf("restart in one batch: upto %d, want 3", r.Upto)
	}
}

func testIngestRejects(t *testing.T, s Store) {
	ctx := t.Context()
	bad := button(1, t0)
	bad.Gesture = ""
	local := button(1, t0.In(time.FixedZone("CET", 3600)))
	huge := button(1, t0)
	huge.Seq = 1 << 63
	for name, call := range map[string]func() error{
		"bad site":      func() error { _, err := s.Ingest(ctx, "S", "a", buttons(1, 1), t0); return err },
		"bad agent":     func() error { _, err := s.Ingest(ctx, "s", "a/b", buttons(1, 1), t0); return err },
		"zero time":     func() error { _, err := s.Ingest(ctx, "s", "a", buttons(1, 1), time.Time{}); return err },
		"invalid event": func() error { _, err := s.Ingest(ctx, "s", "a", []api.Event{bad}, t0); return err },
		"local time":    func() error { _, err := s.Ingest(ctx, "s", "a", []api.Event{local}, t0); return err },
		"seq too large": func() error { _, err := s.Ingest(ctx, "s", "a", []api.Event{huge}, t0); return err },
		"too many":      func() error { _, err := s.Ingest(ctx, "s", "a", buttons(1, MaxIngest+1), t0); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := s.AgentState(ctx, "s", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused call left a state: %v", err)
	}
}

// contiguous is the model of the watermark: the highest n with 1..n in
// seen.
func contiguous(seen map[uint64]bool) uint64 {
	var n uint64
	for seen[n+1] {
		n++
	}
	return n
}

// testWatermarkProperty delivers events in random order, in random
// batches, with random duplicates, and checks the watermark against the
// model after every call.
func testWatermarkProperty(t *testing.T, s Store) {
	ctx := t.Context()
	for round := range 8 {
		rnd := rand.New(rand.NewPCG(uint64(round), 42))
		agent := fmt.Sprintf("a%d", round)
		n := 20 + rnd.IntN(200)
		es := buttons(1, uint64(n))
		// Mostly in order, as agents send, with some shuffling and
		// resending.
		var order []int
		for i := range n {
			order = append(order, i)
			if rnd.IntN(4) == 0 {
				order = append(order, rnd.IntN(i+1))
			}
		}
		for range n / 3 {
			i, j := rnd.IntN(len(order)), rnd.IntN(len(order))
			order[i], order[j] = order[j], order[i]
		}
		seen := map[uint64]bool{}
		for len(order) > 0 {
			k := min(len(order), 1+rnd.IntN(40))
			var batch []api.Event
			for _, i := range order[:k] {
				batch = append(batch, es[i])
				seen[es[i].Seq] = true
			}
			order = order[k:]
			r, err := s.Ingest(ctx, "prop", agent, batch, t0)
			if err != nil {
				t.Fatal(err)
			}
			if want := contiguous(seen); r.Upto != want {
				t.Fatalf("round %d: upto %d, want %d", round, r.Upto, want)
			}
		}
		if st, _ := s.AgentState(ctx, "prop", agent); st.Events != int64(n) || st.Upto != uint64(n) {
			t.Errorf("round %d: %d events, upto %d, want %d", round, st.Events, st.Upto, n)
		}
	}
}

// testIngestConcurrent delivers overlapping batches of one agent from
// several goroutines, as replicas sharing a subscription would after
// redeliveries, and of other agents of the same site at once.
func testIngestConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	const n, workers = 200, 4
	agents := []string{"a", "b"}
	events := map[string][]api.Event{}
	for _, a := range agents {
		var es []api.Event
		for i := range n {
			es = append(es, printed(uint64(i+1), t0.Add(time.Duration(i)*time.Hour), 1, api.SourcePC))
		}
		events[a] = es
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted := map[string]int{}
	errs := make(chan error, workers*len(agents))
	for _, a := range agents {
		for w := range workers {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), 7))
				es := events[a]
				// Each worker sends every event, in overlapping
				// batches starting at its own offset.
				for i := w * 7 % n; i < n+w*7%n; {
					k := 1 + rnd.IntN(32)
					var batch []api.Event
					for j := i; j < min(i+k, n+w*7%n); j++ {
						batch = append(batch, es[j%n])
					}
					i += k
					r, err := s.Ingest(ctx, "site", a, batch, t0)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					inserted[a] += r.Inserted
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, a := range agents {
		if inserted[a] != n {
			t.Errorf("agent %s: %d inserted in all, want %d", a, inserted[a], n)
		}
		st, err := s.AgentState(ctx, "site", a)
		if err != nil {
			t.Fatal(err)
		}
		if st.Upto != n || st.Events != n {
			t.Errorf("agent %s: upto %d, %d events, want %d", a, st.Upto, st.Events, n)
		}
	}
	// Every event counted once in the rollups.
	rows, err := s.Usage(ctx, UsageQuery{From: t0, To: t0.Add(n * time.Hour), Period: Month})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].PrintJobs != 2*n || rows[0].Pages != 2*n {
		t.Errorf("usage after concurrent ingest: %+v, want %d jobs", rows, 2*n)
	}
}

func testUsageRollups(t *testing.T, s Store) {
	ctx := t.Context()
	mon := t0 // Monday 2026-03-02
	es := []api.Event{
		printed(1, mon, 4, api.SourcePC),
		printed(2, mon, 3, api.SourcePhone),
		// A test page: paper, but not a visitor's print.
		printed(3, mon, 1, api.SourceCentral),
		ev(4, mon, api.EventPrintCompleted, func(e *api.Event) { e.Pages, e.Sheets, e.Source = new(6), new(3), api.SourcePC }),
		ev(5, mon, api.EventPrintCompleted, func(e *api.Event) {
			e.Pages, e.Duplex, e.Source = new(5), new(true), api.SourcePC
		}),
		ev(6, mon, api.EventPrintFailed, func(e *api.Event) { e.Pages, e.Source, e.Reason = new(2), api.SourcePC, "media-jam" }),
		ev(7, mon, api.EventPrintCanceled, func(e *api.Event) { e.Pages, e.Source = new(2), api.SourcePC }),
		ev(8, mon, api.EventCopyCompleted, func(e *api.Event) { e.Pages = new(2) }),
		ev(9, mon, api.EventScanCompleted, func(e *api.Event) { e.Pages, e.Format = new(3), "application/pdf" }),
		ev(10, mon, api.EventScanFailed, func(e *api.Event) { e.Reason = "media-jam" }),
		button(11, mon),
		// The next day, late in the evening UTC.
		printed(12, mon.Add(24*time.Hour+14*time.Hour+59*time.Minute), 10, api.SourcePC),
	}
	if _, err := s.Ingest(ctx, "s1", "a", es, t0); err != nil {
		t.Fatal(err)
	}
	// Another agent of the same site, and another site.
	if _, err := s.Ingest(ctx, "s1", "b", []api.Event{printed(1, mon, 1, api.SourcePC)}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, "s2", "a", []api.Event{printed(1, mon, 7, api.SourcePC)}, t0); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Usage(ctx, UsageQuery{From: mon, To: mon.Add(48 * time.Hour), Period: Day})
	if err != nil {
		t.Fatal(err)
	}
	want := []UsageRow{
		{Site: "s1", Start: date(2026, 3, 2), PrintJobs: 5, Pages: 4 + 3 + 6 + 5 + 1,
			Sheets: 4 + 3 + 1 + 3 + 3 + 2 + 1, CopyJobs: 1, CopyPages: 2, Scans: 1, ScanPages: 3, FailedPrints: 1},
		{Site: "s2", Start: date(2026, 3, 2), PrintJobs: 1, Pages: 7, Sheets: 7},
		{Site: "s1", Start: date(2026, 3, 3), PrintJobs: 1, Pages: 10, Sheets: 10},
	}
	checkUsage(t, "by day", rows, want)
	// Duplicates add nothing.
	if _, err := s.Ingest(ctx, "s1", "a", es, t0); err != nil {
		t.Fatal(err)
	}
	rows, _ = s.Usage(ctx, UsageQuery{From: mon, To: mon.Add(48 * time.Hour), Period: Day, Sites: []string{"s1"}})
	checkUsage(t, "s1 by day after duplicates", rows, []UsageRow{want[0], want[2]})
}

func checkUsage(t *testing.T, what string, got, want []UsageRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] && !(got[i].Start.Equal(want[i].Start) && usageEqualButStart(got[i], want[i])) {
			t.Errorf("%s: row %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

func usageEqualButStart(a, b UsageRow) bool {
	a.Start, b.Start = time.Time{}, time.Time{}
	return a == b
}

// testUsagePeriods spreads one print a day over 2026 and checks day, week
// and month sums, whole and cut.
func testUsagePeriods(t *testing.T, s Store) {
	ctx := t.Context()
	var es []api.Event
	for d := date(2026, 1, 1); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		// Day of year n prints n pages.
		es = append(es, printed(uint64(len(es)+1), d.Add(12*time.Hour), d.YearDay(), api.SourcePC))
	}
	for c := range slices.Chunk(es, 100) {
		if _, err := s.Ingest(ctx, "site", "a", c, t0); err != nil {
			t.Fatal(err)
		}
	}
	// pages sums the pages of the days from..to.
	pages := func(from, to time.Time) int64 {
		var n int64
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			if d.Year() == 2026 {
				n += int64(d.YearDay())
			}
		}
		return n
	}
	cases := []struct {
		name     string
		from, to time.Time
		period   Period
		starts   []time.Time
		ranges   [][2]time.Time // the days summed in each row
	}{
		{"whole months", date(2026, 1, 1), date(2026, 3, 31), Month,
			[]time.Time{date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)},
			[][2]time.Time{{date(2026, 1, 1), date(2026, 1, 31)}, {date(2026, 2, 1), date(2026, 2, 28)}, {date(2026, 3, 1), date(2026, 3, 31)}}},
		{"cut months", date(2026, 1, 15), date(2026, 4, 10), Month,
			[]time.Time{date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)},
			[][2]time.Time{{date(2026, 1, 15), date(2026, 1, 31)}, {date(2026, 2, 1), date(2026, 2, 28)}, {date(2026, 3, 1), date(2026, 3, 31)}, {date(2026, 4, 1), date(2026, 4, 10)}}},
		{"within a month", date(2026, 5, 3), date(2026, 5, 20), Month,
			[]time.Time{date(2026, 5, 1)}, [][2]time.Time{{date(2026, 5, 3), date(2026, 5, 20)}}},
		{"adjacent cut months", date(2026, 5, 20), date(2026, 6, 3), Month,
			[]time.Time{date(2026, 5, 1), date(2026, 6, 1)},
			[][2]time.Time{{date(2026, 5, 20), date(2026, 5, 31)}, {date(2026, 6, 1), date(2026, 6, 3)}}},
		{"one whole month", date(2026, 2, 1), date(2026, 2, 28), Month,
			[]time.Time{date(2026, 2, 1)}, [][2]time.Time{{date(2026, 2, 1), date(2026, 2, 28)}}},
		// 2026-01-01 is a Thursday: its ISO week starts on Monday
		// 2025-12-29, with no usage before.
		{"weeks from new year", date(2026, 1, 1), date(2026, 1, 18), Week,
			[]time.Time{date(2025, 12, 29), date(2026, 1, 5), date(2026, 1, 12)},
			[][2]time.Time{{date(2026, 1, 1), date(2026, 1, 4)}, {date(2026, 1, 5), date(2026, 1, 11)}, {date(2026, 1, 12), date(2026, 1, 18)}}},
		{"cut weeks", date(2026, 3, 4), date(2026, 3, 17), Week,
			[]time.Time{date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)},
			[][2]time.Time{{date(2026, 3, 4), date(2026, 3, 8)}, {date(2026, 3, 9), date(2026, 3, 15)}, {date(2026, 3, 16), date(2026, 3, 17)}}},
		{"within a week", date(2026, 3, 4), date(2026, 3, 5), Week,
			[]time.Time{date(2026, 3, 2)}, [][2]time.Time{{date(2026, 3, 4), date(2026, 3, 5)}}},
		{"last week of the year", date(2026, 12, 28), date(2027, 1, 3), Week,
			[]time.Time{date(2026, 12, 28)}, [][2]time.Time{{date(2026, 12, 28), date(2026, 12, 31)}}},
		{"days", date(2026, 2, 27), date(2026, 3, 1).Add(23 * time.Hour), Day,
			[]time.Time{date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)},
			[][2]time.Time{{date(2026, 2, 27), date(2026, 2, 27)}, {date(2026, 2, 28), date(2026, 2, 28)}, {date(2026, 3, 1), date(2026, 3, 1)}}},
		{"a year by month", date(2026, 1, 1), date(2026, 12, 31), Month, nil, nil},
		{"nothing", date(2027, 1, 1), date(2027, 6, 30), Month, nil, nil},
	}
	for _, c := range cases {
		rows, err := s.Usage(ctx, UsageQuery{From: c.from, To: c.to, Period: c.period})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.name == "a year by month" {
			var total int64
			for i, r := range rows {
				if !r.Start.Equal(date(2026, time.Month(i+1), 1)) {
					t.Errorf("%s: row %d starts %v", c.name, i, r.Start)
				}
				total += r.Pages
			}
			if len(rows) != 12 || total != 365*366/2 {
				t.Errorf("%s: %d rows, %d pages, want 12 and %d", c.name, len(rows), total, 365*366/2)
			}
			continue
		}
		var want []UsageRow
		for i, st := range c.starts {
			p := pages(c.ranges[i][0], c.ranges[i][1])
			jobs := int64(c.ranges[i][1].Sub(c.ranges[i][0])/(24*time.Hour)) + 1
			if c.ranges[i][1].Year() > 2026 || c.ranges[i][0].Year() < 2026 {
				jobs = 0
				for d := c.ranges[i][0]; !d.After(c.ranges[i][1]); d = d.AddDate(0, 0, 1) {
					if d.Year() == 2026 {
						jobs++
					}
				}
			}
			want = append(want, UsageRow{Site: "site", Start: st, PrintJobs: jobs, Pages: p, Sheets: p})
		}
		checkUsage(t, c.name, rows, want)
	}
}

func testUsageWiFi(t *testing.T, s Store) {
	ctx := t.Context()
	// Two agents of one site report 2026-03-02.
	if _, err := s.Ingest(ctx, "s", "a", []api.Event{wifiDaily(1, t0.Add(24*time.Hour), "2026-03-02", 40)}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, "s", "b", []api.Event{wifiDaily(1, t0.Add(24*time.Hour), "2026-03-02", 5)}, t0); err != nil {
		t.Fatal(err)
	}
	check := func(what string, want int64) {
		t.Helper()
		for _, p := range []Period{Day, Week, Month} {
			rows, err := s.Usage(ctx, UsageQuery{From: date(2026, 3, 1), To: date(2026, 3, 31), Period: p})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].WiFiVisitors != want {
				t.Errorf("%s by %s: %+v, want %d visitors", what, p, rows, want)
			}
		}
	}
	check("two agents", 45)
	// Agent a restarts and sends its day again with a new id: it replaces.
	if _, err := s.Ingest(ctx, "s", "a", []api.Event{wifiDaily(2, t0.Add(25*time.Hour), "2026-03-02", 42)}, t0); err != nil {
		t.Fatal(err)
	}
	check("resent", 47)
	// An older report arriving late does not.
	if _, err := s.Ingest(ctx, "s", "a", []api.Event{wifiDaily(3, t0.Add(24*time.Hour+time.Minute), "2026-03-02", 1)}, t0); err != nil {
		t.Fatal(err)
	}
	check("late older report", 47)
	// Two in one batch: the latest wins.
	if _, err := s.Ingest(ctx, "s", "b", []api.Event{
		wifiDaily(2, t0.Add(27*time.Hour), "2026-03-02", 9),
		wifiDaily(3, t0.Add(26*time.Hour), "2026-03-02", 100),
	}, t0); err != nil {
		t.Fatal(err)
	}
	check("two in a batch", 51)
}

func testUsageRejects(t *testing.T, s Store) {
	ctx := t.Context()
	for _, q := range []UsageQuery{
		{To: t0, Period: Day},
		{From: t0, Period: Day},
		{From: t0, To: t0.Add(-48 * time.Hour), Period: Day},
		{From: t0, To: t0, Period: "year"},
		{From: t0, To: t0.AddDate(11, 0, 0), Period: Month},
		{From: t0, To: t0, Period: Day, Sites: []string{"Bad"}},
	} {
		if _, err := s.Usage(ctx, q); err == nil {
			t.Errorf("Usage(%+v) accepted", q)
		}
	}
	// Times of day are ignored.
	if rows, err := s.Usage(ctx, UsageQuery{From: t0.Add(5 * time.Hour), To: t0, Period: Day}); err != nil || len(rows) != 0 {
		t.Errorf("one day: %v, %v", rows, err)
	}
}

func fault(dev api.Device, code string, sev api.Severity, since time.Time) api.Fault {
	return api.Fault{Device: dev, Code: code, Severity: sev, Since: since}
}

func online(faults ...api.Fault) api.Status {
	h := api.HealthOK
	for _, f := range faults {
		if f.Severity == api.SeverityFault {
			h = api.HealthFault
		} else if h == api.HealthOK {
			h = api.HealthWarn
		}
	}
	return api.Status{Online: true, Time: t0, Version: "1.0.0", Health: h, Faults: faults}
}

func testStatusFaults(t *testing.T, s Store) {
	ctx := t.Context()
	jam := fault(api.DevicePrinter, "media-jam", api.SeverityFault, t0.Add(-time.Hour))
	toner := fault(api.DevicePrinter, "toner-low", api.SeverityWarn, t0.Add(-2*time.Hour))
	scan := fault(api.DeviceScanner, "scanner-unreachable", api.SeverityFault, t0.Add(-3*time.Hour))
	steps := []struct {
		status api.Status
		at     time.Time
	}{
		{online(jam, toner), t0},
		{online(jam, toner), t0.Add(time.Minute)},      // nothing changes
		{online(toner, scan), t0.Add(2 * time.Minute)}, // jam cleared, scan opened
		{api.Status{Online: false}, t0.Add(3 * time.Minute)},
		{online(toner, scan), t0.Add(4 * time.Minute)},
	}
	for _, st := range steps {
		if err := s.SetStatus(ctx, "s", "a", st.status, st.at); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Faults(ctx, FaultQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// Newest first by Since: jam (t0-1h), toner (t0-2h), scan (t0-3h).
	if len(all) != 3 {
		t.Fatalf("Faults: %+v, want 3", all)
	}
	if f := all[0]; f.Code != "media-jam" || f.Open() || !f.Cleared.Equal(t0.Add(2*time.Minute)) || !f.Since.Equal(jam.Since) ||
		f.Severity != api.SeverityFault || f.Device != api.DevicePrinter || f.Site != "s" || f.Agent != "a" {
		t.Errorf("jam: %+v", f)
	}
	if f := all[1]; f.Code != "toner-low" || !f.Open() {
		t.Errorf("toner: %+v, want open (the will closes nothing)", f)
	}
	if f := all[2]; f.Code != "scanner-unreachable" || !f.Open() {
		t.Errorf("scanner: %+v, want open", f)
	}
	st, err := s.AgentState(ctx, "s", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Status.Online || len(st.Status.Faults) != 2 || !st.StatusAt.Equal(t0.Add(4*time.Minute)) || !st.LastSeen.Equal(st.StatusAt) {
		t.Errorf("state: %+v", st)
	}
	// The will: offline, zero time.
	if err := s.SetStatus(ctx, "s", "a", api.Status{Online: false}, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.AgentState(ctx, "s", "a"); st.Status.Online || !st.Status.Time.IsZero() || len(st.Status.Faults) != 0 {
		t.Errorf("after the will: %+v", st.Status)
	}
	// A listed fault takes its new severity; all clear closes both.
	worse := toner
	worse.Severity = api.SeverityFault
	if err := s.SetStatus(ctx, "s", "a", online(worse), t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	open := true
	if fs, _ := s.Faults(ctx, FaultQuery{Open: &open}); len(fs) != 1 || fs[0].Severity != api.SeverityFault || !fs[0].Since.Equal(toner.Since) {
		t.Errorf("open after severity change: %+v", fs)
	}
	if err := s.SetStatus(ctx, "s", "a", online(), t0.Add(7*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if fs, _ := s.Faults(ctx, FaultQuery{Open: &open}); len(fs) != 0 {
		t.Errorf("open after all clear: %+v", fs)
	}
	// Raised again: a new interval.
	if err := s.SetStatus(ctx, "s", "a", online(fault(api.DevicePrinter, "media-jam", api.SeverityFault, t0.Add(8*time.Minute))), t0.Add(8*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Another agent's fault.
	if err := s.SetStatus(ctx, "t", "b", online(fault(api.DeviceWiFi, "wifi-down", api.SeverityFault, t0)), t0); err != nil {
		t.Fatal(err)
	}

	closed := false
	for name, c := range map[string]struct {
		q     FaultQuery
		codes []string
	}{
		"all":      {FaultQuery{}, []string{"media-jam", "wifi-down", "media-jam", "toner-low", "scanner-unreachable"}},
		"site":     {FaultQuery{Site: "t"}, []string{"wifi-down"}},
		"agent":    {FaultQuery{Site: "s", Agent: "a"}, []string{"media-jam", "media-jam", "toner-low", "scanner-unreachable"}},
		"open":     {FaultQuery{Open: &open}, []string{"media-jam", "wifi-down"}},
		"closed":   {FaultQuery{Open: &closed}, []string{"media-jam", "toner-low", "scanner-unreachable"}},
		"limit":    {FaultQuery{Limit: 2}, []string{"media-jam", "wifi-down"}},
		"since":    {FaultQuery{Since: t0.Add(6*time.Minute + 30*time.Second)}, []string{"media-jam", "wifi-down", "toner-low"}},
		"since+s":  {FaultQuery{Site: "s", Since: t0.Add(7*time.Minute + 30*time.Second)}, []string{"media-jam"}},
		"no match": {FaultQuery{Site: "u"}, nil},
	} {
		fs, err := s.Faults(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, f := range fs {
			codes = append(codes, f.Code)
		}
		if !slices.Equal(codes, c.codes) {
			t.Errorf("Faults %s: %v, want %v", name, codes, c.codes)
		}
	}
	if _, err := s.Faults(ctx, FaultQuery{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}

	// Acknowledging.
	id := all[0].ID
	if err := s.AckFault(ctx, id, "alice", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AckFault(ctx, id, "bob", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AckFault(ctx, id+1000, "bob", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("AckFault unknown: %v", err)
	}
	fs, _ := s.Faults(ctx, FaultQuery{Site: "s"})
	for _, f := range fs {
		if f.ID == id && (f.AckedBy != "alice" || !f.AckedAt.Equal(t0.Add(time.Hour))) {
			t.Errorf("acked: %+v, want alice's", f)
		}
		if f.ID != id && f.AckedBy != "" {
			t.Errorf("not acked: %+v", f)
		}
	}
	if err := s.SetStatus(ctx, "s", "a", api.Status{Online: true}, t0); err == nil {
		t.Error("invalid status accepted")
	}
}

func testMetrics(t *testing.T, s Store) {
	ctx := t.Context()
	m := api.Metrics{
		Time:    t0,
		Printer: &api.Printer{State: api.PrinterIdle, Markers: []api.Marker{{Name: "Black", Kind: "toner-cartridge", Level: 40}}},
		Queue:   &api.Queue{Pending: 2},
		Host:    &api.Host{DiskFreeBytes: 1 << 30, DiskTotalBytes: 8 << 30, MemAvailableBytes: 1 << 28, MemTotalBytes: 1 << 30, UptimeS: 60, ClockSynced: true},
	}
	if err := s.SetMetrics(ctx, "s", "a", m, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	st, err := s.AgentState(ctx, "s", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.MetricsAt.Equal(t0.Add(time.Second)) || !st.LastSeen.Equal(st.MetricsAt) || st.Registered ||
		st.Metrics.Printer == nil || st.Metrics.Printer.Markers[0].Level != 40 || st.Metrics.Queue.Pending != 2 ||
		!st.Metrics.Time.Equal(t0) || st.Metrics.WiFi != nil || !st.StatusAt.IsZero() {
		t.Errorf("state: %+v", st)
	}
	if fleet, _ := s.Fleet(ctx); len(fleet) != 1 || fleet[0].Agent != "a" {
		t.Errorf("fleet: %+v", fleet)
	}
	if err := s.SetMetrics(ctx, "s", "a", api.Metrics{}, t0); err == nil {
		t.Error("invalid metrics accepted")
	}
}

func testCommands(t *testing.T, s Store) {
	ctx := t.Context()
	for i, name := range []string{api.CommandIdentify, api.CommandTestPage, api.CommandRefresh} {
		c := Command{Req: fmt.Sprintf("req-%d", i), Site: "s", Agent: "a", Name: name, By: "tech", At: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.AddCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddCommand(ctx, Command{Req: "req-0", Site: "s", Agent: "a", Name: api.CommandRefresh, By: "x", At: t0}); !errors.Is(err, ErrExists) {
		t.Errorf("AddCommand same req: %v", err)
	}
	if err := s.AddCommand(ctx, Command{Req: "req-9", Site: "s", Agent: "a", Name: "reboot", By: "x", At: t0}); err == nil {
		t.Error("unknown command accepted")
	}
	if err := s.CommandDone(ctx, "s", "a", api.CommandResult{Req: "req-1", OK: false, Error: "paper jam"}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A redelivered result keeps the first.
	if err := s.CommandDone(ctx, "s", "a", api.CommandResult{Req: "req-1", OK: true}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommandDone(ctx, "s", "a", api.CommandResult{Req: "nope", OK: true}, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommandDone unknown: %v", err)
	}
	if err := s.CommandDone(ctx, "s", "b", api.CommandResult{Req: "req-1", OK: true}, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommandDone from another agent: %v", err)
	}
	cs, err := s.Commands(ctx, "s", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Req != "req-2" || cs[2].Req != "req-0" {
		t.Fatalf("Commands: %+v", cs)
	}
	if c := cs[1]; c.Name != api.CommandTestPage || c.OK || c.Error != "paper jam" || !c.Done.Equal(t0.Add(time.Hour)) ||
		!c.At.Equal(t0.Add(time.Minute)) || c.By != "tech" || c.Site != "s" || c.Agent != "a" {
		t.Errorf("done command: %+v", c)
	}
	if c := cs[0]; !c.Done.IsZero() || c.OK {
		t.Errorf("pending command: %+v", c)
	}
	if cs, _ := s.Commands(ctx, "s", "a", 1); len(cs) != 1 || cs[0].Req != "req-2" {
		t.Errorf("Commands limit 1: %+v", cs)
	}
	if cs, _ := s.Commands(ctx, "s", "b", 0); len(cs) != 0 {
		t.Errorf("Commands of another agent: %+v", cs)
	}
}

func testUsers(t *testing.T, s Store) {
	ctx := t.Context()
	for _, u := range []User{
		{Name: "zoé", Role: Manager, PasswordHash: []byte("h1"), Created: t0},
		{Name: "admin", Role: Admin, PasswordHash: []byte("h2"), Created: t0},
	} {
		if err := s.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddUser(ctx, User{Name: "admin", Role: Technician, PasswordHash: []byte("x"), Created: t0}); !errors.Is(err, ErrExists) {
		t.Errorf("AddUser twice: %v", err)
	}
	for _, bad := range []User{
		{Name: "x", Role: "root", PasswordHash: []byte("h"), Created: t0},
		{Name: "", Role: Admin, PasswordHash: []byte("h"), Created: t0},
		{Name: "a\nb", Role: Admin, PasswordHash: []byte("h"), Created: t0},
		{Name: "x", Role: Admin, Created: t0},
	} {
		if err := s.AddUser(ctx, bad); err == nil {
			t.Errorf("AddUser(%+v) accepted", bad)
		}
	}
	if err := s.SetPassword(ctx, "zoé", []byte("h3")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, "nobody", []byte("h3")); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPassword unknown: %v", err)
	}
	u, err := s.User(ctx, "zoé")
	if err != nil || u.Role != Manager || string(u.PasswordHash) != "h3" || !u.Created.Equal(t0) {
		t.Errorf("User: %+v, %v", u, err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("User unknown: %v", err)
	}
	us, err := s.Users(ctx)
	if err != nil || len(us) != 2 || us[0].Name != "admin" || us[1].Name != "zoé" {
		t.Errorf("Users: %+v, %v", us, err)
	}
}

func testSessions(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.AddUser(ctx, User{Name: "tech", Role: Technician, PasswordHash: []byte("h"), Created: t0}); err != nil {
		t.Fatal(err)
	}
	ses := Session{TokenHash: hash("a"), User: "tech", CSRF: "csrf-a", Created: t0, Expires: t0.Add(time.Hour)}
	if err := s.AddSession(ctx, ses); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSession(ctx, ses); !errors.Is(err, ErrExists) {
		t.Errorf("AddSession twice: %v", err)
	}
	if err := s.AddSession(ctx, Session{TokenHash: hash("x"), User: "ghost", CSRF: "c", Created: t0, Expires: t0.Add(time.Hour)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddSession of an unknown user: %v", err)
	}
	if err := s.AddSession(ctx, Session{TokenHash: []byte("short"), User: "tech", CSRF: "c", Created: t0, Expires: t0.Add(time.Hour)}); err == nil {
		t.Error("a hash that is no SHA-256 accepted")
	}
	got, err := s.Session(ctx, hash("a"), t0.Add(59*time.Minute))
	if err != nil || got.User != "tech" || got.CSRF != "csrf-a" || !got.Expires.Equal(t0.Add(time.Hour)) || !got.Created.Equal(t0) {
		t.Errorf("Session: %+v, %v", got, err)
	}
	if _, err := s.Session(ctx, hash("a"), t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired Session: %v", err)
	}
	// The expired session was deleted: even an earlier now cannot see it.
	if _, err := s.Session(ctx, hash("a"), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
	// Adding a session purges the expired ones.
	if err := s.AddSession(ctx, Session{TokenHash: hash("b"), User: "tech", CSRF: "b", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSession(ctx, Session{TokenHash: hash("c"), User: "tech", CSRF: "c", Created: t0.Add(2 * time.Hour), Expires: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hash("b"), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("session b not purged: %v", err)
	}
	if err := s.DeleteSession(ctx, hash("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hash("c"), t0.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}
	if err := s.DeleteSession(ctx, hash("c")); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}

func testTokens(t *testing.T, s Store) {
	ctx := t.Context()
	tok := Token{TokenHash: hash("t"), Name: "prometheus", Role: Manager, Created: t0}
	if err := s.AddToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToken(ctx, tok); !errors.Is(err, ErrExists) {
		t.Errorf("AddToken twice: %v", err)
	}
	got, err := s.Token(ctx, hash("t"))
	if err != nil || got.Name != "prometheus" || got.Role != Manager || !got.Created.Equal(t0) || string(got.TokenHash) != string(hash("t")) {
		t.Errorf("Token: %+v, %v", got, err)
	}
	if _, err := s.Token(ctx, hash("u")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Token unknown: %v", err)
	}
	if err := s.AddToken(ctx, Token{TokenHash: hash("v"), Name: "x", Role: "god", Created: t0}); err == nil {
		t.Error("bad role accepted")
	}
}

func testIncidents(t *testing.T, s Store) {
	ctx := t.Context()
	off := Incident{Key: "offline/s/a", Site: "s", Agent: "a", Kind: "offline", Opened: t0}
	jam := Incident{Key: "fault/s/a/printer/media-jam", Site: "s", Agent: "a", Kind: "fault", Detail: "media-jam", Opened: t0.Add(time.Minute)}
	for _, i := range []Incident{off, jam} {
		if ok, err := s.OpenIncident(ctx, i); err != nil || !ok {
			t.Fatalf("OpenIncident: %v, %v", ok, err)
		}
	}
	if ok, err := s.OpenIncident(ctx, off); err != nil || ok {
		t.Errorf("OpenIncident again: %v, %v, want false", ok, err)
	}
	open, err := s.OpenIncidents(ctx)
	if err != nil || len(open) != 2 || open[0].Key != off.Key || open[1] != (jam) {
		t.Errorf("OpenIncidents: %+v, %v", open, err)
	}
	i, ok, err := s.CloseIncident(ctx, off.Key, t0.Add(time.Hour))
	if err != nil || !ok || i.Key != off.Key || i.Kind != "offline" || !i.Opened.Equal(t0) || !i.Closed.Equal(t0.Add(time.Hour)) {
		t.Errorf("CloseIncident: %+v, %v, %v", i, ok, err)
	}
	if _, ok, err := s.CloseIncident(ctx, off.Key, t0.Add(time.Hour)); ok || err != nil {
		t.Errorf("CloseIncident again: %v, %v", ok, err)
	}
	// Opened again once closed.
	if ok, err := s.OpenIncident(ctx, off); err != nil || !ok {
		t.Errorf("reopening: %v, %v", ok, err)
	}
	if open, _ := s.OpenIncidents(ctx); len(open) != 2 {
		t.Errorf("OpenIncidents after reopening: %+v", open)
	}
	if _, err := s.OpenIncident(ctx, Incident{Key: "x", Kind: "flood", Opened: t0}); err == nil {
		t.Error("bad kind accepted")
	}
}

func testRejections(t *testing.T, s Store) {
	ctx := t.Context()
	if m, err := s.Rejections(ctx); err != nil || len(m) != 0 {
		t.Errorf("no rejections: %v, %v", m, err)
	}
	for _, r := range [][3]string{
		{"s", "a", "malformed"}, {"s", "a", "malformed"}, {"s", "b", "malformed"},
		{"s", "a", "too-large"}, {"", "", "topic"}, {"Bad/Site", "#", "topic"},
	} {
		if err := s.Rejected(ctx, r[0], r[1], r[2], t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Rejected(ctx, "s", "a", "Not A Reason", t0); err == nil {
		t.Error("bad reason accepted")
	}
	m, err := s.Rejections(ctx)
	want := map[string]int64{"malformed": 3, "too-large": 1, "topic": 2}
	if err != nil || fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("Rejections: %v, %v, want %v", m, err, want)
	}
}

// ctxTimeout is a context for the tests' setup.
func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
