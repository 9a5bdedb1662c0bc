package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Command list limits.
const (
	defaultCommands = 50
	maxCommands     = 1000
)

// AddCommand implements Store: ErrExists when the agent has a command
// with the same Req.
func (s *db) AddCommand(ctx context.Context, c Command) error {
	if err := checkAgent(c.Site, c.Agent); err != nil {
		return err
	}
	if err := (api.Command{Name: c.Name, Req: c.Req}).Validate(); err != nil {
		return fmt.Errorf("store: AddCommand: %w", err)
	}
	if !api.ValidCommand(c.Name) {
		return fmt.Errorf("store: AddCommand: unknown command %q", clip(c.Name))
	}
	if err := checkName("user", c.By); err != nil {
		return err
	}
	if c.At.IsZero() {
		return fmt.Errorf("store: AddCommand: zero time")
	}
	n, err := affected(s.w.ExecContext(ctx, `INSERT INTO commands (site, agent, req, name, by_user, at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (site, agent, req) DO NOTHING`, c.Site, c.Agent, c.Req, c.Name, c.By, s.d.time(c.At)))
	if err == nil && n == 0 {
		err = ErrExists
	}
	return s.wrap("AddCommand", err)
}

// CommandDone implements Store. A second result for the same command (a
// redelivery) keeps the first.
func (s *db) CommandDone(ctx context.Context, site, agent string, r api.CommandResult, at time.Time) error {
	if err := checkAgent(site, agent); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("store: CommandDone: %w", err)
	}
	if at.IsZero() {
		return fmt.Errorf("store: CommandDone: zero time")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, `UPDATE commands SET done = $4, ok = $5, error = $6
			WHERE site = $1 AND agent = $2 AND req = $3 AND done IS NULL`, site, agent, r.Req, s.d.time(at), r.OK, r.Error))
		if err != nil || n > 0 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM commands WHERE site = $1 AND agent = $2 AND req = $3", site, agent, r.Req).Scan(&one)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		return err
	})
	return s.wrap("CommandDone", err)
}

// Commands implements Store: limit 0 means 50, and at most 1000 come.
func (s *db) Commands(ctx context.Context, site, agent string, limit int) ([]Command, error) {
	switch {
	case limit < 0:
		return nil, fmt.Errorf("store: Commands: negative limit %d", limit)
	case limit == 0:
		limit = defaultCommands
	case limit > maxCommands:
		limit = maxCommands
	}
	rows, err := s.r.QueryContext(ctx, `SELECT req, name, by_user, at, done, ok, error FROM commands
		WHERE site = $1 AND agent = $2 ORDER BY at DESC, req DESC LIMIT $3`, site, agent, limit)
	if err != nil {
		return nil, s.wrap("Commands", err)
	}
	defer rows.Close()
	var cs []Command
	for rows.Next() {
		c := Command{Site: site, Agent: agent}
		if err := rows.Scan(&c.Req, &c.Name, &c.By, timeCol{&c.At}, timeCol{&c.Done}, &c.OK, &c.Error); err != nil {
			return nil, s.wrap("Commands", err)
		}
		cs = append(cs, c)
	}
	return cs, s.wrap("Commands", rows.Err())
}

// Incident limits.
const (
	maxIncidentKey    = 256
	maxIncidentDetail = 256
)

// OpenIncident implements Store. Closed incidents are kept: a key can be
// opened again once closed.
func (s *db) OpenIncident(ctx context.Context, i Incident) (bool, error) {
	if i.Key == "" || len(i.Key) > maxIncidentKey {
		return false, fmt.Errorf("store: OpenIncident: key of %d bytes: want 1 to %d", len(i.Key), maxIncidentKey)
	}
	if i.Kind != "offline" && i.Kind != "fault" {
		return false, fmt.Errorf("store: OpenIncident: kind %q: want offline or fault", clip(i.Kind))
	}
	if len(i.Detail) > maxIncidentDetail || len(i.Site) > 63 || len(i.Agent) > 63 {
		return false, fmt.Errorf("store: OpenIncident: site, agent or detail too long")
	}
	if i.Opened.IsZero() {
		return false, fmt.Errorf("store: OpenIncident: zero Opened time")
	}
	n, err := affected(s.w.ExecContext(ctx, `INSERT INTO incidents (incident_key, site, agent, kind, detail, opened)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (incident_key) WHERE closed IS NULL DO NOTHING`,
		i.Key, i.Site, i.Agent, i.Kind, i.Detail, s.d.time(i.Opened)))
	return n > 0, s.wrap("OpenIncident", err)
}

const incidentColumns = "incident_key, site, agent, kind, detail, opened, closed"

func scanIncident(row interface{ Scan(...any) error }) (Incident, error) {
	var i Incident
	err := row.Scan(&i.Key, &i.Site, &i.Agent, &i.Kind, &i.Detail, timeCol{&i.Opened}, timeCol{&i.Closed})
	return i, err
}

// CloseIncident implements Store.
func (s *db) CloseIncident(ctx context.Context, key string, at time.Time) (Incident, bool, error) {
	if at.IsZero() {
		return Incident{}, false, fmt.Errorf("store: CloseIncident: zero time")
	}
	i, err := scanIncident(s.w.QueryRowContext(ctx, "UPDATE incidents SET closed = $2 WHERE incident_key = $1 AND closed IS NULL RETURNING "+
		incidentColumns, key, s.d.time(at)))
	if err == sql.ErrNoRows {
		return Incident{}, false, nil
	}
	if err != nil {
		return Incident{}, false, s.wrap("CloseIncident", err)
	}
	return i, true, nil
}

// OpenIncidents implements Store, oldest first.
func (s *db) OpenIncidents(ctx context.Context) ([]Incident, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE closed IS NULL ORDER BY opened, incident_key")
	if err != nil {
		return nil, s.wrap("OpenIncidents", err)
	}
	defer rows.Close()
	var is []Incident
	for rows.Next() {
		i, err := scanIncident(rows)
		if err != nil {
			return nil, s.wrap("OpenIncidents", err)
		}
		is = append(is, i)
	}
	return is, s.wrap("OpenIncidents", rows.Err())
}

var reasonRe = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Rejected implements Store. A site or agent that is not a valid id (the
// message's topic was not one of the contract's) is counted as "".
func (s *db) Rejected(ctx context.Context, site, agent, reason string, at time.Time) error {
	if !reasonRe.MatchString(reason) {
		return fmt.Errorf("store: Rejected: bad reason %q: want 1 to 32 of a-z, 0-9 and -", clip(reason))
	}
	if at.IsZero() {
		return fmt.Errorf("store: Rejected: zero time")
	}
	if !api.ValidID(site) {
		site = ""
	}
	if !api.ValidID(agent) {
		agent = ""
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO rejections (reason, site, agent, total, last_at) VALUES ($1, $2, $3, 1, $4)
		ON CONFLICT (reason, site, agent) DO UPDATE SET total = rejections.total + 1, last_at = excluded.last_at`,
		reason, site, agent, s.d.time(at))
	return s.wrap("Rejected", err)
}

// Rejections implements Store.
func (s *db) Rejections(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT reason, CAST(SUM(total) AS BIGINT) FROM rejections GROUP BY reason")
	if err != nil {
		return nil, s.wrap("Rejections", err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var r string
		var n int64
		if err := rows.Scan(&r, &n); err != nil {
			return nil, s.wrap("Rejections", err)
		}
		m[r] = n
	}
	return m, s.wrap("Rejections", rows.Err())
}
