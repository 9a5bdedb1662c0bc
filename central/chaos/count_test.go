package chaos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
	"github.com/jackc/pgx/v5"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// scanSlack is how far past the retention a scan may still be found: the
// agent deletes it when its timer fires, and the check reads the inbox
// while the agent runs.
const scanSlack = 10 * time.Second

// pgQuery runs one query on central's database and calls scan for each
// row.
func pgQuery(db string, scan func(pgx.Rows) error, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// centralUpto is central's ingest watermark for the agent: every seq up to
// it is committed.
func centralUpto(db, agent string) (uint64, error) {
	var upto int64
	err := pgQuery(db, func(r pgx.Rows) error { return r.Scan(&upto) },
		"SELECT upto FROM agent_state WHERE site = $1 AND agent = $2", siteID, agent)
	return uint64(upto), err
}

// centralOpenFaults lists the agent's faults central shows open, as
// device/code.
func centralOpenFaults(db, agent string) ([]string, error) {
	var out []string
	err := pgQuery(db, func(r pgx.Rows) error {
		var dev, code string
		if err := r.Scan(&dev, &code); err != nil {
			return err
		}
		out = append(out, dev+"/"+code)
		return nil
	}, "SELECT device, code FROM faults WHERE site = $1 AND agent = $2 AND cleared IS NULL", siteID, agent)
	return out, err
}

// centralEvent is one event row of central's store.
type centralEvent struct {
	id  string
	seq uint64
}

// siteResult is what the counts at both ends say about one site.
type siteResult struct {
	agent string

	// Submissions, as the client saw them.
	outcomes map[outcome]int
	statuses map[goipp.Status]int
	fullDisk map[string]int // the submissions made on the full disk, by outcome
	presses  map[string]int

	// What the printer kept.
	printed        int      // marks printed at least once
	partial        int      // cut uploads (the printer stopped mid-job)
	lostJobs       []string // accepted and never printed
	doubledJobs    []string // printed more than once
	refusedPrinted []string // refused, yet printed
	strangers      []string // printed with a mark never submitted
	unknownPrinted int      // unanswered submissions that were spooled and printed
	copies         int      // copies printed
	doubledUp      []string // the agent's jobs printed more than once (copies included)

	// Usage events against jobs.
	printEvents, copyCompleted, copyFailed int

	// Events: the agent's outbox against central's store.
	recorded    int
	pruned      int // delivered events the outbox no longer keeps, checked by seq
	inCentral   int
	lostEvents  []string
	dupEvents   []string
	extraEvents []string
	byType      map[api.EventType]int

	// Faults.
	raised, cleared int
	raisedByCode    map[string]int
	agentOpen       []string
	intervals       int
	intervalsOpen   int
	ghosts          []string // open in central, not at the agent
	unshown         []string // open at the agent, not in central
	unpaired        []string // raised at the agent, neither cleared nor open
	neverInCentral  int      // raised and cleared at the agent with no interval in central

	// The reporter's connections and resends since the agent's last start.
	connects, resends uint64

	// Scans.
	scans    int
	inInbox  int
	oldest   time.Duration
	tooOld   []string
	scanFail map[string]int
}

type results struct {
	sites []*siteResult
}

// count reads both ends: the inboxes while the agents run, then (agents
// stopped) their outboxes, central's store and what the printers kept.
func (sc *scenario) count() *results {
	t := sc.t
	res := &results{}
	for _, s := range sc.sites {
		r := &siteResult{agent: s.agentID, outcomes: map[outcome]int{}, statuses: map[goipp.Status]int{},
			fullDisk: map[string]int{}, presses: map[string]int{}, byType: map[api.EventType]int{},
			raisedByCode: map[string]int{}, scanFail: map[string]int{}}
		res.sites = append(res.sites, r)
		ages, err := scanAges(s.storage, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.inInbox = len(ages)
		if st, err := s.status(); err == nil && st.Central != nil {
			r.connects, r.resends = st.Central.Connects, st.Central.Resends
		}
		for id, age := range ages {
			r.oldest = max(r.oldest, age)
			if age > retention+scanSlack {
				r.tooOld = append(r.tooOld, fmt.Sprintf("%s (%v)", id, age.Round(time.Second)))
			}
		}
	}
	for _, s := range sc.sites {
		s.agent.stop()
	}
	for i, s := range sc.sites {
		sc.countSite(s, res.sites[i])
	}
	return res
}

func (sc *scenario) countSite(s *site, r *siteResult) {
	t := sc.t
	l := s.ledger
	l.mu.Lock()
	for _, o := range l.outcomes {
		r.outcomes[o]++
	}
	for st, n := range l.statuses {
		r.statuses[st] += n
	}
	for _, o := range l.fullDisk {
		r.fullDisk[o]++
	}
	for g, n := range l.presses {
		r.presses[g] = n
	}
	if l.pressErr > 0 {
		r.presses["refused (agent away)"] = l.pressErr
	}
	outcomes := maps.Clone(l.outcomes)
	l.mu.Unlock()

	// Jobs: the marks the printer kept, against the submissions.
	marks := map[string]int{}
	jobs := map[string]int{}
	for _, p := range readPrinted(t, s.printer) {
		if !p.whole {
			r.partial++
			continue
		}
		if p.job != "" {
			jobs[p.job]++
		}
		if p.mark == "" {
			r.copies++
			continue
		}
		marks[p.mark]++
	}
	for mark, n := range marks {
		o, ok := outcomes[mark]
		switch {
		case !ok:
			r.strangers = append(r.strangers, mark)
		case n > 1:
			r.doubledJobs = append(r.doubledJobs, fmt.Sprintf("%s ×%d", mark, n))
		case o == refused || o == down:
			r.refusedPrinted = append(r.refusedPrinted, mark)
		case o == unknown:
			r.unknownPrinted++
		}
	}
	r.printed = len(marks)
	for mark, o := range outcomes {
		if o == accepted && marks[mark] == 0 {
			r.lostJobs = append(r.lostJobs, mark)
		}
	}
	for job, n := range jobs {
		if n > 1 {
			r.doubledUp = append(r.doubledUp, fmt.Sprintf("relais-%s ×%d", job, n))
		}
	}

	// Events: every event the outbox recorded, against central's rows.
	ob, err := outbox.Open(filepath.Join(s.storage, "outbox.db"), outbox.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("%s: outbox: %v", s.agentID, err)
	}
	defer ob.Close()
	stats, err := ob.Stats()
	if err != nil {
		t.Fatal(err)
	}
	events, err := ob.Recent(outbox.MaxList)
	if err != nil {
		t.Fatal(err)
	}
	open, err := ob.OpenFaults()
	if err != nil {
		t.Fatal(err)
	}
	r.recorded = int(stats.LastSeq)
	var rows []centralEvent
	err = pgQuery(sc.db, func(row pgx.Rows) error {
		var e centralEvent
		var seq int64
		if err := row.Scan(&e.id, &seq); err != nil {
			return err
		}
		e.seq = uint64(seq)
		rows = append(rows, e)
		return nil
	}, "SELECT id, seq FROM events WHERE site = $1 AND agent = $2", siteID, s.agentID)
	if err != nil {
		t.Fatalf("central's events: %v", err)
	}
	r.inCentral = len(rows)
	byID := map[string]int{}
	bySeq := map[uint64]int{}
	for _, e := range rows {
		byID[e.id]++
		bySeq[e.seq]++
	}
	firstKept := stats.LastSeq + 1
	if len(events) > 0 {
		firstKept = events[0].Seq
	}
	recordedIDs := map[string]bool{}
	for _, e := range events {
		recordedIDs[e.ID] = true
		r.byType[e.Type]++
		switch n := byID[e.ID]; {
		case n == 0:
			r.lostEvents = append(r.lostEvents, fmt.Sprintf("seq %d %s %s", e.Seq, e.Type, e.ID))
		case n > 1:
			r.dupEvents = append(r.dupEvents, fmt.Sprintf("seq %d %s %s ×%d", e.Seq, e.Type, e.ID, n))
		}
	}
	// Events older than the outbox keeps were delivered and dropped: their
	// seqs must each be in central once.
	for seq := uint64(1); seq < firstKept; seq++ {
		r.pruned++
		switch bySeq[seq] {
		case 0:
			r.lostEvents = append(r.lostEvents, fmt.Sprintf("seq %d (no longer in the outbox)", seq))
		case 1:
		default:
			r.dupEvents = append(r.dupEvents, fmt.Sprintf("seq %d ×%d", seq, bySeq[seq]))
		}
	}
	for _, e := range rows {
		if e.seq >= firstKept && !recordedIDs[e.id] {
			r.extraEvents = append(r.extraEvents, fmt.Sprintf("seq %d %s", e.seq, e.id))
		}
	}

	// Usage events against jobs, and faults as the agent recorded them.
	type key struct{ dev, code string }
	raisedOpen := map[key][]time.Time{}
	for _, e := range events {
		switch e.Type {
		case api.EventPrintCompleted, api.EventPrintFailed, api.EventPrintCanceled:
			if e.Source == api.SourceCopy {
				r.copyFailed++
			} else {
				r.printEvents++
			}
		case api.EventCopyCompleted:
			r.copyCompleted++
		case api.EventScanCompleted:
			r.scans++
		case api.EventScanFailed:
			r.scanFail[e.Reason]++
		case api.EventFaultRaised:
			k := key{string(e.Fault.Device), e.Fault.Code}
			r.raised++
			r.raisedByCode[e.Fault.Code]++
			raisedOpen[k] = append(raisedOpen[k], e.Fault.Since)
		case api.EventFaultCleared:
			k := key{string(e.Fault.Device), e.Fault.Code}
			r.cleared++
			if q := raisedOpen[k]; len(q) > 0 {
				raisedOpen[k] = q[1:]
			}
		}
	}
	agentOpen := map[key]bool{}
	for _, f := range open {
		k := key{string(f.Device), f.Code}
		agentOpen[k] = true
		r.agentOpen = append(r.agentOpen, k.dev+"/"+k.code)
	}
	if firstKept == 1 { // every fault event is at hand
		for k, q := range raisedOpen {
			for range q {
				if !agentOpen[k] {
					r.unpaired = append(r.unpaired, k.dev+"/"+k.code)
				}
			}
		}
	}

	// Faults as central shows them.
	ctx := context.Background()
	st, err := store.Open(ctx, sc.db, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	intervals, err := st.Faults(ctx, store.FaultQuery{Site: siteID, Agent: s.agentID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	r.intervals = len(intervals)
	shown := map[key]map[int64]bool{}
	centralOpen := map[key]bool{}
	for _, f := range intervals {
		k := key{string(f.Device), f.Code}
		if shown[k] == nil {
			shown[k] = map[int64]bool{}
		}
		shown[k][f.Since.UnixMilli()] = true
		if !f.Open() {
			continue
		}
		r.intervalsOpen++
		centralOpen[k] = true
		if !agentOpen[k] {
			r.ghosts = append(r.ghosts, fmt.Sprintf("%s/%s since %s", k.dev, k.code, f.Since.Format(time.TimeOnly)))
		}
	}
	for k := range agentOpen {
		if !centralOpen[k] {
			r.unshown = append(r.unshown, k.dev+"/"+k.code)
		}
	}
	for _, e := range events {
		if e.Type == api.EventFaultRaised {
			k := key{string(e.Fault.Device), e.Fault.Code}
			if !shown[k][e.Fault.Since.UnixMilli()] {
				r.neverInCentral++
			}
		}
	}
	for _, x := range [][]string{r.lostJobs, r.doubledJobs, r.refusedPrinted, r.strangers, r.doubledUp,
		r.lostEvents, r.dupEvents, r.extraEvents, r.ghosts, r.unshown, r.unpaired, r.agentOpen} {
		sort.Strings(x)
	}
}

// report prints the table of faults injected and of what was lost and
// duplicated: with `go test -v` (make chaos) on standard output, otherwise
// in the test's log, which shows on failure.
func (res *results) report(t *testing.T, f form, in *injections, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRelais chaos scenario, %s form: %d agents, %d round(s), %v\n\n", f.name, len(res.sites), f.rounds, took.Round(time.Second))
	fmt.Fprintf(&b, "%-34s %6s\n", "fault injected", "count")
	for _, k := range in.kinds {
		fmt.Fprintf(&b, "%-34s %6d\n", k, in.n[k])
	}
	sum := func(f func(r *siteResult) int) int {
		n := 0
		for _, r := range res.sites {
			n += f(r)
		}
		return n
	}
	fmt.Fprintf(&b, "\n%-34s %6s %6s %10s\n", "counted at both ends", "total", "lost", "duplicated")
	fmt.Fprintf(&b, "%-34s %6d %6d %10d\n", "print jobs accepted → printed",
		sum(func(r *siteResult) int { return r.outcomes[accepted] }),
		sum(func(r *siteResult) int { return len(r.lostJobs) }),
		sum(func(r *siteResult) int { return len(r.doubledJobs) + len(r.doubledUp) }))
	fmt.Fprintf(&b, "%-34s %6d %6d %10d\n", "copies completed → printed",
		sum(func(r *siteResult) int { return r.copyCompleted }),
		sum(func(r *siteResult) int { return max(0, r.copyCompleted-r.copies) }),
		sum(func(r *siteResult) int { return len(r.doubledUp) }))
	extraUsage := sum(func(r *siteResult) int { return max(0, r.printEvents-r.printed) })
	fmt.Fprintf(&b, "%-34s %6d %6d %10d%s\n", "jobs printed → usage events",
		sum(func(r *siteResult) int { return r.printed }),
		sum(func(r *siteResult) int { return max(0, r.printed-r.printEvents) }),
		extraUsage, "")
	fmt.Fprintf(&b, "%-34s %6d %6d %10d\n", "outbox events → central (by id)",
		sum(func(r *siteResult) int { return r.recorded }),
		sum(func(r *siteResult) int { return len(r.lostEvents) }),
		sum(func(r *siteResult) int { return len(r.dupEvents) }))
	types := map[string]int{}
	for _, r := range res.sites {
		for ty, n := range r.byType {
			types[string(ty)] += n
		}
	}
	fmt.Fprintf(&b, "  kept in the outboxes, by type: %s\n", countList(types))
	fmt.Fprintf(&b, "%-34s %6d %6s %10s\n", "fault intervals in central",
		sum(func(r *siteResult) int { return r.intervals }), "", "")
	fmt.Fprintf(&b, "  faults raised by the agents %d, cleared %d; open at the agents %d, in central %d; ghosts %d, unshown %d\n",
		sum(func(r *siteResult) int { return r.raised }), sum(func(r *siteResult) int { return r.cleared }),
		sum(func(r *siteResult) int { return len(r.agentOpen) }), sum(func(r *siteResult) int { return r.intervalsOpen }),
		sum(func(r *siteResult) int { return len(r.ghosts) }), sum(func(r *siteResult) int { return len(r.unshown) }))
	codes := map[string]int{}
	for _, r := range res.sites {
		for c, n := range r.raisedByCode {
			codes[c] += n
		}
	}
	fmt.Fprintf(&b, "  raised: %s\n", countList(codes))
	fmt.Fprintf(&b, "  raised and cleared while central could not see them (no interval): %d\n", sum(func(r *siteResult) int { return r.neverInCentral }))
	fmt.Fprintf(&b, "%-34s %6d\n", "scans made", sum(func(r *siteResult) int { return r.scans }))
	var oldest time.Duration
	for _, r := range res.sites {
		oldest = max(oldest, r.oldest)
	}
	fmt.Fprintf(&b, "  expired %d; still in the inboxes %d (oldest %v, retention %v), older than the retention %d\n",
		res.expired(), sum(func(r *siteResult) int { return r.inInbox }), oldest.Round(time.Second), retention,
		sum(func(r *siteResult) int { return len(r.tooOld) }))

	fmt.Fprintf(&b, "\nper agent:\n")
	for _, r := range res.sites {
		fmt.Fprintf(&b, "  %s: submissions %d accepted, %d refused %s, %d agent down, %d unanswered (%d of them printed); %d partial uploads\n",
			r.agent, r.outcomes[accepted], r.outcomes[refused], statusList(r.statuses), r.outcomes[down], r.outcomes[unknown], r.unknownPrinted, r.partial)
		fmt.Fprintf(&b, "  %s: presses %s; copies printed %d (copy.completed %d, copy jobs failed %d); scans failed %s\n",
			r.agent, countList(r.presses), r.copies, r.copyCompleted, r.copyFailed, countList(r.scanFail))
		fmt.Fprintf(&b, "  %s: print usage events %d for %d jobs printed; events %d (kept %d, central %d), open faults %v\n",
			r.agent, r.printEvents, r.printed, r.recorded, r.recorded-r.pruned, r.inCentral, r.agentOpen)
		fmt.Fprintf(&b, "  %s: since its last start: %d connection(s) to the broker, %d resend(s) of unacked events\n",
			r.agent, r.connects, r.resends)
		if len(r.fullDisk) > 0 {
			fmt.Fprintf(&b, "  %s: submissions on the full disk: %s\n", r.agent, countList(r.fullDisk))
		}
	}
	if testing.Verbose() {
		fmt.Print(b.String())
	} else {
		t.Log(b.String())
	}
}

func countList(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func statusList(m map[goipp.Status]int) string {
	c := map[string]int{}
	for st, n := range m {
		name := st.String()
		if st == goipp.StatusOk {
			name = "accepted"
		}
		c[name] += n
	}
	return "(" + countList(c) + ")"
}

// expired is how many scans the inboxes no longer hold.
func (res *results) expired() int {
	n := 0
	for _, r := range res.sites {
		n += r.scans - r.inInbox
	}
	return n
}

// check fails the test for everything lost, duplicated or left behind.
func (res *results) check(t *testing.T) {
	// The traffic lasted past the retention: the first scans are gone.
	if res.expired() == 0 {
		t.Errorf("no scan expired: the retention was not exercised")
	}
	for _, r := range res.sites {
		fail := func(what string, list []string) {
			if len(list) > 0 {
				t.Errorf("%s: %d %s: %v", r.agent, len(list), what, clip(list))
			}
		}
		fail("accepted jobs never printed", r.lostJobs)
		fail("jobs printed more than once", r.doubledJobs)
		fail("upstream jobs printed more than once", r.doubledUp)
		fail("refused jobs printed all the same", r.refusedPrinted)
		fail("documents printed with a mark never submitted", r.strangers)
		// Each printed job has exactly one usage event (package printq
		// records it once per job UUID, see outbox.RecordOnce), when the
		// outbox still holds them all.
		if r.pruned == 0 && r.printEvents != r.printed {
			t.Errorf("%s: %d print usage events for %d jobs printed", r.agent, r.printEvents, r.printed)
		}
		if r.copyCompleted > r.copies {
			t.Errorf("%s: %d copies completed, %d printed", r.agent, r.copyCompleted, r.copies)
		}
		fail("outbox events missing in central", r.lostEvents)
		fail("events in central more than once", r.dupEvents)
		fail("events in central the agent never recorded", r.extraEvents)
		fail("faults open in central, cleared at the agent", r.ghosts)
		fail("faults open at the agent, not shown in central", r.unshown)
		fail("faults raised, neither cleared nor open", r.unpaired)
		fail("scans older than the retention", r.tooOld)
		// On the full disk a submission is refused with a temporary
		// error, or (when the agent freed a page meanwhile) accepted and
		// then counted with the others.
		temporary := goipp.StatusErrorTemporary.String()
		for o, n := range r.fullDisk {
			if o != "accepted" && o != temporary {
				t.Errorf("%s: %d submission(s) on the full disk got %s, want %s", r.agent, n, o, temporary)
			}
		}
		if len(r.fullDisk) > 0 && r.fullDisk[temporary] == 0 {
			t.Errorf("%s: no submission refused on the full disk: %s", r.agent, countList(r.fullDisk))
		}
		if r.printed == 0 || r.recorded == 0 {
			t.Errorf("%s: nothing printed (%d) or recorded (%d): the scenario did not run", r.agent, r.printed, r.recorded)
		}
	}
}

func clip(list []string) []string {
	if len(list) > 10 {
		return append(list[:10:10], fmt.Sprintf("and %d more", len(list)-10))
	}
	return list
}
