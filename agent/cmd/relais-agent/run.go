package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/ippserver"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/agent/panel"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/agent/report"
	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/agent/web"
	"github.com/relais-fr/relais/agent/wifi"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
	"github.com/relais-fr/relais/systemd"
)

func runAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var cf configFlags
	cf.register(fs)
	debug := fs.Bool("debug", false, "log debugging detail")
	if err := parse(fs, args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	cfg, err := configs.LoadAgent(cf.path, configs.Overrides{Sets: cf.sets})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Storage.Dir, 0o750); err != nil {
		return err
	}
	unlock, err := lockDir(cfg.Storage.Dir)
	if err != nil {
		return err
	}
	defer unlock()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := openAgent(cfg, cf.path)
	if err != nil {
		return err
	}
	defer a.close()
	srv := ctl.NewServer()
	srv.Handle("status", a.status)
	queueCommands{a.queue, a.outbox}.register(srv)
	a.registerPanel(srv)
	if err := srv.Listen(cfg.Storage.Dir); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	ippLn, err := listen(cfg.IPP.Listen)
	if err != nil {
		return fmt.Errorf("[ipp] listen: %w", err)
	}
	webLn, err := listen(cfg.Web.Listen)
	if err != nil {
		return fmt.Errorf("[web] listen: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	// The panel runs before READY=1, so that a press (ctl press) right
	// after it is taken.
	if err := a.panel.Start(gctx); err != nil {
		return err
	}
	g.Go(func() error { a.panel.Wait(); return nil })
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return a.queue.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, ippLn, a.ipp) })
	g.Go(func() error { return a.watchHost(gctx) })
	if a.reporter != nil {
		g.Go(func() error { return a.reporter.Run(gctx) })
	}
	g.Go(func() error { return a.watchLED(gctx) })
	g.Go(func() error {
		d := &panel.Dispatcher{Panel: a.panel, Handlers: a.buttonHandlers(), Observe: a.observeGesture, Logger: slog.Default()}
		return d.Run(gctx)
	})
	g.Go(func() error { return a.inbox.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, webLn, a.web) })
	if a.wifi != nil {
		g.Go(func() error { return a.wifi.Run(gctx) })
	}
	if cfg.IPP.DNSSD {
		g.Go(func() error { return a.advertise(gctx, ippLn.Addr()) })
	}
	g.Go(func() error {
		systemd.Watchdog(gctx, a.alive)
		return nil
	})
	if err := a.outbox.Record(api.Event{Type: api.EventAgentStarted, Version: buildVersion()}); err != nil {
		slog.Error("cannot record agent.started", "err", err)
	}
	slog.Info("relais-agent started", "version", buildVersion(), "site", cfg.Site.ID, "agent", cfg.Site.Agent,
		"storage", cfg.Storage.Dir, "ipp", "ipp://"+ippLn.Addr().String()+ippserver.Path, "web", "http://"+webLn.Addr().String()+"/")
	systemd.Ready()
	systemd.Status("running")

	<-gctx.Done()
	systemd.Stopping()
	slog.Info("relais-agent stopping")
	stop()
	return g.Wait()
}

// agent is the running agent: its configuration and services.
type agent struct {
	cfg        *configs.Agent
	configPath string
	started    time.Time
	outbox     *outbox.Outbox
	queue      *printq.Queue
	ipp        *ippserver.Server
	inbox      *inbox.Inbox
	web        http.Handler
	wifi       *wifi.Watch // nil when the access point is not watched
	panel      *panel.Panel
	reporter   *report.Reporter // nil without a broker
	scanner    scan.Scanner     // nil without a scanner
	health     health
}

// openAgent opens the agent's durable state — the outbox, then the print
// queue, which records its events there — and builds its services.
func openAgent(cfg *configs.Agent, configPath string) (*agent, error) {
	ob, err := outbox.Open(filepath.Join(cfg.Storage.Dir, "outbox.db"), outbox.Options{})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	q, err := printq.Open(printq.Config{
		Dir:              filepath.Join(cfg.Storage.Dir, "spool"),
		PrinterURI:       cfg.Printer.URI,
		Hold:             cfg.Printer.Hold,
		HoldExpiry:       cfg.Printer.HoldExpiry,
		QuotaPagesPerDay: cfg.Printer.QuotaPagesPerDay,
		MaxJobBytes:      cfg.IPP.MaxJobBytes,
		Recorder:         ob,
		Faults:           ob,
	})
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("print queue: %w", err)
	}
	name := cfg.Site.Name
	if name == "" {
		name = cfg.Site.ID
	}
	a := &agent{cfg: cfg, configPath: configPath, started: time.Now(), outbox: ob, queue: q}
	// Without GPIO the agent refuses to start, unless the panel is
	// simulated: the button and LED are the visitor's whole interface.
	if a.panel, err = panel.Open(cfg.Panel, panel.Options{}); err != nil {
		a.close()
		return nil, err
	}
	if a.scanner, err = newScanner(cfg.Scanner); err != nil {
		a.close()
		return nil, fmt.Errorf("[scanner]: %w", err)
	}
	a.ipp = ippserver.New(q, ippserver.Config{
		Name:                   name,
		Location:               cfg.Site.Name,
		UUID:                   ippserver.PrinterUUID(cfg.Site.ID, cfg.Site.Agent),
		MaxJobBytes:            cfg.IPP.MaxJobBytes,
		JobsPerClientPerMinute: cfg.IPP.JobsPerClientPerMinute,
		Identify: func(actions []string, message string) {
			a.panel.Identify(panel.IdentifyDuration)
		},
	})
	a.inbox, err = inbox.Open(filepath.Join(cfg.Storage.Dir, "inbox"), inbox.Options{
		Retention:           cfg.Scans.Retention,
		DeleteAfterDownload: cfg.Scans.DeleteAfterDownload,
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("scan inbox: %w", err)
	}
	var allow []netip.Prefix
	for _, n := range cfg.Web.Allow {
		allow = append(allow, netip.MustParsePrefix(n)) // validated by configs
	}
	a.web = web.New(web.Config{Allow: allow, SiteName: name, Inbox: a.inbox, Queue: q, Status: a.pageStatus})
	if cfg.MQTT.Broker != "" {
		a.reporter, err = report.New(report.Config{
			MQTT: cfg.MQTT, Site: cfg.Site.ID, Agent: cfg.Site.Agent, Version: buildVersion(),
			Source: a, Commands: agentCommands{a},
		}, ob)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("[mqtt]: %w", err)
		}
	}
	if a.wifi, err = a.newWiFi(); err != nil {
		a.close()
		return nil, fmt.Errorf("[wifi]: %w", err)
	}
	return a, nil
}

func (a *agent) close() {
	if a.panel != nil {
		if err := a.panel.Close(); err != nil {
			slog.Error("closing the panel", "err", err)
		}
	}
	if err := a.queue.Close(); err != nil {
		slog.Error("closing the print queue", "err", err)
	}
	if err := a.outbox.Close(); err != nil {
		slog.Error("closing the outbox", "err", err)
	}
}

// alive is the agent's own health check for the systemd watchdog: the
// storage directory must still be there and writable.
func (a *agent) alive() error {
	return syscall.Access(a.cfg.Storage.Dir, 2 /* W_OK */)
}

type statusData struct {
	Version string        `json:"version"`
	Started time.Time     `json:"started"`
	Site    string        `json:"site"`
	Agent   string        `json:"agent"`
	Config  string        `json:"config"`
	Storage string        `json:"storage"`
	Printer string        `json:"printer"`
	Faults  []api.Fault   `json:"faults"`
	Central *report.State `json:"central,omitempty"`
	Outbox  struct {
		Depth   uint64 `json:"depth"`
		LastSeq uint64 `json:"last_seq"`
		LastAck uint64 `json:"last_ack"`
	} `json:"outbox"`
}

func (a *agent) status(ctx context.Context, req ctl.Request) (string, any, error) {
	p := locale.Printer(locale.Match(req.Lang))
	d := statusData{
		Version: buildVersion(), Started: a.started, Site: a.cfg.Site.ID, Agent: a.cfg.Site.Agent,
		Config: a.configPath, Storage: a.cfg.Storage.Dir, Printer: printerWords(p, a.queue.Printer()),
	}
	faults, err := a.outbox.OpenFaults()
	if err != nil {
		return "", nil, err
	}
	d.Faults = faults
	st, err := a.outbox.Stats()
	if err != nil {
		return "", nil, err
	}
	d.Outbox.Depth, d.Outbox.LastSeq, d.Outbox.LastAck = st.Depth, st.LastSeq, st.LastAck
	var b strings.Builder
	fmt.Fprintln(&b, p.Sprintf("relais-agent %s, up %s", d.Version, time.Since(a.started).Round(time.Second)))
	fmt.Fprintln(&b, p.Sprintf("site %s, agent %s (%s)", d.Site, d.Agent, a.cfg.Site.Name))
	fmt.Fprintln(&b, p.Sprintf("printer: %s", d.Printer))
	if len(faults) == 0 {
		fmt.Fprintln(&b, p.Sprintf("no fault"))
	}
	for _, f := range faults {
		fmt.Fprintln(&b, p.Sprintf("fault %s on %s since %s", f.Code, p.Sprintf(string(f.Device)), f.Since.Local().Format("2006-01-02 15:04:05")))
	}
	if a.reporter != nil {
		rs := a.reporter.State()
		d.Central = &rs
		if rs.Connected {
			fmt.Fprintln(&b, p.Sprintf("central: connected since %s", rs.Since.Local().Format("2006-01-02 15:04:05")))
		} else {
			fmt.Fprintln(&b, p.Sprintf("central: not connected (%s)", rs.LastError))
		}
	} else {
		fmt.Fprintln(&b, p.Sprintf("central: none configured"))
	}
	fmt.Fprintln(&b, p.Sprintf("events waiting for central: %d (last %d, acknowledged up to %d)", st.Depth, st.LastSeq, st.LastAck))
	fmt.Fprint(&b, p.Sprintf("storage in %s", d.Storage))
	return b.String(), d, nil
}

// lockDir takes an exclusive lock on the storage directory so that two
// agents never share one spool and outbox.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another relais-agent is running with storage in %s", dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
