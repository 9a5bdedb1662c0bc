package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openSQLiteTest opens a new SQLite store in the test's directory.
func openSQLiteTest(t *testing.T) Store {
	t.Helper()
	s, err := Open(ctxTimeout(t), "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	testStore(t, openSQLiteTest)
}

func TestSQLiteMigrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testMigrations(t, "sqlite:"+filepath.Join(dir, "m.db"), dir)
}

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "sqlite:relais.db", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(filepath.Join(dir, "relais.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	var mode string
	var sync, fk int
	w := s.(*db).w
	w.QueryRow("PRAGMA journal_mode").Scan(&mode)
	w.QueryRow("PRAGMA synchronous").Scan(&sync)
	w.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	if mode != "wal" || sync != 2 || fk != 1 {
		t.Errorf("journal_mode %s, synchronous %d, foreign_keys %d", mode, sync, fk)
	}
	// The readers cannot write.
	if _, err := s.(*db).r.Exec("DELETE FROM users"); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a reader wrote: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct{ url, want string }{
		{"", "no database URL"},
		{"sqlite:", "names no file"},
		{"sqlite://host/db", "not a URL"},
		{"sqlite:a.db?mode=ro", "no ? or #"},
		{"sqlite:missing/a.db", "no such file"},
		{"mysql://root@localhost/relais", `unknown database "mysql:..."`},
		{"central.db", "unknown database"},
		{"postgres://relais:secret@127.0.0.1:1/relais?connect_timeout=1", "postgres"},
	} {
		s, err := Open(ctx, c.url, dir)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v, want %q", c.url, err, c.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) shows the password: %v", c.url, err)
		}
	}
}
