package store

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/relais-fr/relais/central/api"
)

// testMigrations checks schema migrations on the database at url: opening
// twice keeps the data, a newer step applies to a database at the older
// version and a failing one changes nothing, and a database newer than the
// program is refused.
func testMigrations(t *testing.T, url, dir string) {
	ctx := ctxTimeout(t)
	s, err := Open(ctx, url, dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(s.(*db).d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, "s", "a", []api.Event{printed(1, t0, 3, api.SourcePC)}, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Opened again: nothing to do, the data is there.
	s, err = Open(ctx, url, dir)
	if err != nil {
		t.Fatal(err)
	}
	d := s.(*db)
	if v, err := schemaVersion(ctx, d.w); err != nil || v != len(ms) {
		t.Errorf("schema version %d, %v, want %d", v, err, len(ms))
	}
	if st, err := s.AgentState(ctx, "s", "a"); err != nil || st.Upto != 1 || st.Events != 1 {
		t.Errorf("after reopening: %+v, %v", st, err)
	}

	// A failing step leaves the schema as it was.
	bad := append(ms[:len(ms):len(ms)], migration{version: len(ms) + 1, name: "bad",
		sql: "CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1)"})
	if err := d.migrate(ctx, bad); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("failing migration: %v", err)
	}
	if v, _ := schemaVersion(ctx, d.w); v != len(ms) {
		t.Errorf("after a failing step: version %d, want %d", v, len(ms))
	}
	if _, err := d.w.ExecContext(ctx, "SELECT x FROM extra"); err == nil {
		t.Error("the failing step's table exists")
	}

	// A database at the older version takes the newer step, with its
	// data.
	next := append(ms[:len(ms):len(ms)], migration{version: len(ms) + 1, name: "sites",
		sql: "CREATE TABLE sites (site TEXT PRIMARY KEY); INSERT INTO sites SELECT DISTINCT site FROM agent_state"})
	if err := d.migrate(ctx, next); err != nil {
		t.Fatal(err)
	}
	var site string
	if err := d.w.QueryRowContext(ctx, "SELECT site FROM sites").Scan(&site); err != nil || site != "s" {
		t.Errorf("migrated data: %q, %v", site, err)
	}
	if v, _ := schemaVersion(ctx, d.w); v != len(ms)+1 {
		t.Errorf("version %d, want %d", v, len(ms)+1)
	}
	s.Close()

	// This program is now older than the database.
	if s, err := Open(ctx, url, dir); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open of a newer database: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	for _, d := range []*dialect{sqliteDialect, postgresDialect} {
		ms, err := loadMigrations(d.migrations)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if ms[0].version != 1 || ms[0].name != "0001_init" {
			t.Errorf("%s: first migration %d %s", d.name, ms[0].version, ms[0].name)
		}
	}
	for name, fsys := range map[string]fstest.MapFS{
		"none":  {},
		"gap":   {"0001_a.sql": {}, "0003_c.sql": {}},
		"no _":  {"0001.sql": {}},
		"not 1": {"0002_b.sql": {}},
		"twice": {"0001_a.sql": {}, "0001_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
