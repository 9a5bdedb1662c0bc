package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/peertest"
)

// runningAgent is relais-agent run as a child process, as systemd runs it,
// on a fixed loopback IPP port so that it can be killed and restarted.
type runningAgent struct {
	t       *testing.T
	config  string
	storage string
	URI     string // the agent's IPP queue
	args    []string
	cmd     *exec.Cmd
	stderr  *peertest.SyncBuffer
}

// startAgent starts an agent forwarding to printerURI; sets are extra
// --set section.key=value overrides.
func startAgent(t *testing.T, printerURI string, sets ...string) *runningAgent {
	t.Helper()
	port := peertest.FreePort(t)
	body := fmt.Sprintf("\n[panel]\nsimulate = true\n\n[printer]\nuri = %q\n", printerURI)
	path, storage := writeConfig(t, body)
	a := &runningAgent{t: t, config: path, storage: storage, URI: fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", port)}
	a.args = []string{"run", "--config", path, "--set", fmt.Sprintf("ipp.listen=127.0.0.1:%d", port)}
	for _, s := range sets {
		a.args = append(a.args, "--set", s)
	}
	a.start()
	t.Cleanup(func() {
		if a.cmd != nil {
			a.cmd.Process.Kill()
			a.cmd.Wait()
		}
	})
	return a
}

func (a *runningAgent) start() {
	a.t.Helper()
	notify := peertest.ListenNotify(a.t)
	a.cmd = agentCommand(a.t, a.args...)
	a.cmd.Env = append(a.cmd.Env, "NOTIFY_SOCKET="+notify.Path)
	if a.stderr == nil {
		a.stderr = new(peertest.SyncBuffer)
	}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	notify.Await(a.t, "READY=1", 60*time.Second)
}

// kill stops the agent the hard way, as a power cut would.
func (a *runningAgent) kill() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
}

func (a *runningAgent) status() statusData {
	a.t.Helper()
	resp, err := ctl.Call(context.Background(), a.storage, ctl.Request{Command: "status"})
	if err != nil {
		a.t.Fatalf("ctl status: %v\n%s", err, a.stderr)
	}
	var d statusData
	if err := json.Unmarshal(resp.Data, &d); err != nil {
		a.t.Fatal(err)
	}
	return d
}

func (a *runningAgent) jobs() []jobLine {
	a.t.Helper()
	resp, err := ctl.Call(context.Background(), a.storage, ctl.Request{Command: "queue"})
	if err != nil {
		a.t.Fatalf("ctl queue: %v\n%s", err, a.stderr)
	}
	var jobs []jobLine
	if err := json.Unmarshal(resp.Data, &jobs); err != nil {
		a.t.Fatal(err)
	}
	return jobs
}

// waitFor polls cond, which asks the agent over its control socket, until
// it holds or limit passes.
func (a *runningAgent) waitFor(what string, limit time.Duration, cond func() bool) {
	a.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: not after %v\n%s", what, limit, a.stderr)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not synchronising
	}
}

func (a *runningAgent) drained() bool {
	for _, j := range a.jobs() {
		if j.State != "completed" && j.State != "canceled" && j.State != "aborted" {
			return false
		}
	}
	return true
}

// submit prints doc on the agent as a PC would, and reports whether the
// agent accepted the job.
func submit(uri string, doc []byte) error {
	c := &upstream.Client{URI: uri}
	req := c.NewRequest(goipp.OpPrintJob)
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String("aidant")))
	req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String("attestation-caf.pdf")))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Do(ctx, req, bytes.NewReader(doc))
	return err
}

// markedPDF is a one-page PDF that carries a mark of its own in a comment
// after %%EOF, so that each printed copy can be traced to its job.
func markedPDF(mark string) []byte {
	return append(peertest.PDF(1), []byte("%"+mark+"\n")...)
}

func markOf(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(data, []byte("%%EOF\n%"))
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(string(data[i+len("%%EOF\n%"):]))
}

// TestCUPSPrintsThroughAgent prints with real CUPS, on a queue created with
// lpadmin -m everywhere that points at the agent, and checks that the
// document reaches ippeveprinter intact.
func TestCUPSPrintsThroughAgent(t *testing.T) {
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	agent := startAgent(t, printer.URI)
	// lpadmin -m everywhere builds its PPD from the agent's attributes:
	// wait until they mirror the site printer's, as they do in service.
	agent.waitFor("the printer's capabilities", 60*time.Second, func() bool {
		return agent.status().Printer != "injoignable"
	})
	cups := peertest.CUPS(t)
	cups.AddQueue(t, "relais", agent.URI)

	// A JPEG photo of a paper: CUPS passes image/jpeg through untouched to
	// an IPP Everywhere printer that takes it (its PPD's filter is "-"), so
	// what ippeveprinter keeps can be compared byte for byte. (A PDF goes
	// through pdftopdf, and -o raw has no filter on an everywhere queue.)
	doc := filepath.Join(t.TempDir(), "attestation.jpg")
	img := image.NewGray(image.Rect(0, 0, 248, 351))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	want := jpg.Bytes()
	if err := os.WriteFile(doc, want, 0o600); err != nil {
		t.Fatal(err)
	}
	id := cups.Print(t, "relais", doc)
	cups.WaitJob(t, "relais", id, 60*time.Second)
	docs := printer.WaitDocuments(t, 1, 60*time.Second)
	got, err := os.ReadFile(docs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ippeveprinter received %d bytes that differ from the %d printed", len(got), len(want))
	}

	// The usage event is recorded for central, with counts and no name.
	agent.waitFor("job completed", 60*time.Second, agent.drained)
	out, _, code := run(t, "ctl", "--config", agent.config, "queue")
	_, events, _ := strings.Cut(out, "derniers événements pour le central :")
	if code != 0 || !strings.Contains(events, `"type":"print.completed","pages":1`) || !strings.Contains(events, `"source":"pc"`) {
		t.Errorf("ctl queue: exit %d\n%s", code, out)
	}
	if strings.Contains(events, "attestation") || strings.Contains(events, "root") {
		t.Errorf("an event names the document or its user:\n%s", events)
	}
}

// TestPrinterFaults: out of paper, a job waits and the fault shows within
// 10 s; with paper back the job is printed and the fault cleared. With the
// printer gone, jobs are still accepted, and they drain when it returns.
func TestPrinterFaults(t *testing.T) {
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	agent := startAgent(t, printer.URI)
	hasFault := func(code string) func() bool {
		return func() bool {
			for _, f := range agent.status().Faults {
				if f.Code == code {
					return true
				}
			}
			return false
		}
	}
	noFault := func() bool { // on the printer: the host may have its own
		for _, f := range agent.status().Faults {
			if f.Device == "printer" {
				return false
			}
		}
		return true
	}

	printer.SetMediaEmpty(t, true)
	if err := submit(agent.URI, markedPDF("paper")); err != nil {
		t.Fatal(err)
	}
	agent.waitFor("media-empty fault", 10*time.Second, hasFault("media-empty"))
	if agent.drained() {
		t.Error("the job completed without paper")
	}
	printer.SetMediaEmpty(t, false)
	printer.WaitDocuments(t, 1, 60*time.Second)
	agent.waitFor("job completed", 60*time.Second, agent.drained)
	agent.waitFor("fault cleared", 60*time.Second, noFault)

	printer.Stop(t)
	for i := range 3 {
		if err := submit(agent.URI, markedPDF(fmt.Sprintf("offline-%d", i))); err != nil {
			t.Fatalf("job %d refused while the printer is off: %v", i, err)
		}
	}
	agent.waitFor("printer-unreachable fault", 30*time.Second, hasFault("printer-unreachable"))
	printer.Restart(t)
	printer.WaitDocuments(t, 4, 120*time.Second)
	agent.waitFor("queue drained", 120*time.Second, agent.drained)
	agent.waitFor("fault cleared", 60*time.Second, noFault)
}
