package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// migration is one schema step: the statements that take the schema from
// version-1 to version.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the steps NNNN_name.sql of fsys, which must be
// numbered from 1 without a gap.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var ms []migration
	for i, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want the number %04d", name, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(path.Base(name), ".sql"), sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations")
	}
	return ms, nil
}

// migrate brings the schema to the last step of ms, one transaction per
// step, each recorded in schema_version. It refuses a database whose
// version is newer than ms knows.
func (s *db) migrate(ctx context.Context, ms []migration) error {
	for _, m := range ms {
		done, err := s.migrateStep(ctx, m, len(ms))
		if err != nil {
			return fmt.Errorf("migrating to schema version %d (%s): %w", m.version, m.name, err)
		}
		if done {
			return nil
		}
	}
	return nil
}

// migrateStep applies m unless the schema is at its version or beyond;
// done reports that the schema is at the latest version.
func (s *db) migrateStep(ctx context.Context, m migration, latest int) (done bool, err error) {
	err = s.tx1(ctx, func(tx *sql.Tx) error {
		if s.d.lockMigrations != "" {
			if _, err := tx.ExecContext(ctx, s.d.lockMigrations); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version INTEGER PRIMARY KEY,
			name    TEXT NOT NULL
		)`); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case v > latest:
			return fmt.Errorf("the database's schema version %d is newer than this program's %d", v, latest)
		case v == latest:
			done = true
			return nil
		case v >= m.version:
			return nil
		case v != m.version-1:
			return fmt.Errorf("schema version %d, want %d", v, m.version-1)
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name)
		return err
	})
	return done, err
}

// schemaVersion is the highest version applied, 0 for none.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&v)
	return int(v.Int64), err
}
