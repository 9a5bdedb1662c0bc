package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// Open opens the store that url names and migrates its schema to the
// current version:
//
//   - sqlite:FILE is an SQLite database in FILE, relative to dir unless
//     absolute, created (mode 0600: it holds password hashes) if absent;
//     the directory must exist.
//   - postgres://... or postgresql://... is a PostgreSQL database, with
//     the connection and pool settings of pgx v5 (such as
//     postgres://relais@db.example.org/relais?sslmode=verify-full&pool_max_conns=8).
//
// Close the store when done.
func Open(ctx context.Context, url, dir string) (Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		file := strings.TrimPrefix(url, "sqlite:")
		if file == "" {
			return nil, fmt.Errorf("store: %q names no file; want sqlite:FILE, such as sqlite:central.db", url)
		}
		if strings.HasPrefix(file, "//") {
			return nil, fmt.Errorf("store: %q: want sqlite:FILE or sqlite:/absolute/path, not a URL", url)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		return openSQLite(ctx, file)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	case url == "":
		return nil, fmt.Errorf("store: no database URL; want sqlite:FILE or postgres://user@host/dbname")
	default:
		scheme, _, _ := strings.Cut(url, ":")
		return nil, fmt.Errorf("store: unknown database %q; want sqlite:FILE or postgres://user@host/dbname", scheme+":...")
	}
}
