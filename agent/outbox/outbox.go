// Package outbox is the agent's durable outbox: one SQLite file (outbox.db
// in the storage directory) where every event is committed, with a per-agent
// monotonic seq, a UUIDv7 id and a timestamp, before Record returns, so that
// an acknowledged event survives kill -9 and power loss. In the same
// transactions it keeps the open faults (raised once, cleared once), local
// usage counters per day for the local page and `ctl`, and the delivery
// state: the MQTT publisher reads Pending events in seq order and Acks them
// once central has committed them. Metrics snapshots wait there too while
// the agent is offline and are the first to go when the size bound is
// reached; usage events are never dropped, Record refuses with ErrFull.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Limits and defaults.
const (
	// DefaultMaxBytes is the default size bound (Options.MaxBytes).
	DefaultMaxBytes = 100 << 20
	// MinMaxBytes is the smallest size bound Open accepts.
	MinMaxBytes = 16 << 10
	// DefaultKeepDelivered is how many delivered events are kept for Recent
	// by default (Options.KeepDelivered).
	DefaultKeepDelivered = 1000
	// MaxList bounds the events one call of Pending or Recent returns, and
	// the metrics snapshots of one PendingMetrics.
	MaxList = 1000
	// RowOverhead is added to the length of every stored payload when
	// accounting for the size bound: it stands for the row's key, size
	// column and b-tree cell, so that many tiny rows are bounded too.
	RowOverhead = 64
	// NearFullPercent is the share of MaxBytes held by undelivered events
	// above which NearFull reports true.
	NearFullPercent = 90
	// CounterDays is how many local days of counters are kept.
	CounterDays = 400
	// busyTimeout is how long a statement waits for another process's lock.
	busyTimeout = 5 * time.Second
)

// Errors.
var (
	// ErrFull: undelivered events fill the size bound; the event was not
	// recorded. Nothing else can be dropped to make room.
	ErrFull = errors.New("outbox: full of undelivered events")
	// ErrAckBeyond: an ack names a seq this outbox has not assigned yet.
	ErrAckBeyond = errors.New("outbox: ack beyond the last seq")
)

// Options tune an Outbox. The zero value is usable.
type Options struct {
	// MaxBytes bounds the accounted size of the stored events and metrics
	// (each payload's length plus RowOverhead); 0 means DefaultMaxBytes. The
	// file itself is larger by the b-tree overhead, and the WAL beside it
	// is truncated back to 4 MiB after each checkpoint.
	MaxBytes int64
	// KeepDelivered is how many delivered events stay for Recent; 0 means
	// DefaultKeepDelivered and a negative value keeps none.
	KeepDelivered int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location is the site's time zone, which makes local days for
	// Counters; nil means time.Local (the Pi's /etc/localtime).
	Location *time.Location
	// Logger receives warnings (dropped metrics, unset clock); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Outbox is the durable outbox. Its methods are safe for concurrent use.
//
// Durability: the database is in WAL mode with synchronous=FULL, so a
// commit returns only once its frames are in the WAL and the WAL is
// fsynced (SQLite also fsyncs the directory when it creates the WAL, and
// Open fsyncs it once the file exists). Each change (an event with its
// counters and the state row holding last_seq, a fault with its event, an
// ack) is one transaction: after kill -9 or power loss the file holds each
// change whole or not at all, and every call that returned nil is among
// the whole ones. This holds as long as the storage honours flushes.
//
// Connections: all access goes through one SQLite connection
// (SetMaxOpenConns(1)). SQLite allows one writer at a time anyway; queueing
// in database/sql rather than on SQLITE_BUSY keeps writers in order and
// free of lock errors, and every read is one small bounded statement that
// needs no pool of its own. Transactions begin IMMEDIATE and read the state
// row inside, so nothing is cached in memory; busy_timeout covers another
// process (a technician's sqlite3 shell) holding the lock.
type Outbox struct {
	db       *sql.DB
	max      int64
	keep     uint64
	now      func() time.Time
	loc      *time.Location
	log      *slog.Logger
	clockBad sync.Once // logs the first unset-clock warning
}

// Open opens or creates the outbox database at path, whose directory must
// exist, and migrates its schema to the current version.
func Open(path string, opts Options) (*Outbox, error) {
	o := &Outbox{max: opts.MaxBytes, now: opts.Now, loc: opts.Location, log: opts.Logger}
	switch {
	case o.max == 0:
		o.max = DefaultMaxBytes
	case o.max < MinMaxBytes:
		return nil, fmt.Errorf("outbox: MaxBytes %d is below the minimum %d", o.max, MinMaxBytes)
	}
	switch k := opts.KeepDelivered; {
	case k == 0:
		o.keep = DefaultKeepDelivered
	case k > 0:
		o.keep = uint64(k)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.loc == nil {
		o.loc = time.Local
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("outbox: bad database path %q", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("outbox: %s is not a directory", dir)
	}
	// auto_vacuum must precede journal_mode on a new file; the driver runs
	// busy_timeout first and the other pragmas in lexicographic order.
	dsn := path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=auto_vacuum(incremental)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(wal)" +
		"&_pragma=journal_size_limit(4194304)" +
		"&_pragma=synchronous(full)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	o.db = db
	if err := o.init(dir); err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: %s: %w", path, err)
	}
	return o, nil
}

// init checks that the pragmas took effect, migrates the schema and makes
// the new file's directory entry durable.
func (o *Outbox) init(dir string) error {
	ctx := context.Background()
	var mode string
	var sync int
	if err := o.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := o.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if mode != "wal" || sync != 2 {
		return fmt.Errorf("journal_mode %s, synchronous %d: want wal and 2 (full)", mode, sync)
	}
	if err := migrate(ctx, o.db); err != nil {
		return err
	}
	return syncDir(dir)
}

// Close closes the database. Everything acknowledged is already durable.
func (o *Outbox) Close() error { return o.db.Close() }

// syncDir fsyncs a directory so that a file created in it survives power
// loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
