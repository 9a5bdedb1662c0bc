package dnssd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// These tests never send on the machine's own interfaces. Each creates two
// network namespaces joined by a veth pair, runs the advertiser in the first
// (this test binary again, through `ip netns exec`, see TestMain) and
// python3-zeroconf in the second; the addresses 10.99.0.x exist only there.

// childEnv, when set, makes the test binary an advertiser: its value is the
// JSON of a childSpec.
const childEnv = "RELAIS_DNSSD_CHILD"

type childSpec struct {
	Service    Service
	Interfaces []string
	Host       string
}

const (
	vethName = "dnssd0"
	addrA    = "10.99.0.1"
	addrA2   = "10.99.0.3"
	addrB    = "10.99.0.2"
	wait     = 20 * time.Second
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// runChild advertises until SIGTERM, printing "registered NAME" on standard
// error at each registration.
func runChild(spec string) int {
	var c childSpec
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := Advertise(ctx, c.Service, Options{
		Interfaces: c.Interfaces,
		Host:       c.Host,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registered: func(name string, addrs []netip.Addr) {
			fmt.Fprintf(os.Stderr, "registered %s %v\n", name, addrs)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// peers returns the paths of ip and of a python3 that has zeroconf, or
// skips the test (fails it under RELAIS_REQUIRE_PEERS=1) naming what to
// install.
func peers(t *testing.T) (ip, python string) {
	t.Helper()
	if os.Geteuid() != 0 {
		peertest.Missing(t, "network namespaces need root")
	}
	ip = peertest.Program(t, "ip", "iproute2")
	// Debian's python3-zeroconf is for Debian's python3, which may not be
	// the first python3 on PATH.
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import zeroconf").Run() == nil {
			return ip, p
		}
	}
	peertest.Missing(t, "python3 cannot import zeroconf: install the Debian package python3-zeroconf")
	return "", ""
}

// namespaces creates two network namespaces joined by a veth pair named
// vethName on both sides, with addrA in the first and addrB in the second,
// and deletes them when the test ends.
func namespaces(t *testing.T, ip string) (a, b string) {
	t.Helper()
	base := fmt.Sprintf("relais-dnssd-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
	a, b = base+"-a", base+"-b"
	for _, ns := range []string{a, b} {
		run(t, ip, "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	run(t, ip, "link", "add", vethName, "netns", a, "type", "veth", "peer", "name", vethName, "netns", b)
	for ns, addr := range map[string]string{a: addrA, b: addrB} {
		run(t, ip, "-n", ns, "link", "set", "lo", "up")
		// No IPv6 link-local address: it would appear a moment after the
		// link comes up and make the advertiser register again.
		run(t, ip, "-n", ns, "link", "set", vethName, "addrgenmode", "none")
		run(t, ip, "-n", ns, "addr", "add", addr+"/24", "dev", vethName)
		run(t, ip, "-n", ns, "link", "set", vethName, "multicast", "on", "up")
	}
	return a, b
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// startAdvertiser runs Advertise for s in namespace ns, and returns once it
// has registered.
func startAdvertiser(t *testing.T, ip, ns string, s Service) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(childSpec{Service: s, Interfaces: []string{vethName}, Host: "relais-test"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ip, "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	if err := peertest.StartAndWait(t, cmd, "registered ", wait); err != nil {
		t.Fatalf("advertiser: %v", err)
	}
	return cmd
}

// stopAdvertiser stops it as systemd would, and checks that it exits 0.
func stopAdvertiser(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("advertiser: %v", err)
		}
	case <-time.After(wait):
		t.Errorf("advertiser still running %v after SIGTERM", wait)
	}
}

// event is a line of testdata/browse.py.
type event struct {
	Event     string
	Type      string
	Name      string
	TXT       []string `json:"txt"`
	Port      int
	Addresses []string
	Qname     string
	Qtype     string
	Records   []record
}

type record struct {
	Name    string
	Type    string
	Target  string
	Port    int
	TXT     []string `json:"txt"`
	Address string
}

// browser is testdata/browse.py running in a namespace.
type browser struct {
	events chan event
	stdin  io.Closer
	stderr *bytes.Buffer // read once the command has ended
	done   chan struct{}
}

func startBrowser(t *testing.T, ip, python, ns string, args ...string) *browser {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "browse.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", ns, python, script, addrB}, args...)...)
	b := &browser{events: make(chan event, 100), stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = b.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	quit := make(chan struct{})
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = event{Event: "unparsed", Name: sc.Text()}
			}
			select {
			case b.events <- e:
			case <-quit: // the test no longer reads: drain until EOF
			}
		}
		close(b.events)
	}()
	t.Cleanup(func() {
		close(quit)
		stdin.Close()
		select {
		case <-b.done:
		case <-time.After(wait):
			cmd.Process.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("browse.py stderr:\n%s", b.stderr)
		}
	})
	return b
}

// until passes the browser's events to f until f returns true, for at most
// wait; what is the condition waited for, in the failure message.
func (b *browser) until(t *testing.T, what string, f func(event) bool) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-b.events:
			if !ok {
				t.Fatalf("browse.py ended before %s", what)
			}
			t.Logf("browse.py: %+v", e)
			if f(e) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s within %v", what, wait)
		}
	}
}

// presence follows which service types list the instance.
type presence map[string]bool

func (p presence) note(e event, name string) {
	if e.Name != name {
		return
	}
	switch e.Event {
	case "added":
		p[e.Type] = true
	case "removed":
		p[e.Type] = false
	}
}

func (p presence) all(v bool) bool {
	for _, typ := range []string{"_ipp._tcp.local.", "_print._sub._ipp._tcp.local.", "_universal._sub._ipp._tcp.local."} {
		if p[typ] != v {
			return false
		}
	}
	return true
}

func TestAdvertiseToPythonZeroconf(t *testing.T) {
	ip, python := peers(t)
	nsA, nsB := namespaces(t, ip)
	s := exampleService()
	s.Port = 8631
	want := s.Name + "._ipp._tcp.local."
	wantTXT := TXT(s)

	adv := startAdvertiser(t, ip, nsA, s)
	br := startBrowser(t, ip, python, nsB)

	// Found under the type and both subtypes, resolved, and every direct
	// query answered.
	seen := presence{}
	var info bool
	queries := map[string]bool{}
	br.until(t, "instance found, resolved and every direct query answered", func(e event) bool {
		seen.note(e, want)
		switch e.Event {
		case "info":
			if e.Name != want {
				t.Errorf("resolved %q, want %q", e.Name, want)
				break
			}
			if !slices.Equal(e.TXT, wantTXT) {
				t.Errorf("TXT seen by python-zeroconf:\n%q\nwant\n%q", e.TXT, wantTXT)
			}
			if e.Port != s.Port || !slices.Contains(e.Addresses, addrA) {
				t.Errorf("resolved port %d, addresses %v; want %d and %s", e.Port, e.Addresses, s.Port, addrA)
			}
			info = true
		case "query":
			queries[e.Qtype+" "+e.Qname] = true
			checkQuery(t, e, want, s, wantTXT)
		}
		return seen.all(true) && info && len(queries) == 6
	})

	// A new address: the service is registered again with it.
	run(t, ip, "-n", nsA, "addr", "add", addrA2+"/24", "dev", vethName)
	moved := false
	br.until(t, "the new address announced, under the type and both subtypes", func(e event) bool {
		seen.note(e, want)
		if e.Event == "info" && e.Name == want && slices.Contains(e.Addresses, addrA2) {
			moved = true
		}
		return moved && seen.all(true)
	})

	// Stopped: the goodbye removes it everywhere.
	stopAdvertiser(t, adv)
	br.until(t, "the instance removed from the type and both subtypes", func(e event) bool {
		seen.note(e, want)
		return seen.all(false)
	})
}

// checkQuery checks the answer to one of browse.py's direct queries.
func checkQuery(t *testing.T, e event, instance string, s Service, wantTXT []string) {
	t.Helper()
	has := func(f func(record) bool) bool { return slices.ContainsFunc(e.Records, f) }
	var ok bool
	switch e.Qtype {
	case "PTR":
		ok = has(func(r record) bool { return r.Type == "PTR" && r.Name == e.Qname && r.Target == instance })
	case "SRV":
		ok = has(func(r record) bool {
			return r.Type == "SRV" && r.Name == instance && r.Port == s.Port && r.Target == "relais-test.local."
		})
	case "TXT":
		ok = has(func(r record) bool { return r.Type == "TXT" && r.Name == instance && slices.Equal(r.TXT, wantTXT) })
	case "A":
		ok = has(func(r record) bool { return r.Type == "A" && r.Name == "relais-test.local." && r.Address == addrA })
	}
	if !ok {
		t.Errorf("direct %s query for %s: answer %+v", e.Qtype, e.Qname, e.Records)
	}
}

func TestAdvertiseTakesAFreeName(t *testing.T) {
	ip, python := peers(t)
	nsA, nsB := namespaces(t, ip)
	s := exampleService()
	s.Name = "Relais – Médiathèque"
	s.Port = 8632

	// python-zeroconf holds the name first.
	br := startBrowser(t, ip, python, nsB, "--register", s.Name, "631")
	br.until(t, "python-zeroconf's registration", func(e event) bool { return e.Event == "registered" })

	adv := startAdvertiser(t, ip, nsA, s)
	want := s.Name + " (2)._ipp._tcp.local."
	seen := presence{}
	br.until(t, want+" under the type and both subtypes", func(e event) bool {
		seen.note(e, want)
		if e.Event == "info" && e.Name == want && e.Port != s.Port {
			t.Errorf("%s resolved to port %d, want %d", want, e.Port, s.Port)
		}
		return seen.all(true)
	})
	stopAdvertiser(t, adv)
	br.until(t, want+" removed", func(e event) bool {
		seen.note(e, want)
		return seen.all(false)
	})
}
