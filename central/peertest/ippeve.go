package peertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
	"golang.org/x/sys/unix"
)

// IPPEveOptions describe the printer that IPPEvePrinter runs. The zero
// value is a one-sided monochrome printer taking PDF, PWG raster, Apple
// raster and JPEG.
type IPPEveOptions struct {
	Name    string   // DNS-SD service name and printer-name; "Relais Test Printer" if empty
	Make    string   // printer make (-M); ippeveprinter's default if empty
	Model   string   // printer model (-m); ippeveprinter's default if empty
	Formats []string // document formats (-f); see DefaultIPPEveFormats
	Duplex  bool     // two-sided printing supported (-2)
	// Command, if set, is run for each job after the fault gate (see
	// IPPEve) with the kept document's path as its argument and
	// ippeveprinter's IPP_* environment; it may print "STATE: ..." and
	// "ATTR: ..." lines on its standard error, and a non-zero exit aborts
	// the job.
	Command string
}

// DefaultIPPEveFormats are the document formats of an IPPEvePrinter whose
// options name none.
var DefaultIPPEveFormats = []string{"application/pdf", "image/pwg-raster", "image/urf", "image/jpeg"}

// IPPEve is Debian's real ippeveprinter (package cups-ipp-utils) running
// as a test's upstream printer on a loopback port, with a private D-Bus
// and Avahi of its own (see IPPEvePrinter). It keeps every document it
// receives (-k) so that a test can compare them byte for byte.
//
// Out of paper is ippeveprinter's own: SetMediaEmpty empties every input
// tray through its /media web form, and the printer then reports
// media-empty (and media-needed while a job waits), and holds the job it
// is processing before running its print command, until the trays are
// filled again (it looks once a second).
//
// A jam goes through ippeveprinter's print command (-c), a shell script
// written into the test's temporary directory that runs for each job:
// while the file ctl/stall names printer-state-reasons (media-jam), the
// script reports them with "STATE: +reason" lines, writes the job id to
// ctl/stalled (see WaitStalled) and blocks reading the FIFO ctl/wake,
// which it holds open read-write from its start so that no wake-up is
// lost; the job stays processing. Clearing the file and writing a line to
// the FIFO lets the job finish. The script then reports
// job-impressions-completed: the PDF's page objects, or 1 for other
// formats, times copies.
type IPPEve struct {
	URI      string // ipp://127.0.0.1:PORT/ipp/print
	Port     int
	SpoolDir string // ippeveprinter's spool: one directory per run, run-1, run-2, ...
	LogPath  string // ippeveprinter's output, all runs
	Options  IPPEveOptions

	bin, bus, ctl, keys string

	mu         sync.Mutex
	run        int
	proc       *process
	stall      []string // reasons held in ctl/stall, in order
	mediaEmpty bool
	trays      []tray // the input trays as the printer started, for the /media form
	logged     bool
}

// A Document is a file ippeveprinter kept.
type Document struct {
	Run   int    // 1 until the first Restart, then 2, ...
	JobID int    // ippeveprinter's job-id, which starts at 1 again on each run
	Path  string // the kept file
}

// IPPEvePrinter starts ippeveprinter for the test and stops it, with its
// D-Bus and Avahi, when the test ends. It skips (or fails, see Required)
// when a program is missing or network namespaces cannot be created.
//
// ippeveprinter asserts and exits unless an Avahi daemon answers on the
// system D-Bus, so each IPPEvePrinter starts a private dbus-daemon on a
// UNIX socket in the test's temporary directory, and an avahi-daemon on
// that bus inside new network and mount namespaces (unshare --net
// --mount, as root): the new network namespace holds only a down loopback
// interface, so Avahi sends nothing anywhere, and its pid file goes to a
// tmpfs on /run private to it. ippeveprinter itself runs in the test's
// network namespace; with -n localhost it listens on 127.0.0.1 and ::1
// only.
func IPPEvePrinter(t testing.TB, opt IPPEveOptions) *IPPEve {
	t.Helper()
	bin := Program(t, "ippeveprinter", "cups-ipp-utils")
	bus := privateAvahi(t)
	if opt.Name == "" {
		opt.Name = "Relais Test Printer"
	}
	if len(opt.Formats) == 0 {
		opt.Formats = DefaultIPPEveFormats
	}
	dir := t.TempDir()
	p := &IPPEve{
		Port:     FreePort(t),
		SpoolDir: filepath.Join(dir, "spool"),
		LogPath:  filepath.Join(dir, "ippeveprinter.log"),
		Options:  opt,
		bin:      bin,
		bus:      bus,
		ctl:      filepath.Join(dir, "ctl"),
		keys:     filepath.Join(dir, "keys"),
	}
	p.URI = fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", p.Port)
	for _, d := range []string{p.SpoolDir, p.ctl, p.keys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(p.ctl, "wake"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(filepath.Join(p.ctl, "stall"), nil); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(printScript, shellQuote(p.ctl), shellQuote(opt.Command))
	if err := os.WriteFile(filepath.Join(p.ctl, "print"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.proc != nil {
			p.proc.stop()
			p.proc = nil
		}
		if t.Failed() {
			p.dumpLog(t)
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.startLocked(); err != nil {
		p.dumpLog(t)
		t.Fatalf("ippeveprinter: %v", err)
	}
	return p
}

// printScript is ippeveprinter's print command; %[1]s is the quoted
// control directory, %[2]s the quoted extra command (empty if none).
const printScript = `#!/bin/sh
# Print command of a peertest.IPPEvePrinter: fault gate, then page count.
ctl=%[1]s
extra=%[2]s
exec 3<>"$ctl/wake"
shown=
while reasons=$(cat "$ctl/stall") && [ -n "$reasons" ]; do
	for r in $reasons; do echo "STATE: +$r" >&2; done
	shown="$shown $reasons"
	echo "$IPP_JOB_ID" >"$ctl/stalled.tmp" && mv "$ctl/stalled.tmp" "$ctl/stalled"
	read -r _ <&3 || exit 1
done
rm -f "$ctl/stalled"
for r in $shown; do echo "STATE: -$r" >&2; done
pages=1
if [ "$CONTENT_TYPE" = application/pdf ]; then
	n=$(grep -ao '/Type */Page\([^s]\|$\)' "$1" | wc -l)
	[ "$n" -gt 0 ] && pages=$n
fi
echo "ATTR: job-impressions-completed=$((pages * ${IPP_COPIES:-1}))" >&2
if [ -n "$extra" ]; then
	exec "$extra" "$@"
fi
exit 0
`

func (p *IPPEve) startLocked() error {
	// A print command killed with the last run leaves its mark.
	if err := os.Remove(filepath.Join(p.ctl, "stalled")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	p.run++
	spool := filepath.Join(p.SpoolDir, fmt.Sprintf("run-%d", p.run))
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return err
	}
	args := []string{"-v", "-n", "localhost", "-p", strconv.Itoa(p.Port), "-d", spool, "-k",
		"-K", p.keys, "-c", filepath.Join(p.ctl, "print"), "-f", strings.Join(p.Options.Formats, ",")}
	if p.Options.Duplex {
		args = append(args, "-2")
	}
	if p.Options.Make != "" {
		args = append(args, "-M", p.Options.Make)
	}
	if p.Options.Model != "" {
		args = append(args, "-m", p.Options.Model)
	}
	args = append(args, p.Options.Name)
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.bus)
	proc, err := startProcess(cmd, p.LogPath)
	if err != nil {
		return err
	}
	p.proc = proc
	if err := p.awaitReady(proc, 20*time.Second); err != nil {
		proc.stop()
		p.proc = nil
		return err
	}
	if p.trays == nil {
		if p.trays, err = p.readTrays(); err != nil {
			proc.stop()
			p.proc = nil
			return err
		}
	}
	if p.mediaEmpty {
		return p.setTraysLocked(true)
	}
	return nil
}

// awaitReady polls Get-Printer-Attributes until ippeveprinter answers, it
// exits, or limit passes.
func (p *IPPEve) awaitReady(proc *process, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		_, err := p.attributes("printer-state")
		if err == nil {
			return nil
		}
		select {
		case <-proc.done:
			return fmt.Errorf("exited (%v) before answering; see %s", proc.err, p.LogPath)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %v: %v", limit, err)
		}
	}
}

// attributes asks the printer for the named attributes.
func (p *IPPEve) attributes(names ...string) (goipp.Attributes, error) {
	req := goipp.NewRequest(goipp.MakeVersion(2, 0), goipp.OpGetPrinterAttributes, 1)
	req.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	req.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	req.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(p.URI)))
	vals := make([]goipp.Value, len(names))
	for i, n := range names {
		vals[i] = goipp.String(n)
	}
	req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword, vals[0], vals[1:]...))
	resp, err := postIPP(fmt.Sprintf("http://127.0.0.1:%d/ipp/print", p.Port), req)
	if err != nil {
		return nil, err
	}
	return resp.Printer, nil
}

// postIPP sends an IPP request over HTTP and returns the response, or an
// error for a transport failure or an unsuccessful status.
func postIPP(target string, req *goipp.Message) (*goipp.Message, error) {
	body, err := req.EncodeBytes()
	if err != nil {
		return nil, err
	}
	return postIPPBody(target, body)
}

// postIPPBody posts an encoded request, perhaps followed by a document.
func postIPPBody(target string, body []byte) (*goipp.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", goipp.ContentType)
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", target, hresp.Status)
	}
	var resp goipp.Message
	if err := resp.Decode(io.LimitReader(hresp.Body, 8<<20)); err != nil {
		return nil, err
	}
	if st := goipp.Status(resp.Code); st > goipp.StatusOkEventsComplete {
		return &resp, fmt.Errorf("IPP status %v", st)
	}
	return &resp, nil
}

// A tray is one field set of ippeveprinter's /media form.
type tray struct {
	index             int
	size, kind, level string
}

// readTrays learns the input trays from the printer's attributes, in the
// terms of its /media form: media-source-supported index, ready size and
// type, and level.
func (p *IPPEve) readTrays() ([]tray, error) {
	attrs, err := p.attributes("media-source-supported", "media-col-ready", "printer-input-tray")
	if err != nil {
		return nil, err
	}
	var sources, inputs goipp.Values
	ready := map[string][2]string{}
	for _, a := range attrs {
		switch a.Name {
		case "media-source-supported":
			sources = a.Values
		case "printer-input-tray":
			inputs = a.Values
		case "media-col-ready":
			for _, v := range a.Values {
				col, ok := v.V.(goipp.Collection)
				if !ok {
					continue
				}
				var src, size, kind string
				for _, m := range col {
					if len(m.Values) == 0 {
						continue
					}
					switch m.Name {
					case "media-source":
						src = m.Values[0].V.String()
					case "media-size-name":
						size = m.Values[0].V.String()
					case "media-type":
						kind = m.Values[0].V.String()
					}
				}
				ready[src] = [2]string{size, kind}
			}
		}
	}
	var trays []tray
	for i, v := range sources {
		src := v.V.String()
		if src == "auto" || src == "manual" || strings.Contains(src, "-man") {
			continue
		}
		level := "-2"
		if i < len(inputs) {
			for _, f := range strings.Split(string(toBytes(inputs[i].V)), ";") {
				if l, ok := strings.CutPrefix(f, "level="); ok && l != "0" {
					level = l
				}
			}
		}
		trays = append(trays, tray{index: i, size: ready[src][0], kind: ready[src][1], level: level})
	}
	if len(trays) == 0 {
		return nil, errors.New("ippeveprinter reports no input tray")
	}
	return trays, nil
}

func toBytes(v goipp.Value) []byte {
	if b, ok := v.(goipp.Binary); ok {
		return b
	}
	return []byte(v.String())
}

// setTraysLocked submits ippeveprinter's /media form with every tray empty
// (level 0, so that it reports media-empty) or as it started.
func (p *IPPEve) setTraysLocked(empty bool) error {
	q := url.Values{}
	for _, tr := range p.trays {
		i := strconv.Itoa(tr.index)
		q.Set("size"+i, tr.size)
		q.Set("type"+i, tr.kind)
		if empty {
			q.Set("level"+i, "0")
		} else {
			q.Set("level"+i, tr.level)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/media?%s", p.Port, q.Encode()), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/media form: HTTP %s", resp.Status)
	}
	return nil
}

// SetMediaEmpty takes the paper out of every tray (empty) or puts it back.
// While empty, the printer reports media-empty, and the job it is
// processing waits, reporting media-needed, until the paper is back. The
// state survives Restart, as paper would.
func (p *IPPEve) SetMediaEmpty(t testing.TB, empty bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		if err := p.setTraysLocked(empty); err != nil {
			t.Fatalf("ippeveprinter media: %v", err)
		}
	}
	p.mediaEmpty = empty
}

// SetJammed jams the printer or clears the jam. While jammed, a job that
// starts stays processing (see WaitStalled) and the printer reports
// media-jam; a job already past that point finishes. The jam survives
// Restart.
func (p *IPPEve) SetJammed(t testing.TB, jammed bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setStallLocked(t, "media-jam", jammed)
}

func (p *IPPEve) setStallLocked(t testing.TB, reason string, on bool) {
	t.Helper()
	var next []string
	for _, r := range p.stall {
		if r != reason {
			next = append(next, r)
		}
	}
	if on {
		next = append(next, reason)
	}
	p.stall = next
	if err := writeAtomic(filepath.Join(p.ctl, "stall"), []byte(strings.Join(next, " "))); err != nil {
		t.Fatal(err)
	}
	if on {
		return
	}
	// Wake a waiting print command. Opening without blocking fails with
	// ENXIO when no command holds the FIFO: then none is waiting, and the
	// next one reads the new stall file before it waits.
	f, err := os.OpenFile(filepath.Join(p.ctl, "wake"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("\n")); err != nil && !errors.Is(err, syscall.EAGAIN) {
		t.Fatal(err)
	}
}

// WaitStalled waits at most limit for a job to be held by a jam (see
// SetJammed) and returns its job id.
func (p *IPPEve) WaitStalled(t testing.TB, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(filepath.Join(p.ctl, "stalled"))
		if err == nil {
			if id, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job held at the fault gate after %v", limit)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// Stop stops the printer, as if it were switched off: its port refuses
// connections until Restart. Jobs it had not finished are lost with it.
func (p *IPPEve) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.proc.stop()
		p.proc = nil
	}
}

// Restart starts the printer again on the same port, stopping it first if
// it runs. Its job ids start at 1 again; its documents go to a new run
// directory.
func (p *IPPEve) Restart(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.proc.stop()
		p.proc = nil
	}
	if err := p.startLocked(); err != nil {
		p.dumpLog(t)
		t.Fatalf("ippeveprinter restart: %v", err)
	}
}

// Documents lists the documents the printer has kept in full, in order of
// run and job id: a document still arriving (its job is job-incoming) is
// left out, as are ippeveprinter's print-command output files (.prn).
func (p *IPPEve) Documents(t testing.TB) []Document {
	t.Helper()
	p.mu.Lock()
	current := 0
	if p.proc != nil {
		current = p.run
	}
	p.mu.Unlock()
	var docs []Document
	runs, err := os.ReadDir(p.SpoolDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		run, ok := strings.CutPrefix(r.Name(), "run-")
		n, err := strconv.Atoi(run)
		if !ok || err != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(p.SpoolDir, r.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			id, _, ok := strings.Cut(f.Name(), "-")
			job, err := strconv.Atoi(id)
			if !ok || err != nil || strings.HasSuffix(f.Name(), ".prn") || n == current && p.incoming(job) {
				continue
			}
			docs = append(docs, Document{Run: n, JobID: job, Path: filepath.Join(p.SpoolDir, r.Name(), f.Name())})
		}
	}
	sort.Slice(docs, func(i, j int) bool {
		if docs[i].Run != docs[j].Run {
			return docs[i].Run < docs[j].Run
		}
		return docs[i].JobID < docs[j].JobID
	})
	return docs
}

// incoming reports whether the running printer is still receiving job
// id's document. A job it no longer knows (it forgets finished jobs after
// a minute) or cannot say about is not incoming.
func (p *IPPEve) incoming(id int) bool {
	req := goipp.NewRequest(goipp.MakeVersion(2, 0), goipp.OpGetJobAttributes, 1)
	req.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	req.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	req.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(p.URI)))
	req.Operation.Add(goipp.MakeAttr("job-id", goipp.TagInteger, goipp.Integer(id)))
	req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword, goipp.String("job-state-reasons")))
	resp, err := postIPP(fmt.Sprintf("http://127.0.0.1:%d/ipp/print", p.Port), req)
	if err != nil {
		return false
	}
	for _, a := range resp.Job {
		for _, v := range a.Values {
			if a.Name == "job-state-reasons" && v.V.String() == "job-incoming" {
				return true
			}
		}
	}
	return false
}

// WaitDocuments waits at most limit for the printer to have kept n
// documents, and returns them.
func (p *IPPEve) WaitDocuments(t testing.TB, n int, limit time.Duration) []Document {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		docs := p.Documents(t)
		if len(docs) >= n {
			return docs
		}
		if time.Now().After(deadline) {
			t.Fatalf("ippeveprinter kept %d documents after %v, want %d", len(docs), limit, n)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// dumpLog logs the tail of ippeveprinter's output, once.
func (p *IPPEve) dumpLog(t testing.TB) {
	if p.logged {
		return
	}
	p.logged = true
	logTail(t, "ippeveprinter", p.LogPath)
}

// logTail logs the last lines of a file for a failing test.
func logTail(t testing.TB, what, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	t.Logf("%s output (%s), last lines:\n%s", what, path, b)
}

// A process is a peer started in its own process group, whose output goes
// to a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed

	mu     sync.Mutex // held to signal the group, and to reap its leader
	reaped bool
}

// signal sends sig to the process group, unless its leader has been
// reaped (its id could then be another's).
func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		// Wait for the leader to exit without reaping it: while it is a
		// zombie, its pid, the group's id, cannot be reused, and the
		// group can be killed safely. What is left in it dies: such as
		// a print command that ippeveprinter forked as it was stopping
		// (the child, which inherited a lock held by exit, would hang
		// forever).
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		p.mu.Lock()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		p.err = cmd.Wait()
		p.reaped = true
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process and everything it started (its
// process group, such as a waiting print command) and waits for it to
// exit; SIGKILL follows after 10 s. The group is signalled only until its
// leader is reaped, so that its id cannot have been reused.
func (p *process) stop() {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

// privateAvahi starts a private dbus-daemon and an avahi-daemon on it, in
// network and mount namespaces of its own, and returns the bus address.
func privateAvahi(t testing.TB) string {
	t.Helper()
	dbus := Program(t, "dbus-daemon", "dbus-daemon")
	avahi := Program(t, "avahi-daemon", "avahi-daemon")
	unshare := Program(t, "unshare", "util-linux")
	if err := canUnshare(unshare); err != nil {
		Missing(t, "cannot create network and mount namespaces for a private avahi-daemon (run as root): %v", err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "system_bus_socket")
	bus := "unix:path=" + sock
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConf, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dbus, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=2")
	if err := StartAndWait(t, cmd, "unix:path=", 20*time.Second); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	aconf := filepath.Join(dir, "avahi-daemon.conf")
	if err := os.WriteFile(aconf, []byte(avahiConf), 0o644); err != nil {
		t.Fatal(err)
	}
	// unshare execs sh, which mounts a private /run and execs avahi: one
	// process, killed when the test ends.
	cmd = exec.Command(unshare, "--net", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", `mount -t tmpfs -o mode=0755,size=1m relais-avahi /run && exec "$0" "$@"`,
		avahi, "-f", aconf, "--no-drop-root", "--no-chroot", "--no-rlimits", "--no-proc-title")
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	if err := StartAndWait(t, cmd, "Server startup complete", 20*time.Second); err != nil {
		t.Fatalf("avahi-daemon: %v", err)
	}
	return bus
}

var unshareOnce struct {
	sync.Once
	err error
}

// canUnshare reports whether this process may create network and mount
// namespaces.
func canUnshare(unshare string) error {
	unshareOnce.Do(func() {
		out, err := exec.Command(unshare, "--net", "--mount", "true").CombinedOutput()
		if err != nil {
			unshareOnce.err = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
	})
	return unshareOnce.err
}

// busConf is a system-type bus that lets anyone own any name and send to
// anyone: a deny-by-default policy would block the replies. %s is the
// socket path.
const busConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`

// avahiConf keeps Avahi to the loopback interface, which in its own
// network namespace is down: it publishes to no one.
const avahiConf = `[server]
use-ipv4=yes
use-ipv6=yes
allow-interfaces=lo
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=no
publish-hinfo=no
publish-workstation=no
publish-domain=no
[reflector]
enable-reflector=no
`

// writeAtomic replaces a file's content through a rename, so that a reader
// sees the old content or the new, never a part.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PDF returns a small valid PDF of n blank A4 pages (at least one), with
// uncompressed page objects, for print tests.
func PDF(n int) []byte {
	if n < 1 {
		n = 1
	}
	kids := make([]string, n)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", i+3)
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n),
	}
	for range n {
		objs = append(objs, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>")
	}
	return PDFObjects(objs)
}

// PDFObjects assembles a PDF from the bodies of its objects, numbered from
// 1 (the catalog) in order, with an exact cross-reference table.
func PDFObjects(objs []string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
