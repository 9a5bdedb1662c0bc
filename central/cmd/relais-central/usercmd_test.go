package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// userEnv writes a configuration whose storage.dir is a temporary
// directory, sets the language, and returns the config path and the
// directory.
func userEnv(t *testing.T, lang string) (config, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "state") // created by the command
	config = filepath.Join(t.TempDir(), "central.toml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "[storage]\ndir = %q\n", dir), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", lang)
	return config, dir
}

// withStdin makes os.Stdin a pipe holding input (not a terminal).
func withStdin(t *testing.T, input string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.WriteString(input)
		w.Close()
	}()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
}

// runUser runs relais-central user ARGS --config config with input on
// stdin and returns the exit status, stdout and stderr.
func runUser(t *testing.T, config, input string, args ...string) (int, string, string) {
	t.Helper()
	withStdin(t, input)
	var out, errb bytes.Buffer
	code := Main(append(append([]string{"user"}, args...), "--config", config), &out, &errb)
	return code, out.String(), errb.String()
}

func openTestStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:central.db", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestUserAddListPasswd(t *testing.T) {
	config, dir := userEnv(t, "en_GB.UTF-8")
	code, out, errs := runUser(t, config, "first password\n", "add", "alice", "--role", "admin")
	if code != 0 || out != "User alice created with role admin.\n" {
		t.Fatalf("add: exit %d, %q %q", code, out, errs)
	}
	// Flags before the name work too; \r\n ends a line.
	if code, out, errs := runUser(t, config, "manager password\r\n", "add", "--role=manager", "bob"); code != 0 {
		t.Fatalf("add bob: exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runUser(t, config, "another password\n", "add", "alice", "--role", "technician")
	if code != 1 || !strings.Contains(errs, "user alice exists already") {
		t.Errorf("add twice: exit %d, %q", code, errs)
	}

	code, out, errs = runUser(t, config, "", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1])[:2], " "), "alice admin") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[2])[:2], " "), "bob manager") {
		t.Errorf("list: exit %d, %q %q", code, out, errs)
	}

	code, out, errs = runUser(t, config, "second password\n", "passwd", "alice")
	if code != 0 || out != "Password of alice changed.\n" {
		t.Errorf("passwd: exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runUser(t, config, "second password\n", "passwd", "carol")
	if code != 1 || !strings.Contains(errs, "no user carol") {
		t.Errorf("passwd of nobody: exit %d, %q", code, errs)
	}

	st := openTestStore(t, dir)
	ctx := context.Background()
	alice, err := st.User(ctx, "alice")
	if err != nil || alice.Role != store.Admin || !auth.CheckPassword(alice.PasswordHash, "second password") || auth.CheckPassword(alice.PasswordHash, "first password") {
		t.Errorf("alice: %+v, %v", alice, err)
	}
	bob, err := st.User(ctx, "bob")
	if err != nil || bob.Role != store.Manager || !auth.CheckPassword(bob.PasswordHash, "manager password") {
		t.Errorf("bob: %+v, %v", bob, err)
	}
}

func TestUserFrench(t *testing.T) {
	config, _ := userEnv(t, "")
	code, out, errs := runUser(t, config, "premier mot de passe\n", "add", "alice", "--role", "technician")
	if code != 0 || out != "Utilisateur alice créé avec le rôle technician.\n" {
		t.Errorf("add: exit %d, %q %q", code, out, errs)
	}
	t.Setenv("LANG", "fr_FR.UTF-8")
	if code, _, errs := runUser(t, config, "court\n", "passwd", "alice"); code != 1 || !strings.Contains(errs, "mot de passe trop court : au moins 10 caractères") {
		t.Errorf("short password: exit %d, %q", code, errs)
	}
	// LC_ALL wins over LANG.
	t.Setenv("LC_ALL", "en_US.UTF-8")
	if code, _, errs := runUser(t, config, "court\n", "passwd", "alice"); code != 1 || !strings.Contains(errs, "password too short: at least 10 characters") {
		t.Errorf("short password, LC_ALL=en: exit %d, %q", code, errs)
	}
}

func TestUserBadInput(t *testing.T) {
	config, dir := userEnv(t, "en")
	for _, tc := range []struct {
		input string
		args  []string
		code  int
		want  string
	}{
		{"", nil, 2, "usage:"},
		{"", []string{"remove", "alice"}, 2, `unknown subcommand "remove"`},
		{"good password\n", []string{"add", "--role", "admin"}, 2, "give exactly one user name"},
		{"good password\n", []string{"add", "a", "b", "--role", "admin"}, 2, "give exactly one user name"},
		{"", []string{"list", "extra"}, 2, "this command takes no argument"},
		{"good password\n", []string{"add", "alice", "--role", "root"}, 1, `invalid role "root"`},
		{"good password\n", []string{"add", "alice"}, 1, `invalid role ""`},
		{"good password\n", []string{"add", "al ice", "--role", "admin"}, 1, `invalid name "al ice"`},
		{"good password\n", []string{"add", "alice", "--role", "admin", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"short\n", []string{"add", "alice", "--role", "admin"}, 1, "password too short: at least 10 characters"},
		{"", []string{"add", "alice", "--role", "admin"}, 1, "no password on standard input"},
		{"\n", []string{"add", "alice", "--role", "admin"}, 1, "no password on standard input"},
		{"tab\tin the password\n", []string{"add", "alice", "--role", "admin"}, 1, "control characters"},
		{strings.Repeat("x", auth.MaxPasswordLength+1) + "\n", []string{"add", "alice", "--role", "admin"}, 1, "password too long: at most 1024 bytes"},
		{strings.Repeat("x", 1<<20), []string{"add", "alice", "--role", "admin"}, 1, "password too long"},
	} {
		code, _, errs := runUser(t, config, tc.input, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("user %q: exit %d, %q; want %d with %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	// Nothing was created by the refused commands.
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory after refused commands: %v", err)
	}
	// A password of exactly the maximum length is fine.
	long := strings.Repeat("y", auth.MaxPasswordLength)
	if code, _, errs := runUser(t, config, long+"\n", "add", "alice", "--role", "admin"); code != 0 {
		t.Errorf("add with a %d-byte password: exit %d, %q", len(long), code, errs)
	}
	if code, _, errs := runUser(t, config, "", "add", "-h"); code != 0 || !strings.Contains(errs, "-role") {
		t.Errorf("add -h: exit %d, %q", code, errs)
	}
}

func TestUserToken(t *testing.T) {
	config, dir := userEnv(t, "en_US.UTF-8")
	code, out, errs := runUser(t, config, "", "token", "prometheus", "--role", "manager")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "relais_") || strings.Count(out, "\n") != 1 || !strings.Contains(errs, "will not be shown again") {
		t.Fatalf("token: exit %d, %q %q", code, out, errs)
	}
	st := openTestStore(t, dir)
	h := sha256.Sum256([]byte(tok))
	got, err := st.Token(context.Background(), h[:])
	if err != nil || got.Name != "prometheus" || got.Role != store.Manager {
		t.Errorf("stored token %+v, %v", got, err)
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal the password is asked for twice.
func TestUserTerminal(t *testing.T) {
	config, dir := userEnv(t, "en")
	for _, tc := range []struct {
		args  []string
		typed string
		code  int
		want  string
	}{
		{[]string{"add", "dana", "--role", "technician"}, "terminal password\nterminal password\n", 0, "Password for dana: \nConfirm the password: \n"},
		{[]string{"passwd", "dana"}, "terminal password\nterminal passw0rd\n", 1, "the two passwords differ"},
		{[]string{"passwd", "dana"}, "too short\n", 1, "password too short"},
	} {
		master, slave := openPTY(t)
		if _, err := master.WriteString(tc.typed); err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = slave
		var out, errb bytes.Buffer
		code := Main(append(append([]string{"user"}, tc.args...), "--config", config), &out, &errb)
		os.Stdin = old
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("user %q, typed %q: exit %d, %q; want %d with %q", tc.args, tc.typed, code, errb.String(), tc.code, tc.want)
		}
	}
	st := openTestStore(t, dir)
	u, err := st.User(context.Background(), "dana")
	if err != nil || !auth.CheckPassword(u.PasswordHash, "terminal password") {
		t.Errorf("dana: %+v, %v", u, err)
	}
}
