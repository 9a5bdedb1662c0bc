package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/sync/errgroup"

	"github.com/relais-fr/relais/central/alert"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/broker"
	"github.com/relais-fr/relais/central/dashboard"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/metrics"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/central/webapi"
	"github.com/relais-fr/relais/configs"
	"github.com/relais-fr/relais/systemd"
)

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relais-central run", flag.ContinueOnError)
	load := configFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, nil)))
	cfg, err := load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := startCentral(ctx, cfg, slog.Default())
	if err != nil {
		return err
	}
	defer c.Close()
	if n, err := c.store.Users(ctx); err == nil && len(n) == 0 {
		slog.Warn(msg(firstAdmin))
	}
	slog.Info("relais-central started", "version", buildVersion(), "http", c.httpLn.Addr().String(),
		"broker", c.brokerDesc(), "db", dbDesc(cfg.DB.URL))
	systemd.Ready()
	err = c.Serve(ctx)
	systemd.Stopping()
	return err
}

// central is relais-central's parts, started and wired together.
type central struct {
	cfg      *configs.Central
	log      *slog.Logger
	store    store.Store
	ingester *ingest.Ingester
	broker   *broker.Broker // embedded broker, or nil
	client   *broker.Client // external broker, or nil
	auth     *auth.Auth
	dash     *dashboard.Dashboard
	alerter  *alert.Alerter
	httpLn   net.Listener
	http     *http.Server
	healthy  atomic.Bool
}

// commander is what sends commands to agents: the embedded broker or the
// external broker's client.
type commander interface {
	SendCommand(ctx context.Context, site, agent string, c api.Command) error
}

// startCentral opens the store, starts the ingester and the broker
// listeners, and listens for HTTP; Serve then runs them.
func startCentral(ctx context.Context, cfg *configs.Central, log *slog.Logger) (_ *central, err error) {
	c := &central{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage.dir: %w", err)
	}
	if c.store, err = store.Open(ctx, cfg.DB.URL, cfg.Storage.Dir); err != nil {
		return nil, fmt.Errorf("db.url: %w", err)
	}
	var dash atomic.Pointer[dashboard.Dashboard]
	c.ingester, err = ingest.New(ingest.Options{
		Store:  c.store,
		Logger: log,
		OnChange: func(site, agent string) {
			if d := dash.Load(); d != nil {
				d.Changed(site, agent)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	var cmd commander
	if cfg.Broker.Embedded {
		c.broker, err = broker.New(broker.Options{
			Listen:    cfg.Broker.Listen,
			TLSListen: cfg.Broker.TLSListen,
			CertFile:  cfg.Broker.CertFile,
			KeyFile:   cfg.Broker.KeyFile,
			Store:     c.store,
			Ingester:  c.ingester,
			Logger:    log,
		})
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		cmd = c.broker
	} else {
		c.client, err = broker.NewClient(broker.ClientOptions{
			URL:      cfg.Broker.URL,
			Ingester: c.ingester,
			Logger:   log,
		})
		if err != nil {
			return nil, fmt.Errorf("broker.url: %w", err)
		}
		cmd = c.client
	}
	secure := strings.HasPrefix(cfg.HTTP.PublicURL, "https:")
	c.auth = auth.New(auth.Options{Store: c.store, SecureCookie: secure, Logger: log})
	d, err := dashboard.New(dashboard.Options{
		Store:        c.store,
		Auth:         c.auth,
		Commander:    cmd,
		OfflineAfter: cfg.Alerts.OfflineAfter,
		Version:      buildVersion(),
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	c.dash = d
	dash.Store(d)
	c.alerter, err = alert.New(alert.Options{
		Store:        c.store,
		Clock:        clockwork.NewRealClock(),
		OfflineAfter: cfg.Alerts.OfflineAfter,
		FaultAfter:   cfg.Alerts.FaultAfter,
		WebhookURL:   cfg.Alerts.WebhookURL,
		SMTP: alert.SMTP{
			Addr:         cfg.Alerts.SMTPAddr,
			From:         cfg.Alerts.SMTPFrom,
			To:           cfg.Alerts.SMTPTo,
			Username:     cfg.Alerts.SMTPUsername,
			PasswordFile: cfg.Alerts.SMTPPasswordFile,
		},
		DashboardURL: strings.TrimSuffix(cfg.HTTP.PublicURL, "/"),
		Language:     alert.Language(cfg.Alerts.Language),
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	if c.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	c.http = &http.Server{
		Handler:           c.routes(cmd),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: the dashboard's live stream (SSE) stays open;
		// each handler bounds its own work.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The live streams of the dashboard never go idle: Shutdown ends them.
	c.http.RegisterOnShutdown(c.dash.Close)
	return c, nil
}

func (c *central) routes(cmd commander) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		state := map[string]string{"status": "ok", "version": buildVersion()}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := c.store.Rejections(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			state["status"], state["error"] = "store unavailable", err.Error()
		}
		json.NewEncoder(w).Encode(state)
	})
	mux.Handle("/api/v1/", webapi.Handler(webapi.Options{
		Store: c.store, Auth: c.auth, Commander: cmd,
		OfflineAfter: c.cfg.Alerts.OfflineAfter, Logger: c.log,
	}))
	mux.Handle("/metrics", metrics.Handler(metrics.Options{
		Store: c.store, Auth: c.auth,
		OfflineAfter: c.cfg.Alerts.OfflineAfter, Logger: c.log,
	}))
	mux.Handle("/", c.dash.Handler())
	return mux
}

// Serve runs the broker, the HTTP server and the alerts until ctx is done,
// then stops them: the HTTP server and the broker drain, and the ingester
// commits what it accepted.
func (c *central) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := c.http.Serve(c.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.http.Shutdown(shutdown)
	})
	g.Go(func() error {
		if c.broker != nil {
			return c.broker.Serve(ctx)
		}
		return c.client.Serve(ctx)
	})
	g.Go(func() error { return c.alerter.Run(ctx) })
	g.Go(func() error {
		systemd.Watchdog(ctx, func() error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.store.Rejections(cctx)
			return err
		})
		return nil
	})
	return g.Wait()
}

// Close releases what startCentral opened.
func (c *central) Close() error {
	if c.httpLn != nil {
		c.httpLn.Close()
	}
	if c.broker != nil {
		c.broker.Close()
	}
	if c.ingester != nil {
		c.ingester.Close()
	}
	if c.store != nil {
		return c.store.Close()
	}
	return nil
}

func (c *central) brokerDesc() string {
	if c.broker != nil {
		s := "mqtt://" + c.broker.Addr().String()
		if a := c.broker.TLSAddr(); a != nil {
			s += " mqtts://" + a.String()
		}
		return s
	}
	return redactURL(c.cfg.Broker.URL)
}

// dbDesc names the database without its password.
func dbDesc(u string) string {
	if strings.HasPrefix(u, "sqlite:") {
		return u
	}
	return redactURL(u)
}

func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexByte(s[i+3:], '@'); j >= 0 {
			return s[:i+3] + "…@" + s[i+3+j+1:]
		}
	}
	return s
}

// Messages of relais-central's own lines, in French (the default) and
// English.
type message int

const (
	firstAdmin message = iota
)

var messages = map[string]map[message]string{
	"fr": {firstAdmin: "aucun utilisateur : créez le premier administrateur avec « relais-central user add NOM --role admin »"},
	"en": {firstAdmin: "no user yet: create the first administrator with `relais-central user add NAME --role admin`"},
}

// msg returns m in the language of the environment (see english).
func msg(m message) string {
	if english() {
		return messages["en"][m]
	}
	return messages["fr"][m]
}
