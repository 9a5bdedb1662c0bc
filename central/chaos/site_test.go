package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/hostapd/hostapdtest"
	"github.com/relais-fr/relais/agent/sim/scanner"
	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// siteID is the site of every agent of the scenario.
const siteID = "chaos"

// retention is the scan inbox's retention (the smallest the agent takes).
const retention = time.Minute

// site is one access point: an agent in front of its own printer and
// scanner, perhaps watching a hostapd, perhaps with its storage on a small
// tmpfs.
type site struct {
	agentID string
	agent   *proc
	storage string // the agent's storage directory
	ippURI  string // the agent's IPP queue
	printer *peertest.IPPEve
	scanner *scanner.Scanner
	hostapd *hostapdtest.Hostapd // nil unless the agent watches one
	mount   string               // the tmpfs holding storage, or ""
	ledger  *ledger
}

// siteOptions say what a site has besides its printer and scanner.
type siteOptions struct {
	tmpfs   bool // storage on a 16 MiB tmpfs, to fill
	hostapd bool // a real hostapd (driver=none) that the agent watches
}

// newSite starts the site's peers and its agent, reporting to brokerAddr.
func newSite(t *testing.T, bin string, n int, brokerAddr string, opt siteOptions) *site {
	t.Helper()
	s := &site{agentID: fmt.Sprintf("pi-%d", n), ledger: newLedger()}
	s.printer = peertest.IPPEvePrinter(t, peertest.IPPEveOptions{Name: fmt.Sprintf("Chaos Printer %d", n)})
	sc, err := scanner.New(scanner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	s.scanner = sc

	dir := t.TempDir()
	s.storage = filepath.Join(dir, "state")
	if opt.tmpfs {
		s.mount = filepath.Join(dir, "disk")
		if err := os.Mkdir(s.mount, 0o700); err != nil {
			t.Fatal(err)
		}
		// A tmpfs of 16 MiB: small enough to fill at once, large
		// enough for the outbox, the spool and a few scans.
		if err := syscall.Mount("relais-chaos", s.mount, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=16m,mode=0700"); err != nil {
			peertest.Missing(t, "cannot mount a tmpfs for the agent's storage (the full-disk fault needs root): %v", err)
		}
		// Registered before the agent's cleanup (below), so run after
		// it: the agent is gone when the tmpfs is unmounted.
		t.Cleanup(func() {
			if err := syscall.Unmount(s.mount, 0); err != nil {
				syscall.Unmount(s.mount, syscall.MNT_DETACH)
			}
		})
		s.storage = filepath.Join(s.mount, "state")
	}
	if err := os.MkdirAll(s.storage, 0o700); err != nil {
		t.Fatal(err)
	}
	ippPort := peertest.FreePort(t)
	s.ippURI = fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", ippPort)
	wifi := ""
	if opt.hostapd {
		s.hostapd = hostapdtest.Start(t)
		wifi = fmt.Sprintf("\n[wifi]\nhostapd_ctrl = %q\n", s.hostapd.Ctrl)
	}
	// Jobs come from one client at a steady pace: no per-client limit.
	// Scans at 75 dpi keep the simulator's pages small.
	cfg := fmt.Sprintf(`[site]
id = %q
agent = %q
name = "Chaos %d"

[printer]
uri = %q

[scanner]
driver = "escl"
url = %q
resolution = 75

[panel]
simulate = true

[ipp]
listen = "127.0.0.1:%d"
dnssd = false
jobs_per_client_per_minute = 10000

[web]
listen = "127.0.0.1:%d"

[scans]
retention = %q

[mqtt]
broker = "mqtt://%s"
username = "%s/%s"
%s
[storage]
dir = %q
`, siteID, s.agentID, n, s.printer.URI, sc.URL(), ippPort, peertest.FreePort(t), retention.String(),
		brokerAddr, siteID, s.agentID, wifi, s.storage)
	conf := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.agent = newProc(t, "relais-agent-"+s.agentID, filepath.Join(bin, "relais-agent"), "run", "--config", conf)
	s.agent.notify = true
	s.agent.start()
	return s
}

// agentStatus is what the scenario reads of `ctl status`.
type agentStatus struct {
	Faults  []api.Fault `json:"faults"`
	Central *struct {
		Connected         bool
		Connects, Resends uint64
	} `json:"central"`
	Outbox struct {
		Depth   uint64 `json:"depth"`
		LastSeq uint64 `json:"last_seq"`
		LastAck uint64 `json:"last_ack"`
	} `json:"outbox"`
}

// ctl sends one request to the agent's control socket and decodes its
// data into v (if not nil).
func (s *site) ctl(command string, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := ctl.Call(ctx, s.storage, ctl.Request{Command: command, Args: args, Lang: "en"})
	if err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("ctl %s: %s", command, resp.Error)
	}
	if v != nil {
		return json.Unmarshal(resp.Data, v)
	}
	return nil
}

// status asks the agent for its status.
func (s *site) status() (agentStatus, error) {
	var st agentStatus
	err := s.ctl("status", &st)
	return st, err
}

// hasFault reports whether the agent shows the fault now.
func (s *site) hasFault(code string) bool {
	st, err := s.status()
	if err != nil {
		return false
	}
	for _, f := range st.Faults {
		if f.Code == code {
			return true
		}
	}
	return false
}

// jobLine is the part of `ctl queue --json` the scenario reads.
type jobLine struct {
	ID     int    `json:"id"`
	State  string `json:"state"`
	Source string `json:"source"`
}

// queueIdle reports whether every job of the agent's queue is finished.
func (s *site) queueIdle() (bool, error) {
	var jobs []jobLine
	if err := s.ctl("queue", &jobs); err != nil {
		return false, err
	}
	for _, j := range jobs {
		switch j.State {
		case "completed", "canceled", "aborted":
		default:
			return false, nil
		}
	}
	return true, nil
}

// submit prints doc on the agent as a PC does (Print-Job) and returns the
// outcome: accepted (successful-ok), refused with an IPP status, or
// unknown (no answer: the agent went away during the request).
func submit(uri string, doc []byte) (outcome, goipp.Status) {
	c := &upstream.Client{URI: uri}
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String("aidant")))
	req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String("attestation.pdf")))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Do(ctx, req, bytes.NewReader(doc))
	var se *upstream.StatusError
	switch {
	case err == nil:
		return accepted, goipp.StatusOk
	case errors.As(err, &se):
		return refused, se.Status
	case errors.Is(err, syscall.ECONNREFUSED):
		return down, 0
	}
	return unknown, 0
}

// markedPDF is a one-page PDF carrying mark in a comment after %%EOF, so
// that each printed copy can be traced to its submission.
func markedPDF(mark string) []byte {
	return append(peertest.PDF(1), []byte("%"+mark+"\n")...)
}

// A printed is one document the printer kept, as the scenario reads it.
type printed struct {
	path  string
	job   string // the agent's job UUID, from the upstream job name relais-<uuid>
	mark  string // the submission's mark; "" for a copy
	whole bool   // the document is complete (a cut upload is not)
}

// readPrinted reads what ippeveprinter kept: the file name holds the job
// name the agent gave, relais-<job uuid>; a marked PDF ends with its mark,
// a copy (a PDF made by the agent from the scanned pages) with %%EOF.
func readPrinted(t *testing.T, p *peertest.IPPEve) []printed {
	t.Helper()
	var out []printed
	for _, d := range p.Documents(t) {
		data, err := os.ReadFile(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		pr := printed{path: d.Path}
		base := filepath.Base(d.Path)
		if i := strings.Index(base, "relais-"); i >= 0 {
			pr.job = strings.TrimSuffix(base[i+len("relais-"):], filepath.Ext(base))
		}
		if i := bytes.LastIndex(data, []byte("%%EOF\n%")); i >= 0 && bytes.HasSuffix(data, []byte("\n")) {
			pr.mark = strings.TrimSpace(string(data[i+len("%%EOF\n%"):]))
			pr.whole = pr.mark != ""
		} else {
			pr.whole = bytes.HasSuffix(bytes.TrimRight(data, "\r\n "), []byte("%%EOF"))
		}
		out = append(out, pr)
	}
	return out
}

// fill writes to path until the file system is full (ENOSPC), and returns
// the bytes written.
func fill(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			// The last pages: smaller writes until not a byte fits.
			for _, size := range []int{4096, 512, 1} {
				for {
					m, err := f.Write(buf[:size])
					n += int64(m)
					if err != nil {
						break
					}
				}
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// freeBytes is the room left on the file system holding path.
func freeBytes(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// scanAges returns the age of every scan in the agent's inbox, from its
// metadata (created), or from the file's time for a document without one.
func scanAges(storage string, now time.Time) (map[string]time.Duration, error) {
	dir := filepath.Join(storage, "inbox")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ages := map[string]time.Duration{}
	for _, e := range entries {
		name := e.Name()
		id, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		switch ext {
		case ".json":
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // deleted meanwhile
				}
				return nil, err
			}
			var rec struct {
				Created time.Time `json:"created"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			ages[id] = now.Sub(rec.Created)
		default:
			if _, ok := ages[id]; ok {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			ages[id] = now.Sub(fi.ModTime())
		}
	}
	return ages, nil
}
