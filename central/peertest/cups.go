package peertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
)

// Cupsd is a private CUPS scheduler (Debian's cupsd, package cups) that a
// test runs in the foreground on a free loopback port, with its own
// ServerRoot, spool, cache, state and logs: the client programs lpadmin,
// lp and lpstat reach it with -h Addr. It listens on 127.0.0.1 only, does
// not browse or share, and cannot reach any D-Bus (so no Avahi, no DNS-SD):
// it neither advertises nor discovers anything. Its policy lets anyone on
// the loopback do anything, with no authentication.
type Cupsd struct {
	Addr    string // 127.0.0.1:PORT
	Dir     string // ServerRoot and the rest, one subdirectory each
	LogPath string // cupsd's error log (LogLevel debug)

	proc *process
	env  []string // for the client programs
}

// CUPS starts cupsd for the test and stops it when the test ends. It skips
// (or fails, see Required) when cupsd or its client programs are missing.
//
// cupsd refuses to run its filters and backends as root, so they run as
// the user lp, and the directories are made under os.TempDir with mode
// 0755 (a test's own temporary directory is 0700) and removed when the
// test ends.
func CUPS(t testing.TB) *Cupsd {
	t.Helper()
	bin := Program(t, "cupsd", "cups-daemon")
	for _, p := range []string{"lpadmin", "lp", "lpstat"} {
		Program(t, p, "cups-client")
	}
	if os.Geteuid() != 0 {
		Missing(t, "a private cupsd must run as root (it runs its backends as lp)")
	}
	dir, err := os.MkdirTemp("", "relais-cups-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"root", "spool", "cache", "state", "tmp", "log", "client", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := FreePort(t)
	c := &Cupsd{
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		Dir:     dir,
		LogPath: filepath.Join(dir, "log", "error_log"),
	}
	files := fmt.Sprintf(cupsFilesConf, dir)
	conf := fmt.Sprintf(cupsdConf, c.Addr)
	if err := os.WriteFile(filepath.Join(dir, "cups-files.conf"), []byte(files), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root", "cupsd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The client programs read client.conf and lpoptions from
	// CUPS_SERVERROOT and ~/.cups: both empty here.
	c.env = append(os.Environ(), "CUPS_SERVERROOT="+filepath.Join(dir, "client"), "HOME="+filepath.Join(dir, "home"))
	cmd := exec.Command(bin, "-f", "-c", filepath.Join(dir, "root", "cupsd.conf"), "-s", filepath.Join(dir, "cups-files.conf"))
	// No bus at this address: cupsd cannot reach Avahi or anything else.
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+filepath.Join(dir, "no-bus"))
	c.proc, err = startProcess(cmd, filepath.Join(dir, "log", "cupsd.out"))
	if err != nil {
		t.Fatalf("cupsd: %v", err)
	}
	t.Cleanup(func() {
		c.proc.stop()
		if t.Failed() {
			logTail(t, "cupsd", c.LogPath)
		}
	})
	if err := c.awaitReady(20 * time.Second); err != nil {
		logTail(t, "cupsd", filepath.Join(dir, "log", "cupsd.out"))
		t.Fatalf("cupsd: %v", err)
	}
	return c
}

// cupsFilesConf is cups-files.conf; %[1]s is the directory.
const cupsFilesConf = `User lp
Group lp
ServerRoot %[1]s/root
RequestRoot %[1]s/spool
CacheDir %[1]s/cache
StateDir %[1]s/state
TempDir %[1]s/tmp
ErrorLog %[1]s/log/error_log
AccessLog %[1]s/log/access_log
PageLog %[1]s/log/page_log
Printcap %[1]s/printcap
Sandboxing Relaxed
FileDevice No
`

// cupsdConf is cupsd.conf; %s is the listen address.
const cupsdConf = `Listen %s
Browsing No
BrowseLocalProtocols none
WebInterface No
LogLevel debug
DefaultAuthType None
DefaultShared No
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
`

// awaitReady polls cupsd with CUPS-Get-Printers until it answers, it
// exits, or limit passes.
func (c *Cupsd) awaitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req := goipp.NewRequest(goipp.MakeVersion(2, 0), goipp.Op(0x4002), 1) // CUPS-Get-Printers
		req.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
		req.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
		_, err := postIPP("http://"+c.Addr+"/", req)
		if err == nil || strings.Contains(err.Error(), "IPP status") {
			return nil // an IPP answer, even "not found" while no queue exists
		}
		select {
		case <-c.proc.done:
			return fmt.Errorf("exited (%v) before answering", c.proc.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %v: %v", limit, err)
		}
	}
}

// Run runs one of CUPS's client programs (lpadmin, lp, lpstat, cancel,
// ...) against this cupsd, adding -h Addr, and returns its standard
// output; the test fails if the program does.
func (c *Cupsd) Run(t testing.TB, program string, args ...string) string {
	t.Helper()
	bin := Program(t, program, "cups-client")
	cmd := exec.Command(bin, append([]string{"-h", c.Addr}, args...)...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", program, strings.Join(args, " "), err, out.Bytes(), errb.Bytes())
	}
	return out.String()
}

// AddQueue creates and enables the queue name for the IPP Everywhere
// printer at uri, as lpadmin -p NAME -E -v URI -m everywhere does: lpadmin
// asks the printer for its attributes and makes the queue's PPD from them.
func (c *Cupsd) AddQueue(t testing.TB, name, uri string) {
	t.Helper()
	c.Run(t, "lpadmin", "-p", name, "-E", "-v", uri, "-m", "everywhere")
}

var requestID = regexp.MustCompile(`request id is (\S+)-(\d+) `)

// Print submits file to the queue with lp -d QUEUE [-o OPTION]... FILE and
// returns the job id; Print(t, q, f, "raw") sends the file unfiltered.
func (c *Cupsd) Print(t testing.TB, queue, file string, options ...string) int {
	t.Helper()
	args := []string{"-d", queue}
	for _, o := range options {
		args = append(args, "-o", o)
	}
	out := c.Run(t, "lp", append(args, file)...)
	m := requestID.FindStringSubmatch(out)
	if m == nil || m[1] != queue {
		t.Fatalf("lp: no request id for %s in %q", queue, out)
	}
	id, _ := strconv.Atoi(m[2])
	return id
}

// CompletedJobs returns the ids of the queue's completed jobs, as lpstat
// -W completed -o QUEUE lists them.
func (c *Cupsd) CompletedJobs(t testing.TB, queue string) []int {
	t.Helper()
	var ids []int
	for _, line := range strings.Split(c.Run(t, "lpstat", "-W", "completed", "-o", queue), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		q, id, ok := strings.Cut(f[0], "-")
		if n, err := strconv.Atoi(id); ok && q == queue && err == nil {
			ids = append(ids, n)
		}
	}
	return ids
}

// WaitJob waits at most limit for the job to be finished and fails the
// test unless it completed: aborted and canceled jobs fail with their
// state reasons. It asks cupsd with Get-Job-Attributes, which, unlike
// lpstat, tells completed jobs from aborted or canceled ones.
func (c *Cupsd) WaitJob(t testing.TB, queue string, id int, limit time.Duration) {
	t.Helper()
	uri := fmt.Sprintf("ipp://%s/printers/%s", c.Addr, queue)
	deadline := time.Now().Add(limit)
	for {
		req := goipp.NewRequest(goipp.MakeVersion(2, 0), goipp.OpGetJobAttributes, 1)
		req.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
		req.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
		req.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(uri)))
		req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
		req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword,
			goipp.String("job-state"), goipp.String("job-state-reasons"), goipp.String("job-printer-state-message")))
		resp, err := postIPP("http://"+c.Addr+"/printers/"+queue, req)
		if err != nil {
			t.Fatalf("cupsd job %s-%d: %v", queue, id, err)
		}
		var state int
		var detail []string
		for _, a := range resp.Job {
			for _, v := range a.Values {
				if a.Name == "job-state" {
					if n, ok := v.V.(goipp.Integer); ok {
						state = int(n)
					}
				} else {
					detail = append(detail, a.Name+"="+v.V.String())
				}
			}
		}
		switch {
		case state == 9:
			return
		case state == 7 || state == 8:
			ppd, _ := os.ReadFile(filepath.Join(c.Dir, "root", "ppd", queue+".ppd"))
			t.Fatalf("cupsd job %s-%d ended in state %d: %s\nPPD:\n%s", queue, id, state, strings.Join(detail, ", "), ppd)
		case time.Now().After(deadline):
			t.Fatalf("cupsd job %s-%d in state %d after %v: %s", queue, id, state, limit, strings.Join(detail, ", "))
		}
		<-time.After(20 * time.Millisecond)
	}
}

// PID is cupsd's process id, for measuring it (RSS, CPU time).
func (c *Cupsd) PID() int { return c.proc.cmd.Process.Pid }
