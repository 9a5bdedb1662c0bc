// Package store keeps everything relais-central knows: the agents and their
// MQTT credentials, the usage events they reported (unique by id, with the
// per-agent watermark that central acks), their live status and latest
// metrics, fault intervals, daily usage rollups, remote commands and their
// results, dashboard users and sessions, and alert incidents. One interface,
// Store, has two implementations behind Open: SQLite (modernc.org/sqlite, WAL)
// for a single machine and PostgreSQL (pgx v5) for a fleet. Both migrate their
// schema to the current version when opened, and both pass the same test suite.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Errors.
var (
	// ErrNotFound: no such agent, user, session, fault or command.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the user or agent already exists (Add only).
	ErrExists = errors.New("store: already exists")
)

// Store is central's storage. Its methods are safe for concurrent use.
// Times are stored and returned in UTC.
type Store interface {
	// AddAgent registers an agent with the hash of its MQTT password;
	// ErrExists when the site and agent pair is registered already.
	// SetAgentSecret replaces the hash (a new password).
	AddAgent(ctx context.Context, a Agent) error
	SetAgentSecret(ctx context.Context, site, agent string, secretHash []byte) error
	// Agent returns one registered agent; ErrNotFound when there is none.
	Agent(ctx context.Context, site, agent string) (Agent, error)

	// Ingest commits the events of one agent, idempotently by event id (an
	// id seen before is counted in Duplicates and changes nothing), updates
	// the daily rollups of the inserted ones and the agent's last-seen time,
	// all in one transaction, and returns the agent's new watermark: the
	// highest seq S such that every seq from 1 (or from the agent's first
	// seq after a reset) to S is committed. Central acks {"upto": S}.
	// An agent whose seq restarts (an event with seq 1 and a new id while
	// the watermark is above 1: the agent's outbox was lost) gets its
	// watermark reset.
	Ingest(ctx context.Context, site, agent string, events []api.Event, at time.Time) (IngestResult, error)
	// SetStatus records a status message (retained birth or the will) as
	// the agent's live state. Faults listed and not open are opened with
	// their Since; open faults no longer listed are closed at at. An
	// offline status (the will) closes nothing: the faults are unknown,
	// not cleared.
	SetStatus(ctx context.Context, site, agent string, s api.Status, at time.Time) error
	// SetMetrics records the latest metrics snapshot and last-seen time.
	SetMetrics(ctx context.Context, site, agent string, m api.Metrics, at time.Time) error

	// Fleet returns the live state of every registered agent and of every
	// agent that reported without being registered (external broker).
	Fleet(ctx context.Context) ([]AgentState, error)
	// AgentState returns the live state of one agent; ErrNotFound when
	// central knows nothing of it.
	AgentState(ctx context.Context, site, agent string) (AgentState, error)

	// Faults returns fault intervals, newest first.
	Faults(ctx context.Context, q FaultQuery) ([]FaultRecord, error)
	// AckFault marks a fault acknowledged by a user; ErrNotFound when the
	// id is unknown. Acknowledging twice keeps the first.
	AckFault(ctx context.Context, id int64, by string, at time.Time) error

	// Usage sums the daily rollups per site and period (day, ISO week
	// starting Monday, or calendar month) for the days From to To
	// inclusive, for the given sites (all when empty). It never reads raw
	// events.
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)

	// AddCommand records a command sent to an agent; CommandDone records
	// its result (ErrNotFound for an unknown req, which is not recorded);
	// Commands lists the latest of one agent, newest first.
	AddCommand(ctx context.Context, c Command) error
	CommandDone(ctx context.Context, site, agent string, r api.CommandResult, at time.Time) error
	Commands(ctx context.Context, site, agent string, limit int) ([]Command, error)

	// Dashboard users. AddUser fails with ErrExists; SetPassword and
	// User with ErrNotFound.
	AddUser(ctx context.Context, u User) error
	SetPassword(ctx context.Context, name string, hash []byte) error
	User(ctx context.Context, name string) (User, error)
	Users(ctx context.Context) ([]User, error)

	// Sessions, by the SHA-256 of their token (the token itself is never
	// stored). Session returns ErrNotFound for an unknown or expired one.
	AddSession(ctx context.Context, s Session) error
	Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error

	// API tokens, by the SHA-256 of the token.
	AddToken(ctx context.Context, t Token) error
	Token(ctx context.Context, tokenHash []byte) (Token, error)

	// Incidents are what alerts are sent about, once each: OpenIncident
	// returns false when the same key is open already; CloseIncident
	// returns false when none was open.
	OpenIncident(ctx context.Context, i Incident) (bool, error)
	CloseIncident(ctx context.Context, key string, at time.Time) (Incident, bool, error)
	OpenIncidents(ctx context.Context) ([]Incident, error)

	// Rejected counts a message refused by ingest, by reason
	// ("too-large", "malformed", "invalid", "topic"); Rejections returns
	// the totals.
	Rejected(ctx context.Context, site, agent, reason string, at time.Time) error
	Rejections(ctx context.Context) (map[string]int64, error)

	Close() error
}

// Agent is a registered agent.
type Agent struct {
	Site, Agent string
	// SecretHash is the hash of the agent's MQTT password (see
	// central/broker), never the password.
	SecretHash []byte
	Created    time.Time
}

// IngestResult says what Ingest did.
type IngestResult struct {
	Inserted, Duplicates int
	// Upto is the agent's watermark after the call: every seq up to it is
	// committed. 0 when seq 1 has not arrived.
	Upto uint64
}

// AgentState is the live state of one agent.
type AgentState struct {
	Site, Agent string
	Registered  bool
	// Status is the latest status message; Status.Online false with a
	// zero Status.Time when none came or the will was published.
	Status   api.Status
	StatusAt time.Time
	// Metrics is the latest snapshot (zero Time when none came).
	Metrics   api.Metrics
	MetricsAt time.Time
	// LastSeen is the time of the latest message of any kind.
	LastSeen time.Time
	// Upto is the ingest watermark; Events the number of events stored.
	Upto   uint64
	Events int64
}

// FaultQuery selects fault intervals. Zero fields select everything.
type FaultQuery struct {
	Site, Agent string
	// Open: nil for all, true for open faults only, false for closed only.
	Open *bool
	// Since selects faults open at or after it, or still open.
	Since time.Time
	Limit int // 0 means 1000
}

// FaultRecord is one interval of one fault of one agent's device.
type FaultRecord struct {
	ID          int64
	Site, Agent string
	Device      api.Device
	Code        string
	Severity    api.Severity
	Since       time.Time
	// Cleared is zero while the fault is open.
	Cleared time.Time
	// AckedBy and AckedAt are set once a user acknowledged it.
	AckedBy string
	AckedAt time.Time
}

// Open reports whether the fault has not been cleared.
func (f FaultRecord) Open() bool { return f.Cleared.IsZero() }

// Period is how usage rows are grouped.
type Period string

// Periods.
const (
	Day   Period = "day"
	Week  Period = "week"
	Month Period = "month"
)

// UsageQuery selects usage rollups. From and To are days (the time of day is
// ignored) in the site's local calendar, as the agents report them.
type UsageQuery struct {
	From, To time.Time
	Sites    []string
	Period   Period
}

// UsageRow is the usage of one site over one period starting on Start.
type UsageRow struct {
	Site  string
	Start time.Time // first day of the period
	// Pages printed from PCs and phones (impressions); Sheets of paper
	// used by prints and copies.
	PrintJobs, Pages, Sheets int64
	CopyJobs, CopyPages      int64
	Scans, ScanPages         int64
	FailedPrints             int64
	// WiFiVisitors sums the daily distinct visitors of each agent.
	WiFiVisitors int64
}

// Command is a remote action sent to an agent and its result.
type Command struct {
	Req         string
	Site, Agent string
	Name        string // api.CommandIdentify ...
	By          string // user
	At          time.Time
	// Done is zero until the result arrives.
	Done  time.Time
	OK    bool
	Error string
}

// Role is what a dashboard user may do.
type Role string

// Roles.
const (
	Admin      Role = "admin"      // everything, including users
	Technician Role = "technician" // health, faults and remote actions
	Manager    Role = "manager"    // usage and health, no actions
)

// User is a dashboard user.
type User struct {
	Name         string
	Role         Role
	PasswordHash []byte
	Created      time.Time
}

// Session is a logged-in dashboard session.
type Session struct {
	TokenHash []byte
	User      string
	CSRF      string
	Created   time.Time
	Expires   time.Time
}

// Token is an API token for scripts (Prometheus scrapes, exports).
type Token struct {
	TokenHash []byte
	Name      string
	Role      Role
	Created   time.Time
}

// Incident is one alert subject: an agent offline, or one fault open too
// long. Key identifies it, such as "offline/site/agent" or
// "fault/site/agent/printer/media-empty".
type Incident struct {
	Key         string
	Site, Agent string
	Kind        string // "offline" or "fault"
	Detail      string // the fault code, for "fault"
	Opened      time.Time
	Closed      time.Time
}
