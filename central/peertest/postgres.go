package peertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresCluster is a private, throwaway PostgreSQL cluster (Debian's
// package postgresql): initdb'd in a temporary directory, listening on
// 127.0.0.1 at a free port and on a Unix socket in that directory only,
// with trust authentication for the superuser "postgres" and fsync off. Its
// data does not survive it.
type PostgresCluster struct {
	Addr string // 127.0.0.1:PORT
	Dir  string // data, socket and log

	proc   *pgProcess
	nextDB atomic.Int64
}

// sharedPostgres is the cluster that Postgres hands databases of when the
// package's TestMain runs through Main.
var sharedPostgres struct {
	sync.Mutex
	main    bool // Main runs the tests: share one cluster
	cluster *PostgresCluster
	err     error // why the shared cluster could not start
}

// Main runs a package's tests and then stops the peers they shared, such
// as the PostgreSQL cluster of Postgres: use it as
//
//	func TestMain(m *testing.M) { peertest.Main(m) }
//
// Without it, every call of Postgres starts a cluster of its own.
func Main(m *testing.M) {
	sharedPostgres.Lock()
	sharedPostgres.main = true
	sharedPostgres.Unlock()
	code := m.Run()
	sharedPostgres.Lock()
	if c := sharedPostgres.cluster; c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "peertest: stopping PostgreSQL: %v\n", err)
		}
	}
	sharedPostgres.Unlock()
	os.Exit(code)
}

// Postgres returns the URL (postgres://postgres@127.0.0.1:PORT/NAME) of a
// new, empty database of its own for the test, in a private cluster. When
// the package's TestMain is Main, one cluster serves every test of the
// package run and is stopped at its end; otherwise each call starts a
// cluster, stopped when the test ends. It skips (or fails, see Required)
// when PostgreSQL is not installed.
func Postgres(t testing.TB) string {
	t.Helper()
	bin := postgresBin(t)
	sharedPostgres.Lock()
	if !sharedPostgres.main {
		sharedPostgres.Unlock()
		c, err := StartPostgres(bin)
		if err != nil {
			t.Fatalf("postgres: %v", err)
		}
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Errorf("postgres: %v", err)
			}
		})
		return c.CreateDB(t)
	}
	if sharedPostgres.cluster == nil && sharedPostgres.err == nil {
		sharedPostgres.cluster, sharedPostgres.err = StartPostgres(bin)
	}
	c, err := sharedPostgres.cluster, sharedPostgres.err
	sharedPostgres.Unlock()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return c.CreateDB(t)
}

// postgresBin returns the directory of the newest PostgreSQL server
// installed (/usr/lib/postgresql/VERSION/bin), or calls Missing.
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for _, d := range slices.Backward(dirs) {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	Missing(t, "PostgreSQL's initdb and postgres not found in /usr/lib/postgresql/*/bin: install the Debian package postgresql")
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartPostgres initdb's a cluster with the programs of bin
// (/usr/lib/postgresql/VERSION/bin) in a new temporary directory and starts
// it; Stop stops it and removes the directory. initdb and postgres refuse
// to run as root: as root, they run as the system user postgres, which owns
// the directory.
func StartPostgres(bin string) (*PostgresCluster, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "relais-pg-")
	if err != nil {
		return nil, err
	}
	c := &PostgresCluster{Dir: dir}
	if err := c.start(bin, cred); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// postgresCredential is who the server runs as: nil for the current user,
// the user postgres when that is root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no user postgres to run the server as (Debian's package postgresql creates it): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// postgresReady bounds the server's start.
const postgresReady = 60 * time.Second

func (c *PostgresCluster) start(bin string, cred *syscall.Credential) error {
	data, sock, log := filepath.Join(c.Dir, "data"), filepath.Join(c.Dir, "sock"), filepath.Join(c.Dir, "postgres.log")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return err
	}
	if cred != nil {
		for _, p := range []string{c.Dir, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = c.Dir
	initdb.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port := freePort()
	if port == 0 {
		return errors.New("no free port on 127.0.0.1")
	}
	c.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", fmt.Sprintf("port=%d", port),
		"-c", "unix_socket_directories="+sock,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=64MB",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
		"-c", "TimeZone=UTC")
	srv.Dir = c.Dir
	srv.Env = append(os.Environ(), "LC_ALL=C")
	// The server dies with the test process, even one killed before
	// Main could stop it (SIGINT: fast shutdown).
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGINT}
	proc, err := startPGProcess(srv, log)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	c.proc = proc
	deadline := time.Now().Add(postgresReady)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgconn.Connect(ctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-proc.done:
			return fmt.Errorf("postgres exited (%v) before accepting connections:\n%s", proc.err, tail(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after %v: %v\n%s", postgresReady, err, tail(log))
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, or
// 0.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL returns the URL of database name, as the superuser.
func (c *PostgresCluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", c.Addr, name)
}

// CreateDB creates a new empty database and returns its URL.
func (c *PostgresCluster) CreateDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", c.nextDB.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name).ReadAll(); err != nil {
		t.Fatalf("postgres: CREATE DATABASE %s: %v", name, err)
	}
	return c.URL(name)
}

// Stop stops the server (fast shutdown: clients are disconnected) and
// removes the cluster's directory.
func (c *PostgresCluster) Stop() error {
	var err error
	if c.proc != nil {
		err = c.proc.stop()
	}
	return errors.Join(err, os.RemoveAll(c.Dir))
}

// pgProcess is a running server.
type pgProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done is closed
}

func startPGProcess(cmd *exec.Cmd, logPath string) (*pgProcess, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &pgProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop asks for a fast shutdown (SIGINT) and waits for it; SIGKILL to the
// process group follows after 30 s.
func (p *pgProcess) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return errors.New("postgres did not stop within 30 s: killed")
	}
}

// tail is the end of a log file, for an error.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}
