package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// maxHash bounds a stored password or secret hash.
const maxHash = 1024

// checkAgent checks a site and agent pair.
func checkAgent(site, agent string) error {
	if !api.ValidID(site) {
		return fmt.Errorf("store: bad site id %q: want 1 to 63 of a-z, 0-9 and -", clip(site))
	}
	if !api.ValidID(agent) {
		return fmt.Errorf("store: bad agent id %q: want 1 to 63 of a-z, 0-9 and -", clip(agent))
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func checkHash(what string, h []byte) error {
	if len(h) == 0 || len(h) > maxHash {
		return fmt.Errorf("store: %s of %d bytes: want 1 to %d", what, len(h), maxHash)
	}
	return nil
}

// AddAgent implements Store. The agent is known from then on: Fleet and
// AgentState list it, offline, until it reports.
func (s *db) AddAgent(ctx context.Context, a Agent) error {
	if err := checkAgent(a.Site, a.Agent); err != nil {
		return err
	}
	if err := checkHash("secret hash", a.SecretHash); err != nil {
		return err
	}
	if a.Created.IsZero() {
		return fmt.Errorf("store: AddAgent: zero Created time")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO agents (site, agent, secret_hash, created) VALUES ($1, $2, $3, $4)
			ON CONFLICT (site, agent) DO NOTHING`, a.Site, a.Agent, a.SecretHash, s.d.time(a.Created)))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrExists
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO agent_state (site, agent) VALUES ($1, $2)
			ON CONFLICT (site, agent) DO NOTHING`, a.Site, a.Agent)
		return err
	})
	return s.wrap("AddAgent", err)
}

// SetAgentSecret implements Store.
func (s *db) SetAgentSecret(ctx context.Context, site, agent string, secretHash []byte) error {
	if err := checkAgent(site, agent); err != nil {
		return err
	}
	if err := checkHash("secret hash", secretHash); err != nil {
		return err
	}
	n, err := affected(s.w.ExecContext(ctx, "UPDATE agents SET secret_hash = $3 WHERE site = $1 AND agent = $2", site, agent, secretHash))
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return s.wrap("SetAgentSecret", err)
}

// Agent implements Store.
func (s *db) Agent(ctx context.Context, site, agent string) (Agent, error) {
	a := Agent{Site: site, Agent: agent}
	err := s.r.QueryRowContext(ctx, "SELECT secret_hash, created FROM agents WHERE site = $1 AND agent = $2",
		site, agent).Scan(&a.SecretHash, timeCol{&a.Created})
	if err == sql.ErrNoRows {
		return Agent{}, ErrNotFound
	}
	if err != nil {
		return Agent{}, s.wrap("Agent", err)
	}
	return a, nil
}

// SetStatus implements Store. A fault listed again while open keeps its
// Since and takes the listed severity.
func (s *db) SetStatus(ctx context.Context, site, agent string, st api.Status, at time.Time) error {
	if err := checkAgent(site, agent); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("store: SetStatus: %w", err)
	}
	if at.IsZero() {
		return fmt.Errorf("store: SetStatus: zero time")
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store: SetStatus: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_state (site, agent, status, status_at, last_seen) VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (site, agent) DO UPDATE SET status = excluded.status, status_at = excluded.status_at,
				last_seen = `+latest("agent_state.last_seen", "excluded.last_seen"),
			site, agent, string(body), s.d.time(at)); err != nil {
			return err
		}
		if !st.Online {
			return nil // the will: faults unknown, not cleared
		}
		return s.syncFaults(ctx, tx, site, agent, st.Faults, at)
	})
	return s.wrap("SetStatus", err)
}

// faultKey identifies an open fault of an agent.
type faultKey struct {
	device api.Device
	code   string
}

// syncFaults opens the listed faults that are not open and closes the open
// ones not listed, at at.
func (s *db) syncFaults(ctx context.Context, tx *sql.Tx, site, agent string, listed []api.Fault, at time.Time) error {
	type open struct {
		id       int64
		severity api.Severity
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, device, code, severity FROM faults
		WHERE site = $1 AND agent = $2 AND cleared IS NULL`, site, agent)
	if err != nil {
		return err
	}
	opened := map[faultKey]open{}
	for rows.Next() {
		var k faultKey
		var o open
		if err := rows.Scan(&o.id, &k.device, &k.code, &o.severity); err != nil {
			rows.Close()
			return err
		}
		opened[k] = o
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[faultKey]bool{}
	for _, f := range listed {
		k := faultKey{f.Device, f.Code}
		want[k] = true
		o, ok := opened[k]
		switch {
		case !ok:
			_, err = tx.ExecContext(ctx, `INSERT INTO faults (site, agent, device, code, severity, since) VALUES ($1, $2, $3, $4, $5, $6)`,
				site, agent, string(f.Device), f.Code, string(f.Severity), s.d.time(f.Since))
		case o.severity != f.Severity:
			_, err = tx.ExecContext(ctx, "UPDATE faults SET severity = $2 WHERE id = $1", o.id, string(f.Severity))
		}
		if err != nil {
			return err
		}
	}
	for k, o := range opened {
		if !want[k] {
			if _, err := tx.ExecContext(ctx, "UPDATE faults SET cleared = $2 WHERE id = $1", o.id, s.d.time(at)); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetMetrics implements Store.
func (s *db) SetMetrics(ctx context.Context, site, agent string, m api.Metrics, at time.Time) error {
	if err := checkAgent(site, agent); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("store: SetMetrics: %w", err)
	}
	if at.IsZero() {
		return fmt.Errorf("store: SetMetrics: zero time")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: SetMetrics: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO agent_state (site, agent, metrics, metrics_at, last_seen) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (site, agent) DO UPDATE SET metrics = excluded.metrics, metrics_at = excluded.metrics_at,
			last_seen = `+latest("agent_state.last_seen", "excluded.last_seen"),
		site, agent, string(body), s.d.time(at))
	return s.wrap("SetMetrics", err)
}

// stateSQL selects AgentStates; the caller adds WHERE and ORDER BY.
const stateSQL = `SELECT st.site, st.agent, a.site IS NOT NULL, st.status, st.status_at, st.metrics, st.metrics_at,
	st.last_seen, st.upto, st.events
	FROM agent_state st LEFT JOIN agents a ON a.site = st.site AND a.agent = st.agent`

// scanState scans a row of stateSQL.
func scanState(row interface{ Scan(...any) error }) (AgentState, error) {
	var a AgentState
	var status, metrics []byte
	var upto int64
	if err := row.Scan(&a.Site, &a.Agent, &a.Registered, jsonCol{&status}, timeCol{&a.StatusAt},
		jsonCol{&metrics}, timeCol{&a.MetricsAt}, timeCol{&a.LastSeen}, &upto, &a.Events); err != nil {
		return AgentState{}, err
	}
	a.Upto = uint64(upto)
	if status != nil {
		if err := json.Unmarshal(status, &a.Status); err != nil {
			return AgentState{}, fmt.Errorf("status of %s/%s: %w", a.Site, a.Agent, err)
		}
	}
	if metrics != nil {
		if err := json.Unmarshal(metrics, &a.Metrics); err != nil {
			return AgentState{}, fmt.Errorf("metrics of %s/%s: %w", a.Site, a.Agent, err)
		}
	}
	return a, nil
}

// Fleet implements Store, ordered by site and agent.
func (s *db) Fleet(ctx context.Context) ([]AgentState, error) {
	rows, err := s.r.QueryContext(ctx, stateSQL+" ORDER BY st.site, st.agent")
	if err != nil {
		return nil, s.wrap("Fleet", err)
	}
	defer rows.Close()
	var fleet []AgentState
	for rows.Next() {
		a, err := scanState(rows)
		if err != nil {
			return nil, s.wrap("Fleet", err)
		}
		fleet = append(fleet, a)
	}
	return fleet, s.wrap("Fleet", rows.Err())
}

// AgentState implements Store.
func (s *db) AgentState(ctx context.Context, site, agent string) (AgentState, error) {
	a, err := scanState(s.r.QueryRowContext(ctx, stateSQL+" WHERE st.site = $1 AND st.agent = $2", site, agent))
	if errors.Is(err, sql.ErrNoRows) {
		return AgentState{}, ErrNotFound
	}
	return a, s.wrap("AgentState", err)
}

// Fault query limits.
const (
	defaultFaults = 1000
	maxFaults     = 10000
)

// Faults implements Store. A fault is selected by Since when it was open
// at any time at or after Since: cleared at or after it, or still open.
// The default and largest Limit are 1000 and 10000.
func (s *db) Faults(ctx context.Context, q FaultQuery) ([]FaultRecord, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("store: Faults: negative limit %d", limit)
	case limit == 0:
		limit = defaultFaults
	case limit > maxFaults:
		limit = maxFaults
	}
	p := s.params()
	query := `SELECT id, site, agent, device, code, severity, since, cleared, acked_by, acked_at FROM faults WHERE 1 = 1`
	if q.Site != "" {
		query += " AND site = " + p.add(q.Site)
	}
	if q.Agent != "" {
		query += " AND agent = " + p.add(q.Agent)
	}
	if q.Open != nil {
		if *q.Open {
			query += " AND cleared IS NULL"
		} else {
			query += " AND cleared IS NOT NULL"
		}
	}
	if !q.Since.IsZero() {
		query += " AND (cleared IS NULL OR cleared >= " + p.add(s.d.time(q.Since)) + ")"
	}
	query += " ORDER BY since DESC, id DESC LIMIT " + p.add(limit)
	rows, err := s.r.QueryContext(ctx, query, p.args...)
	if err != nil {
		return nil, s.wrap("Faults", err)
	}
	defer rows.Close()
	var out []FaultRecord
	for rows.Next() {
		var f FaultRecord
		var by sql.NullString
		if err := rows.Scan(&f.ID, &f.Site, &f.Agent, &f.Device, &f.Code, &f.Severity, timeCol{&f.Since},
			timeCol{&f.Cleared}, &by, timeCol{&f.AckedAt}); err != nil {
			return nil, s.wrap("Faults", err)
		}
		f.AckedBy = by.String
		out = append(out, f)
	}
	return out, s.wrap("Faults", rows.Err())
}

// AckFault implements Store.
func (s *db) AckFault(ctx context.Context, id int64, by string, at time.Time) error {
	if err := checkName("user", by); err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("store: AckFault: zero time")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, "UPDATE faults SET acked_by = $2, acked_at = $3 WHERE id = $1 AND acked_by IS NULL",
			id, by, s.d.time(at)))
		if err != nil || n > 0 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM faults WHERE id = $1", id).Scan(&one)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		return err
	})
	return s.wrap("AckFault", err)
}
