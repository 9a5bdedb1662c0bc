// Package demo runs simulated Relais sites on one machine for `relais-central
// demo`: each site is a real relais-agent process (simulated button and LED)
// in front of an in-process simulated printer and eSCL scanner, reporting to
// the central that the demo runs beside it. A scenario then plays a day at
// the access point, compressed: PCs print, visitors press the button for
// copies and scans, paper runs out and is refilled, a scanner jams and is
// cleared, and one site loses its uplink for a while, so that the dashboard
// shows usage accumulating and faults appearing and clearing within a minute.
// Everything listens on 127.0.0.1 only.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/OpenPrinting/goipp"
	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/agent/sim/scanner"
	"github.com/relais-fr/relais/agent/upstream"
)

// SiteSpec names one simulated site.
type SiteSpec struct {
	ID, Agent, Name string
}

// DefaultSites are the three sites of the demo.
var DefaultSites = []SiteSpec{
	{ID: "mairie-centre", Agent: "pi-1", Name: "Mairie — accueil"},
	{ID: "ccas-nord", Agent: "pi-1", Name: "CCAS Nord"},
	{ID: "mediatheque", Agent: "pi-1", Name: "Médiathèque Jules-Verne"},
}

// Options configure Run.
type Options struct {
	// Dir is the scratch directory: one sub-directory per site holds the
	// agent's configuration, state and log.
	Dir string
	// AgentBin is the relais-agent executable.
	AgentBin string
	// Broker is central's MQTT address, mqtt://127.0.0.1:PORT.
	Broker string
	// Register creates the MQTT credentials of an agent and returns its
	// user name and password.
	Register func(ctx context.Context, site, agent string) (username, password string, err error)
	// Sites to simulate; nil means DefaultSites.
	Sites []SiteSpec
	// Step is the scenario's pace: the time between two actions at a
	// site. 0 means 6 s.
	Step time.Duration
	// Seed makes the scenario repeatable.
	Seed uint64
	// Ready is called once every agent runs, with the sites' addresses.
	Ready  func([]*Site)
	Logger *slog.Logger
}

// Site is a running simulated site.
type Site struct {
	SiteSpec
	Web     string // the agent's local page
	IPP     string // the agent's print queue
	Log     string // the agent's log file
	printer *printer.Printer
	scanner *scanner.Scanner
	agent   *agentProc
	jamming atomic.Bool // the feeder jams at every sheet
}

// Run starts the sites and plays the scenario until ctx is done, then stops
// every agent with SIGTERM (each keeps its accepted jobs) and the
// simulators.
func Run(ctx context.Context, o Options) error {
	if o.Sites == nil {
		o.Sites = DefaultSites
	}
	if o.Step <= 0 {
		o.Step = 6 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if _, err := os.Stat(o.AgentBin); err != nil {
		return fmt.Errorf("demo: relais-agent: %w (run `make build` first)", err)
	}
	var sites []*Site
	defer func() {
		for _, s := range sites {
			s.close()
		}
	}()
	for _, spec := range o.Sites {
		s, err := startSite(ctx, o, spec)
		if err != nil {
			return err
		}
		sites = append(sites, s)
	}
	if o.Ready != nil {
		o.Ready(sites)
	}
	var wg sync.WaitGroup
	for i, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			play(ctx, o, i, s)
		}()
	}
	wg.Wait()
	return nil
}

func startSite(ctx context.Context, o Options, spec SiteSpec) (*Site, error) {
	dir := filepath.Join(o.Dir, spec.ID)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	s := &Site{SiteSpec: spec, Log: filepath.Join(dir, "agent.log")}
	var err error
	if s.printer, err = printer.New(printer.Config{Name: "Imprimante " + spec.Name, Log: o.Logger.With("sim", "printer", "site", spec.ID)}); err != nil {
		return nil, err
	}
	if err := s.printer.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	if s.scanner, err = scanner.New(scanner.Config{}); err != nil {
		s.close()
		return nil, err
	}
	if err := s.scanner.Listen("127.0.0.1:0"); err != nil {
		s.close()
		return nil, err
	}
	username, password, err := o.Register(ctx, spec.ID, spec.Agent)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("demo: register %s/%s: %w", spec.ID, spec.Agent, err)
	}
	pwFile := filepath.Join(dir, "mqtt-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		s.close()
		return nil, err
	}
	ippPort, webPort, err := freePorts()
	if err != nil {
		s.close()
		return nil, err
	}
	s.IPP = fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", ippPort)
	s.Web = fmt.Sprintf("http://127.0.0.1:%d/", webPort)
	cfg := fmt.Sprintf(`# relais-agent configuration of the simulated site %[1]q (relais-central demo)
[site]
id = %[2]q
agent = %[3]q
name = %[1]q

[printer]
uri = %[4]q

[scanner]
driver = "escl"
url = %[5]q

[panel]
simulate = true

[ipp]
listen = "127.0.0.1:%[6]d"
dnssd = false

[web]
listen = "127.0.0.1:%[7]d"
allow = ["127.0.0.0/8"]

[mqtt]
broker = %[8]q
username = %[9]q
password_file = %[10]q

[storage]
dir = %[11]q
`, spec.Name, spec.ID, spec.Agent, s.printer.URI(), s.scanner.URL(), ippPort, webPort,
		o.Broker, username, pwFile, filepath.Join(dir, "state"))
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		s.close()
		return nil, err
	}
	s.agent = &agentProc{bin: o.AgentBin, config: path, state: filepath.Join(dir, "state"), log: s.Log}
	if err := s.agent.start(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("demo: site %s: %w", spec.ID, err)
	}
	return s, nil
}

func (s *Site) close() {
	if s.agent != nil {
		s.agent.stop()
	}
	if s.scanner != nil {
		s.scanner.Close()
	}
	if s.printer != nil {
		s.printer.Close()
	}
}

// freePorts returns two free loopback ports.
func freePorts() (int, int, error) {
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	return ports[0], ports[1], nil
}

// agentProc is one relais-agent child process.
type agentProc struct {
	bin, config, state, log string
	mu                      sync.Mutex
	cmd                     *exec.Cmd
	done                    chan struct{}
}

// start runs the agent and waits until its control socket answers.
func (a *agentProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(a.bin, "run", "--config", a.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LANG=fr_FR.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := ctl.Call(cctx, a.state, ctl.Request{Command: "status"})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("relais-agent stopped at start; see %s", a.log)
		case <-ctx.Done():
			a.stop()
			return ctx.Err()
		case <-time.After(200 * time.Millisecond): // polling the socket until it answers
		}
		if time.Now().After(deadline) {
			a.stop()
			return fmt.Errorf("relais-agent did not answer within 60 s; see %s", a.log)
		}
	}
}

// stop sends SIGTERM and waits for the agent, SIGKILL after 15 s.
func (a *agentProc) stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (a *agentProc) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd != nil
}

// play is one site's scenario. Every site has visitors; each also has one
// trouble of its own, repeated every few minutes: the first runs out of
// paper, the second's scanner jams, the third loses its uplink.
func play(ctx context.Context, o Options, index int, s *Site) {
	rng := rand.New(rand.NewPCG(o.Seed, uint64(index)))
	log := o.Logger.With("site", s.ID)
	cycle := 20 * o.Step // one round of the site's trouble
	start := time.Now()
	troubled := false
	for step := 0; ; step++ {
		wait := o.Step/2 + time.Duration(rng.Int64N(int64(o.Step)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		phase := time.Since(start) % cycle
		wantTrouble := phase >= 3*o.Step && phase < 11*o.Step
		if wantTrouble != troubled {
			troubled = wantTrouble
			if err := trouble(ctx, o, index, s, troubled); err != nil {
				log.Warn("demo: trouble", "err", err)
			}
		}
		if !s.agent.running() {
			continue
		}
		var err error
		switch r := rng.IntN(10); {
		case r < 5:
			err = printFromPC(ctx, s.IPP, 1+rng.IntN(4), rng.IntN(2) == 0)
		case r < 8:
			err = press(ctx, s, "short", 1+rng.IntN(2))
		default:
			err = press(ctx, s, "long", 1+rng.IntN(3))
		}
		if err != nil && ctx.Err() == nil {
			log.Info("demo: visitor action failed (part of the scenario when a device is down)", "err", err)
		}
	}
}

// trouble starts (on) or ends a site's trouble.
func trouble(ctx context.Context, o Options, index int, s *Site, on bool) error {
	switch index % 3 {
	case 0:
		cmd := "refill"
		if on {
			cmd = "media-empty"
		}
		_, err := s.printer.Command(cmd)
		return err
	case 1:
		s.jamming.Store(on)
		if on {
			return nil
		}
		_, err := s.scanner.Command("clear")
		if err == nil {
			// The next scan that works clears the agent's fault.
			err = press(ctx, s, "long", 1)
		}
		return err
	default:
		if on {
			s.agent.stop()
			return nil
		}
		return s.agent.start(ctx)
	}
}

// press loads sheets in the scanner's feeder and presses the button, once
// the previous simulated press is released (a long press lasts 3 s).
func press(ctx context.Context, s *Site, gesture string, sheets int) error {
	if err := s.scanner.LoadADF(sheets); err != nil {
		return err
	}
	if s.jamming.Load() {
		// The sheet just loaded jams as it is fed.
		for _, c := range []string{"clear", "jam 1"} {
			if _, err := s.scanner.Command(c); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := ctl.Call(cctx, s.agent.state, ctl.Request{Command: "press", Args: []string{gesture}})
		cancel()
		if err == nil && !resp.OK {
			err = errors.New(resp.Error)
		}
		if err == nil || !strings.Contains(err.Error(), "still held") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond): // the button is held: try again
		}
	}
}

// printFromPC sends a PDF of pages pages to the agent as a public PC does.
func printFromPC(ctx context.Context, uri string, pages int, phone bool) error {
	doc, err := document(pages)
	if err != nil {
		return err
	}
	c := &upstream.Client{URI: uri}
	req := c.NewRequest(goipp.OpPrintJob)
	user := "poste-public"
	if phone {
		user = "mobile"
	}
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(user)))
	req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String("document.pdf")))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = c.Do(cctx, req, bytes.NewReader(doc))
	return err
}

// document makes an A4 PDF of n pages.
func document(n int) ([]byte, error) {
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4})
	if err := pdf.AddTTFFontData("regular", goregular.TTF); err != nil {
		return nil, err
	}
	if err := pdf.SetFont("regular", "", 18); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		pdf.AddPage()
		pdf.SetXY(60, 80)
		if err := pdf.Cell(nil, "Relais demo page "+strconv.Itoa(i)+"/"+strconv.Itoa(n)); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if _, err := pdf.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
