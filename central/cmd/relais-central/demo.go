package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/broker"
	"github.com/relais-fr/relais/central/demo"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/configs"
)

// demoCommand is `relais-central demo`: central with its embedded broker and
// SQLite in a scratch directory, and three simulated sites reporting to it
// (see package demo), all on 127.0.0.1, until interrupted.
func demoCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relais-central demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "serve the dashboard on `ADDR` (a loopback address; a free port when it is taken)")
	dir := fs.String("dir", "", "keep the demo's state in `DIR` (default: a new temporary directory, removed at the end)")
	agentBin := fs.String("agent-bin", "", "the relais-agent `executable` (default: beside relais-central)")
	step := fs.Duration("step", 6*time.Second, "time between two visitors' actions at a site")
	seed := fs.Uint64("seed", 1, "seed of the scenario")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if host, _, err := net.SplitHostPort(*httpAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("--http %q: want a loopback address such as 127.0.0.1:8080", *httpAddr)
	}
	if *agentBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		*agentBin = filepath.Join(filepath.Dir(exe), "relais-agent")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "relais-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg := configs.DefaultCentral()
	cfg.HTTP.Listen = *httpAddr
	if ln, err := net.Listen("tcp", *httpAddr); err != nil {
		cfg.HTTP.Listen = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	cfg.Broker.Listen = "127.0.0.1:0"
	cfg.Storage.Dir = filepath.Join(*dir, "central")
	cfg.Alerts.OfflineAfter = time.Minute
	c, err := startCentral(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	password := rand.Text()[:16]
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	if err := c.store.AddUser(ctx, store.User{Name: "demo", Role: store.Admin, PasswordHash: hash, Created: time.Now().UTC()}); err != nil {
		return err
	}
	cfg.HTTP.PublicURL = "http://" + c.httpLn.Addr().String()

	served := make(chan error, 1)
	sctx, stopCentral := context.WithCancel(context.Background())
	defer stopCentral()
	go func() { served <- c.Serve(sctx) }()

	register := func(ctx context.Context, site, agent string) (string, string, error) {
		pw, err := broker.NewSecret()
		if err != nil {
			return "", "", err
		}
		h, err := broker.HashSecret(pw)
		if err != nil {
			return "", "", err
		}
		err = c.store.AddAgent(ctx, store.Agent{Site: site, Agent: agent, SecretHash: h, Created: time.Now().UTC()})
		return broker.Username(site, agent), pw, err
	}
	fmt.Fprintln(stdout, dtr("starting", *dir))
	err = demo.Run(ctx, demo.Options{
		Dir:      filepath.Join(*dir, "sites"),
		AgentBin: *agentBin,
		Broker:   "mqtt://" + c.broker.Addr().String(),
		Register: register,
		Step:     *step,
		Seed:     *seed,
		Logger:   log,
		Ready: func(sites []*demo.Site) {
			fmt.Fprintln(stdout, dtr("dashboard", cfg.HTTP.PublicURL, "demo", password))
			for _, s := range sites {
				fmt.Fprintln(stdout, dtr("site", s.Name, s.Web, s.IPP, s.Log))
			}
			fmt.Fprintln(stdout, dtr("stop"))
		},
	})
	stopCentral()
	if serr := <-served; err == nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(stdout, dtr("stopped"))
	return nil
}

var demoMessages = map[string]map[string]string{
	"fr": {
		"starting":  "Démarrage de la démonstration Relais (état dans %s)…",
		"dashboard": "\nTableau de bord : %s\n  identifiant : %s\n  mot de passe : %s\n\nSites simulés (page locale, file d'impression IPP, journal de l'agent) :",
		"site":      "  %-26s %s  %s\n  %26s journal : %s",
		"stop":      "\nCtrl-C arrête tout.",
		"stopped":   "Démonstration arrêtée.",
	},
	"en": {
		"starting":  "Starting the Relais demo (state in %s)…",
		"dashboard": "\nDashboard: %s\n  login: %s\n  password: %s\n\nSimulated sites (local page, IPP print queue, agent log):",
		"site":      "  %-26s %s  %s\n  %26s log: %s",
		"stop":      "\nCtrl-C stops everything.",
		"stopped":   "Demo stopped.",
	},
}

func dtr(key string, args ...any) string {
	lang := "fr"
	if english() {
		lang = "en"
	}
	m := demoMessages[lang][key]
	if key == "site" && len(args) == 4 {
		args = []any{args[0], args[1], args[2], "", args[3]}
	}
	return fmt.Sprintf(m, args...)
}
