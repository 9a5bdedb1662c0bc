package peertest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCUPSQueueToIPPEvePrinter(t *testing.T) {
	t.Parallel()
	p := IPPEvePrinter(t, IPPEveOptions{Formats: []string{"application/pdf", "image/pwg-raster", "image/urf"}})
	c := CUPS(t)
	if out := c.Run(t, "lpstat", "-r"); !strings.Contains(out, "scheduler is running") {
		t.Fatalf("lpstat -r: %q", out)
	}
	c.AddQueue(t, "relais", p.URI)
	if out := c.Run(t, "lpstat", "-v", "relais"); !strings.Contains(out, p.URI) {
		t.Errorf("lpstat -v: %q, want %s", out, p.URI)
	}
	doc := PDF(2)
	file := filepath.Join(t.TempDir(), "two pages.pdf")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Print(t, "relais", file, "raw")
	c.WaitJob(t, "relais", id, 30*time.Second)
	if done := c.CompletedJobs(t, "relais"); !slices.Contains(done, id) {
		t.Errorf("lpstat -W completed lists %v, not job %d", done, id)
	}
	docs := p.WaitDocuments(t, 1, 10*time.Second)
	got, err := os.ReadFile(docs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, doc) {
		t.Errorf("ippeveprinter kept %d bytes, not the %d-byte PDF that went through CUPS", len(got), len(doc))
	}
	// cupsd and ippeveprinter listen on the loopback only.
	if addrs := listening(t, c.proc.cmd.Process.Pid); len(addrs) != 1 || addrs[0] != c.Addr {
		t.Errorf("cupsd listens on %v, want only %s", addrs, c.Addr)
	}
	p.mu.Lock()
	pid := p.proc.cmd.Process.Pid
	p.mu.Unlock()
	for _, a := range listening(t, pid) {
		host, _, _ := net.SplitHostPort(a)
		if !net.ParseIP(host).IsLoopback() {
			t.Errorf("ippeveprinter listens on %s", a)
		}
	}
}

func TestCUPSWaitJobReportsCanceledJobs(t *testing.T) {
	t.Parallel()
	// A job held, then canceled, never reaches the printer, and WaitJob
	// fails naming the state it ended in.
	p := IPPEvePrinter(t, IPPEveOptions{})
	c := CUPS(t)
	c.AddQueue(t, "gone", p.URI)
	file := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(file, PDF(1), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Print(t, "gone", file, "raw", "job-hold-until=indefinite")
	c.Run(t, "cancel", fmt.Sprintf("gone-%d", id))
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		c.WaitJob(ft, "gone", id, 10*time.Second)
	}()
	if !strings.Contains(ft.msg, "state 7") {
		t.Errorf("WaitJob on a canceled job: %q, want a failure naming state 7", ft.msg)
	}
	if n := len(p.Documents(t)); n != 0 {
		t.Errorf("the canceled job reached the printer: %d documents", n)
	}
}

// fakeTB records the first Fatalf and stops the calling function, so that
// a test can check how a helper fails.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// listening returns the local addresses of the TCP sockets that process
// pid listens on, from /proc.
func listening(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var addrs []string
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local remote st ... inode is field 9; 0A is LISTEN.
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			addrs = append(addrs, procAddr(t, f[1]))
		}
	}
	slices.Sort(addrs)
	return addrs
}

// procAddr decodes an address of /proc/net/tcp{,6}: hex IP in host order
// by 32-bit word, colon, hex port.
func procAddr(t *testing.T, s string) string {
	h, p, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, _ := strconv.ParseUint(p, 16, 16)
	return net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(int(port)))
}
