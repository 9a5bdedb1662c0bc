package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// db is the Store of both backends. They run the same SQL through
// database/sql: $1-style parameters, INSERT ... ON CONFLICT, RETURNING and
// partial indexes mean the same thing in SQLite and in PostgreSQL. What
// differs (how a time or a day is stored, which errors are worth a retry,
// the schema's types, how migrations are serialised) is in the dialect.
type db struct {
	w *sql.DB // transactions and writes: SQLite's single writer connection
	r *sql.DB // reads: SQLite's read-only pool; PostgreSQL's pool, as w
	d *dialect
	// closeFn releases what the backend holds beyond w and r.
	closeFn func() error
}

// dialect is what tells the backends apart.
type dialect struct {
	name string // "sqlite" or "postgres", for errors
	// time is a time as a parameter: NULL for the zero time.
	time func(time.Time) any
	// day is a day as a parameter.
	day func(day) any
	// retryable reports whether a failed transaction may succeed if run
	// again (PostgreSQL's deadlock and serialisation failures).
	retryable func(error) bool
	// migrations holds the schema steps, NNNN_name.sql.
	migrations fs.FS
	// positional: placeholders built at run time are ? rather than $n.
	// SQLite looks every named or numbered parameter ($n, ?n) up in a
	// list, one by one, when it parses a statement and again when the
	// driver binds it: a statement with thousands of them costs their
	// square. Plain ? costs nothing.
	positional bool
	// lockMigrations, if set, is run first in each migration transaction
	// so that processes opening the same database migrate one at a time.
	// SQLite needs none: its transactions begin IMMEDIATE.
	lockMigrations string
}

// maxTxAttempts bounds how often a transaction is run when the backend
// reports a retryable failure.
const maxTxAttempts = 4

// tx runs f in a transaction on the writer and commits it, running it
// again (f must not accumulate state across calls) while the backend
// reports a retryable failure.
func (s *db) tx(ctx context.Context, f func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, f)
		if err == nil || attempt == maxTxAttempts || !s.d.retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *db) tx1(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *db) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if s.closeFn != nil {
		err = errors.Join(err, s.closeFn())
	}
	return err
}

// wrap prefixes an error of method op with the package and backend, and
// leaves the package's sentinel errors and nil alone.
func (s *db) wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		return err
	}
	return fmt.Errorf("store: %s (%s): %w", op, s.d.name, err)
}

// day is a calendar day as the number of days since 1970-01-01.
type day int64

// dayOf is the day of t's date in t's location, which for the times the
// store receives (UTC) is the UTC date.
func dayOf(t time.Time) day {
	y, m, d := t.Date()
	return day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// parseDay parses YYYY-MM-DD.
func parseDay(s string) (day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return dayOf(t), nil
}

// time is the day's midnight, UTC.
func (d day) time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// weekStart is the Monday of d's ISO week. 1970-01-01 was a Thursday,
// three days after a Monday.
func (d day) weekStart() day {
	return d - ((d+3)%7+7)%7
}

// monthStart is the first of d's month.
func (d day) monthStart() day {
	y, m, _ := d.time().Date()
	return dayOf(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC))
}

// String is YYYY-MM-DD.
func (d day) String() string { return d.time().Format(time.DateOnly) }

// timeCol scans a time column of either backend, NULL as the zero time:
// microseconds since the epoch (SQLite) or a time (PostgreSQL), in UTC.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	return nil
}

// dayCol scans a day column: days since the epoch (SQLite) or a date
// (PostgreSQL).
type dayCol struct{ d *day }

func (c dayCol) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*c.d = day(v)
	case time.Time:
		*c.d = dayOf(v)
	default:
		return fmt.Errorf("day column holds %T", v)
	}
	return nil
}

// jsonCol scans a nullable text column holding JSON.
type jsonCol struct{ b *[]byte }

func (c jsonCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.b = nil
	case string:
		*c.b = []byte(v)
	case []byte:
		*c.b = append([]byte(nil), v...)
	default:
		return fmt.Errorf("text column holds %T", v)
	}
	return nil
}

// micro truncates t to the microsecond, the precision both backends keep,
// in UTC.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// params collects the parameters of a statement built at run time, in
// the order their placeholders appear in its text.
type params struct {
	positional bool
	args       []any
}

func (s *db) params() *params { return &params{positional: s.d.positional} }

// add appends v and returns its placeholder.
func (p *params) add(v any) string {
	p.args = append(p.args, v)
	if p.positional {
		return "?"
	}
	return "$" + strconv.Itoa(len(p.args))
}

// list appends vs and returns "(placeholder, ...)".
func (p *params) list(vs ...any) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.add(v))
	}
	b.WriteByte(')')
	return b.String()
}

// numbered returns "($1, ..., $n)", for statements written once.
func numbered(n int) string {
	b := make([]byte, 0, 5*n+2)
	b = append(b, '(')
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "$%d", i+1)
	}
	return string(append(b, ')'))
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
