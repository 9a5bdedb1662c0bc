package outbox

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to i+1 (PRAGMA
// user_version). Append new steps; never edit a released one.
var migrations = []string{
	// 1: the first schema.
	`
-- One row: the delivery state and the accounted sizes. last_seq is the
-- highest seq ever assigned, so seqs are never reused after deletes.
CREATE TABLE state (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	last_seq        INTEGER NOT NULL, -- highest seq assigned
	last_ack        INTEGER NOT NULL, -- every seq <= last_ack is delivered
	last_ms         INTEGER NOT NULL, -- ts of the last event, Unix ms
	pending_bytes   INTEGER NOT NULL, -- accounted size of undelivered events
	delivered_bytes INTEGER NOT NULL, -- of delivered events kept for Recent
	metrics_bytes   INTEGER NOT NULL  -- of metrics snapshots
);
INSERT INTO state VALUES (1, 0, 0, 0, 0, 0, 0);

-- Events as their JSON encoding; size is len(body) + RowOverhead.
CREATE TABLE events (
	seq  INTEGER PRIMARY KEY,
	size INTEGER NOT NULL,
	body TEXT NOT NULL
);

-- Open faults.
CREATE TABLE faults (
	device   TEXT NOT NULL,
	code     TEXT NOT NULL,
	severity TEXT NOT NULL,
	since_ms INTEGER NOT NULL,
	PRIMARY KEY (device, code)
) WITHOUT ROWID;

-- Usage counters per local day (YYYY-MM-DD) and event type.
CREATE TABLE counters (
	day      TEXT NOT NULL,
	type     TEXT NOT NULL,
	count    INTEGER NOT NULL,
	pages    INTEGER NOT NULL,
	sheets   INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	visitors INTEGER NOT NULL,
	PRIMARY KEY (day, type)
) WITHOUT ROWID;

-- Metrics snapshots waiting to be sent; AUTOINCREMENT so that an id the
-- publisher has seen is never given to another snapshot.
CREATE TABLE metrics (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	size INTEGER NOT NULL,
	body BLOB NOT NULL
);
`,
	// 2: keys of events recorded once (RecordOnce), such as a print
	// job's, so that an event is not recorded again after a crash
	// between its record and the caller's own bookkeeping.
	`CREATE TABLE recorded_keys (
		key TEXT PRIMARY KEY,
		seq INTEGER NOT NULL
	) WITHOUT ROWID;
`,
}

// migrate brings the schema to len(migrations), one transaction per step,
// and refuses a file written by a newer version.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, v int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return err
	}
	return tx.Commit()
}
