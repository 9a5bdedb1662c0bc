package peertest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	url := Postgres(t)
	other := Postgres(t)
	if url == other {
		t.Fatalf("two calls gave the same database %s", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42); SELECT x FROM t; SHOW fsync; SHOW listen_addresses").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[2].Rows[0][0]); got != "42" {
		t.Errorf("SELECT: %s", got)
	}
	if got := string(res[3].Rows[0][0]); got != "off" {
		t.Errorf("fsync %s, want off", got)
	}
	if got := string(res[4].Rows[0][0]); got != "127.0.0.1" {
		t.Errorf("listen_addresses %s, want 127.0.0.1", got)
	}
	// The server listens on the loopback only.
	host, _, err := net.SplitHostPort(conn.Conn().RemoteAddr().String())
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("connected to %v", conn.Conn().RemoteAddr())
	}
}

func TestPostgresStop(t *testing.T) {
	t.Parallel()
	c, err := StartPostgres(postgresBin(t))
	if err != nil {
		t.Fatal(err)
	}
	url := c.CreateDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Stop disconnects clients (fast shutdown) and removes the files.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err == nil {
		t.Error("the connection survived Stop")
	}
	conn.Close(ctx)
	if _, err := os.Stat(filepath.Join(c.Dir, "data")); !os.IsNotExist(err) {
		t.Errorf("cluster directory left: %v", err)
	}
}
