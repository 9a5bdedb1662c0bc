package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/postgres/*.sql
var postgresFS embed.FS

// postgresMigrationLock is the key of the advisory lock that serialises
// migrations of replicas opening the same database at once.
const postgresMigrationLock int64 = 0x72656c616973 // "relais"

// postgresDialect stores times as TIMESTAMPTZ and days as DATE.
var postgresDialect = &dialect{
	name: "postgres",
	time: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return micro(t)
	},
	day: func(d day) any { return d.time() },
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		// serialization_failure, deadlock_detected
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
	migrations: func() fs.FS {
		f, err := fs.Sub(postgresFS, "migrations/postgres")
		if err != nil {
			panic(err)
		}
		return f
	}(),
	lockMigrations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", postgresMigrationLock),
}

// openPostgres connects a pgx pool to the database at url and migrates it.
// The store's SQL runs through database/sql on top of the pool (pgx's
// stdlib adapter), shared with SQLite; the pool's size and health checks
// are pgxpool's, set by the URL's pool_* parameters.
//
// Concurrency: transactions run at READ COMMITTED. Ingest and SetStatus
// first upsert the agent's agent_state row, which locks it until commit, so
// that the calls of one agent (from several replicas of central) run one
// after the other; rollup rows are then updated in a fixed order, so that
// two agents of one site cannot deadlock. Deadlocks and serialisation
// failures are retried all the same.
func openPostgres(ctx context.Context, url string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors leave the password out.
		return nil, fmt.Errorf("store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	sdb := stdlib.OpenDBFromPool(pool)
	s := &db{w: sdb, r: sdb, d: postgresDialect, closeFn: func() error { pool.Close(); return nil }}
	ms, err := loadMigrations(s.d.migrations)
	if err == nil {
		err = s.migrate(ctx, ms)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	return s, nil
}
