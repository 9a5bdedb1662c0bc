package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// level is how an agent is, worst last. The fleet sorts fault before
// offline before warn before ok: a fault needs someone on site, while an
// offline agent may only have lost its network.
type level int

const (
	levelOK level = iota
	levelWarn
	levelOffline
	levelFault
)

// String is the level's name, used in CSS classes and catalogue keys.
func (l level) String() string {
	return [...]string{"ok", "warn", "offline", "fault"}[l]
}

// Icon is a sign shown beside the level's words, never instead of them.
func (l level) Icon() string {
	return [...]string{"✔", "⚠", "⊘", "✖"}[l]
}

// agentRow is one agent as the fleet and site pages show it.
type agentRow struct {
	Site, Agent string
	Registered  bool
	Level       level
	Version     string
	LastSeen    time.Time
	// Offline: the will came (Will, since OfflineSince), or nothing came
	// for longer than OfflineAfter (since LastSeen), or nothing ever came
	// (NeverSeen).
	Offline      bool
	Will         bool
	NeverSeen    bool
	OfflineSince time.Time
	// NoStatus: messages came, but no status yet.
	NoStatus bool
	// Faults are the faults of the latest status, worst and oldest first;
	// when Offline they are the last known ones.
	Faults []faultLine
}

// faultLine is one open fault of an agent.
type faultLine struct {
	Device   string
	Code     string
	Severity api.Severity
	Since    time.Time
	AckedBy  string
}

// Level is the fault's level.
func (f faultLine) Level() level {
	if f.Severity == api.SeverityFault {
		return levelFault
	}
	return levelWarn
}

// faultKey identifies an open fault of an agent.
type faultKey struct{ site, agent, device, code string }

// classify turns an agent's live state into a row.
func (d *Dashboard) classify(st store.AgentState, now time.Time, acked map[faultKey]string) agentRow {
	row := agentRow{
		Site: st.Site, Agent: st.Agent, Registered: st.Registered,
		Version: st.Status.Version, LastSeen: st.LastSeen,
	}
	for _, f := range st.Status.Faults {
		row.Faults = append(row.Faults, faultLine{
			Device: string(f.Device), Code: f.Code, Severity: f.Severity, Since: f.Since,
			AckedBy: acked[faultKey{st.Site, st.Agent, string(f.Device), f.Code}],
		})
	}
	slices.SortStableFunc(row.Faults, func(a, b faultLine) int {
		return cmp.Or(cmp.Compare(b.Level(), a.Level()), a.Since.Compare(b.Since), cmp.Compare(a.Code, b.Code))
	})
	statusKnown := !st.StatusAt.IsZero()
	switch {
	case st.LastSeen.IsZero() && !statusKnown:
		row.Offline, row.NeverSeen = true, true
	case statusKnown && !st.Status.Online:
		row.Offline, row.Will, row.OfflineSince = true, true, st.StatusAt
	case now.Sub(st.LastSeen) > d.o.OfflineAfter:
		row.Offline, row.OfflineSince = true, st.LastSeen
	}
	switch {
	case row.Offline:
		row.Level = levelOffline
	case !statusKnown:
		row.NoStatus, row.Level = true, levelWarn
	case st.Status.Health == api.HealthFault:
		row.Level = levelFault
	case st.Status.Health == api.HealthWarn:
		row.Level = levelWarn
	}
	return row
}

// fleetData is the fleet page's data.
type fleetData struct {
	Rows                     []agentRow
	Fault, Offline, Warn, OK int
}

// loadFleet reads and sorts every agent, worst first.
func (d *Dashboard) loadFleet(ctx context.Context) (fleetData, error) {
	states, err := d.o.Store.Fleet(ctx)
	if err != nil {
		return fleetData{}, err
	}
	acked, err := d.openAcks(ctx, store.FaultQuery{})
	if err != nil {
		return fleetData{}, err
	}
	now := d.o.Now()
	var fd fleetData
	for _, st := range states {
		row := d.classify(st, now, acked)
		fd.Rows = append(fd.Rows, row)
		switch row.Level {
		case levelFault:
			fd.Fault++
		case levelOffline:
			fd.Offline++
		case levelWarn:
			fd.Warn++
		default:
			fd.OK++
		}
	}
	slices.SortFunc(fd.Rows, func(a, b agentRow) int {
		return cmp.Or(cmp.Compare(b.Level, a.Level), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Agent, b.Agent))
	})
	return fd, nil
}

// openAcks returns who acknowledged each open fault that q selects.
func (d *Dashboard) openAcks(ctx context.Context, q store.FaultQuery) (map[faultKey]string, error) {
	open := true
	q.Open = &open
	fs, err := d.o.Store.Faults(ctx, q)
	if err != nil {
		return nil, err
	}
	acked := map[faultKey]string{}
	for _, f := range fs {
		if f.AckedBy != "" {
			acked[faultKey{f.Site, f.Agent, string(f.Device), f.Code}] = f.AckedBy
		}
	}
	return acked, nil
}

// fleet serves GET /: every agent, worst first.
func (d *Dashboard) fleet(w http.ResponseWriter, r *http.Request) {
	d.showFleet(w, r, "layout")
}

// fleetLive serves GET /fleet/live: the live part of the fleet page.
func (d *Dashboard) fleetLive(w http.ResponseWriter, r *http.Request) {
	d.showFleet(w, r, "live")
}

func (d *Dashboard) showFleet(w http.ResponseWriter, r *http.Request, tmpl string) {
	p := d.newPage(r, "fleet.title", "fleet")
	live := tmpl == "live"
	if live {
		if body, ok := d.fleetCache.get(p.lang, p.Now); ok {
			writeHTML(w, body)
			return
		}
	}
	gen := d.fleetCache.generation()
	ctx, cancel := storeCtx(r)
	defer cancel()
	fd, err := d.loadFleet(ctx)
	if err != nil {
		d.storeFailed(w, r, "fleet", err)
		return
	}
	p.Live = "/fleet/live"
	p.Data = fd
	if !live {
		d.renderTemplate(w, http.StatusOK, "fleet", tmpl, p)
		return
	}
	var buf bytes.Buffer
	if err := d.pages["fleet"].ExecuteTemplate(&buf, tmpl, p); err != nil {
		d.log.Error("dashboard: rendering a page", "page", "fleet", "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.fleetCache.put(p.lang, gen, p.Now, buf.Bytes())
	writeHTML(w, buf.Bytes())
}

// fleetCacheTTL is how long a rendered fleet fragment is served again
// while nothing changes: its durations ("depuis 2 h 10") age, and agents
// fall offline with time alone.
const fleetCacheTTL = 2 * time.Second

// fragmentCache keeps the live part of the fleet page, per language, until
// the next change or fleetCacheTTL: every open fleet page fetches it after
// each update, and it is the same for every reader of a language (it holds
// no user name, token or button).
type fragmentCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every change
	entries map[string]fragment
}

type fragment struct {
	gen  uint64
	at   time.Time
	body []byte
}

// invalidate records a change.
func (c *fragmentCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}

// generation returns the change count, read before loading what a
// fragment shows, so that a change during the rendering is not lost.
func (c *fragmentCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *fragmentCache) get(lang string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.entries[lang]
	if !ok || f.gen != c.gen || now.Sub(f.at) >= fleetCacheTTL || now.Before(f.at) {
		return nil, false
	}
	return f.body, true
}

func (c *fragmentCache) put(lang string, gen uint64, now time.Time, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]fragment{}
	}
	if e, ok := c.entries[lang]; !ok || gen >= e.gen {
		c.entries[lang] = fragment{gen: gen, at: now, body: body}
	}
}
