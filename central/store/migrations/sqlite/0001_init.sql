-- Schema version 1 (SQLite). Times are INTEGER microseconds since the Unix
-- epoch, UTC; days are INTEGER days since 1970-01-01; NULL is "not yet".

-- Registered agents and the hash of their MQTT password.
CREATE TABLE agents (
	site        TEXT NOT NULL,
	agent       TEXT NOT NULL,
	secret_hash BLOB NOT NULL,
	created     INTEGER NOT NULL,
	PRIMARY KEY (site, agent)
) WITHOUT ROWID;

-- Every agent central knows of, registered or not: its live state and its
-- ingest watermark. upto: every seq of the current epoch up to it is
-- committed; epoch counts seq restarts; gaps is the number of rows in
-- seq_pending; events the number of events stored.
CREATE TABLE agent_state (
	site       TEXT NOT NULL,
	agent      TEXT NOT NULL,
	status     TEXT,
	status_at  INTEGER,
	metrics    TEXT,
	metrics_at INTEGER,
	last_seen  INTEGER,
	upto       INTEGER NOT NULL DEFAULT 0,
	epoch      INTEGER NOT NULL DEFAULT 0,
	gaps       INTEGER NOT NULL DEFAULT 0,
	events     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (site, agent)
);

-- Usage events as reported, unique by id per agent.
CREATE TABLE events (
	site     TEXT NOT NULL,
	agent    TEXT NOT NULL,
	id       TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	ts       INTEGER NOT NULL,
	type     TEXT NOT NULL,
	body     TEXT NOT NULL,
	received INTEGER NOT NULL,
	UNIQUE (site, agent, id)
);

-- Seqs committed above the watermark, behind a gap.
CREATE TABLE seq_pending (
	site  TEXT NOT NULL,
	agent TEXT NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (site, agent, seq)
) WITHOUT ROWID;

-- The latest wifi.daily of each agent and day.
CREATE TABLE wifi_daily (
	site     TEXT NOT NULL,
	agent    TEXT NOT NULL,
	day      INTEGER NOT NULL,
	visitors INTEGER NOT NULL,
	ts       INTEGER NOT NULL,
	PRIMARY KEY (site, agent, day)
) WITHOUT ROWID;

-- Usage rollups per site and day, ISO week (start: the Monday) and month
-- (start: the first), maintained by ingest.
CREATE TABLE usage_day (
	start         INTEGER NOT NULL,
	site          TEXT NOT NULL,
	print_jobs    INTEGER NOT NULL DEFAULT 0,
	pages         INTEGER NOT NULL DEFAULT 0,
	sheets        INTEGER NOT NULL DEFAULT 0,
	copy_jobs     INTEGER NOT NULL DEFAULT 0,
	copy_pages    INTEGER NOT NULL DEFAULT 0,
	scans         INTEGER NOT NULL DEFAULT 0,
	scan_pages    INTEGER NOT NULL DEFAULT 0,
	failed_prints INTEGER NOT NULL DEFAULT 0,
	wifi_visitors INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (start, site)
) WITHOUT ROWID;
CREATE INDEX usage_day_site ON usage_day (site, start);

CREATE TABLE usage_week (
	start         INTEGER NOT NULL,
	site          TEXT NOT NULL,
	print_jobs    INTEGER NOT NULL DEFAULT 0,
	pages         INTEGER NOT NULL DEFAULT 0,
	sheets        INTEGER NOT NULL DEFAULT 0,
	copy_jobs     INTEGER NOT NULL DEFAULT 0,
	copy_pages    INTEGER NOT NULL DEFAULT 0,
	scans         INTEGER NOT NULL DEFAULT 0,
	scan_pages    INTEGER NOT NULL DEFAULT 0,
	failed_prints INTEGER NOT NULL DEFAULT 0,
	wifi_visitors INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (start, site)
) WITHOUT ROWID;
CREATE INDEX usage_week_site ON usage_week (site, start);

CREATE TABLE usage_month (
	start         INTEGER NOT NULL,
	site          TEXT NOT NULL,
	print_jobs    INTEGER NOT NULL DEFAULT 0,
	pages         INTEGER NOT NULL DEFAULT 0,
	sheets        INTEGER NOT NULL DEFAULT 0,
	copy_jobs     INTEGER NOT NULL DEFAULT 0,
	copy_pages    INTEGER NOT NULL DEFAULT 0,
	scans         INTEGER NOT NULL DEFAULT 0,
	scan_pages    INTEGER NOT NULL DEFAULT 0,
	failed_prints INTEGER NOT NULL DEFAULT 0,
	wifi_visitors INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (start, site)
) WITHOUT ROWID;
CREATE INDEX usage_month_site ON usage_month (site, start);

-- Fault intervals; at most one open per site, agent, device and code.
CREATE TABLE faults (
	id       INTEGER PRIMARY KEY,
	site     TEXT NOT NULL,
	agent    TEXT NOT NULL,
	device   TEXT NOT NULL,
	code     TEXT NOT NULL,
	severity TEXT NOT NULL,
	since    INTEGER NOT NULL,
	cleared  INTEGER,
	acked_by TEXT,
	acked_at INTEGER
);
CREATE UNIQUE INDEX faults_open ON faults (site, agent, device, code) WHERE cleared IS NULL;
CREATE INDEX faults_since ON faults (since);
CREATE INDEX faults_open_since ON faults (since) WHERE cleared IS NULL;
CREATE INDEX faults_agent ON faults (site, agent, since);

-- Remote commands and their results.
CREATE TABLE commands (
	site    TEXT NOT NULL,
	agent   TEXT NOT NULL,
	req     TEXT NOT NULL,
	name    TEXT NOT NULL,
	by_user TEXT NOT NULL,
	at      INTEGER NOT NULL,
	done    INTEGER,
	ok      INTEGER NOT NULL DEFAULT 0,
	error   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (site, agent, req)
);
CREATE INDEX commands_at ON commands (site, agent, at);

-- Dashboard users, their sessions and API tokens.
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	role          TEXT NOT NULL,
	password_hash BLOB NOT NULL,
	created       INTEGER NOT NULL
);
CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	username   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires);
CREATE TABLE tokens (
	token_hash BLOB PRIMARY KEY,
	name       TEXT NOT NULL,
	role       TEXT NOT NULL,
	created    INTEGER NOT NULL
);

-- Alert incidents; at most one open per key.
CREATE TABLE incidents (
	id           INTEGER PRIMARY KEY,
	incident_key TEXT NOT NULL,
	site         TEXT NOT NULL,
	agent        TEXT NOT NULL,
	kind         TEXT NOT NULL,
	detail       TEXT NOT NULL,
	opened       INTEGER NOT NULL,
	closed       INTEGER
);
CREATE UNIQUE INDEX incidents_open ON incidents (incident_key) WHERE closed IS NULL;

-- Messages refused by ingest.
CREATE TABLE rejections (
	reason  TEXT NOT NULL,
	site    TEXT NOT NULL,
	agent   TEXT NOT NULL,
	total   INTEGER NOT NULL,
	last_at INTEGER NOT NULL,
	PRIMARY KEY (reason, site, agent)
) WITHOUT ROWID;
