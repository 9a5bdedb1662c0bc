package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/sqlite/*.sql
var sqliteFS embed.FS

// SQLite settings.
const (
	// sqliteBusyTimeout is how long a statement waits for a lock another
	// process holds (an administrator's sqlite3 shell, a backup).
	sqliteBusyTimeout = 5 * time.Second
	// sqliteReaders is the size of the read-only connection pool.
	sqliteReaders = 4
)

// sqliteDialect stores times as microseconds and days as day numbers,
// both INTEGER.
var sqliteDialect = &dialect{
	name: "sqlite",
	time: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UnixMicro()
	},
	day:        func(d day) any { return int64(d) },
	retryable:  func(error) bool { return false },
	positional: true,
	migrations: func() fs.FS {
		f, err := fs.Sub(sqliteFS, "migrations/sqlite")
		if err != nil {
			panic(err)
		}
		return f
	}(),
}

// openSQLite opens or creates the database in file.
//
// Durability: WAL with synchronous=FULL. Central acks events once Ingest
// returns and the agent then deletes them from its outbox, so a commit
// must survive power loss, not only a crash of the process: with NORMAL,
// the last commits before a power cut may roll back, and events that were
// acked would be lost on both sides. FULL costs one fsync of the WAL per
// transaction, which Ingest amortises over a batch.
//
// Connections: as in the agent's outbox, every write goes through one
// connection (SetMaxOpenConns(1)) whose transactions begin IMMEDIATE:
// SQLite has one writer at a time anyway, and queueing in database/sql
// rather than on SQLITE_BUSY keeps writers in order and free of lock
// errors. Reads (the dashboard's queries) use a small pool of read-only
// connections, which WAL lets run beside the writer. busy_timeout covers
// another process holding the lock.
func openSQLite(ctx context.Context, file string) (Store, error) {
	if strings.ContainsAny(file, "?#") {
		return nil, fmt.Errorf("store: bad SQLite file name %q: no ? or #", file)
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("store: %s is not a directory", dir)
	}
	created, err := createFile(file)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	common := fmt.Sprintf("&_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()) +
		"&_pragma=foreign_keys(1)"
	w, err := sql.Open("sqlite", file+"?_txlock=immediate"+common+
		"&_pragma=journal_mode(wal)"+
		"&_pragma=journal_size_limit(67108864)"+
		"&_pragma=synchronous(full)")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &db{w: w, r: w, d: sqliteDialect}
	if err := s.initSQLite(ctx, dir, created); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %s: %w", file, err)
	}
	// The readers open once the writer has made the file a WAL database.
	r, err := sql.Open("sqlite", file+"?_pragma=query_only(1)"+common+"&_pragma=cache_size(-16384)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	s.r = r
	return s, nil
}

// createFile creates file with mode 0600 unless it exists, and reports
// whether it did.
func createFile(file string) (bool, error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, f.Close()
}

// initSQLite checks that the pragmas took effect, migrates the schema and
// makes a new file's directory entry durable.
func (s *db) initSQLite(ctx context.Context, dir string, created bool) error {
	var mode string
	var sync int
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if mode != "wal" || sync != 2 {
		return fmt.Errorf("journal_mode %s, synchronous %d: want wal and 2 (full)", mode, sync)
	}
	ms, err := loadMigrations(s.d.migrations)
	if err != nil {
		return err
	}
	if err := s.migrate(ctx, ms); err != nil {
		return err
	}
	if !created {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
