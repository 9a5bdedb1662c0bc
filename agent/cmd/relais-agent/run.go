package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/probe"
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
	if !cfg.Panel.Simulate {
		if err := probe.CheckPins(cfg.Panel); err != nil {
			return err
		}
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

	a := &agent{cfg: cfg, configPath: cf.path, started: time.Now()}
	srv := ctl.NewServer()
	srv.Handle("status", a.status)
	if err := srv.Listen(cfg.Storage.Dir); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error {
		systemd.Watchdog(gctx, a.alive)
		return nil
	})
	slog.Info("relais-agent started", "version", buildVersion(), "site", cfg.Site.ID, "agent", cfg.Site.Agent,
		"storage", cfg.Storage.Dir, "services", "none yet: print, scan and reporting come in later versions")
	systemd.Ready()
	systemd.Status("running")

	<-gctx.Done()
	systemd.Stopping()
	slog.Info("relais-agent stopping")
	stop()
	return g.Wait()
}

// agent is the running agent's state that the control socket reports.
type agent struct {
	cfg        *configs.Agent
	configPath string
	started    time.Time
}

// alive is the agent's own health check for the systemd watchdog: the
// storage directory must still be there and writable.
func (a *agent) alive() error {
	return syscall.Access(a.cfg.Storage.Dir, 2 /* W_OK */)
}

type statusData struct {
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Site     string    `json:"site"`
	Agent    string    `json:"agent"`
	Config   string    `json:"config"`
	Storage  string    `json:"storage"`
	Services []string  `json:"services"`
}

func (a *agent) status(ctx context.Context, req ctl.Request) (string, any, error) {
	p := locale.Printer(locale.Match(req.Lang))
	d := statusData{
		Version: buildVersion(), Started: a.started, Site: a.cfg.Site.ID, Agent: a.cfg.Site.Agent,
		Config: a.configPath, Storage: a.cfg.Storage.Dir, Services: []string{},
	}
	services := p.Sprintf("none yet")
	var b strings.Builder
	fmt.Fprintln(&b, p.Sprintf("relais-agent %s, up %s", d.Version, time.Since(a.started).Round(time.Second)))
	fmt.Fprintln(&b, p.Sprintf("site %s, agent %s (%s)", d.Site, d.Agent, a.cfg.Site.Name))
	fmt.Fprintln(&b, p.Sprintf("storage in %s", d.Storage))
	fmt.Fprint(&b, p.Sprintf("services: %s", services))
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
