package store

import (
	"testing"

	"github.com/relais-fr/relais/central/peertest"
)

// TestMain shares one PostgreSQL cluster between the package's tests.
func TestMain(m *testing.M) { peertest.Main(m) }

// openPostgresTest opens a store on a new database of the shared cluster.
func openPostgresTest(t *testing.T) Store {
	t.Helper()
	s, err := Open(ctxTimeout(t), peertest.Postgres(t), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	testStore(t, openPostgresTest)
}

func TestPostgresMigrations(t *testing.T) {
	t.Parallel()
	testMigrations(t, peertest.Postgres(t), "")
}
