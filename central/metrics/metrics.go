// Package metrics exposes relais-central's view of the fleet to Prometheus
// at /metrics: which agents are up and when they were last heard from,
// toner and ink levels, Wi-Fi clients, open faults, usage counters per site
// (pages printed, pages copied, scans, Wi-Fi visitors) and the messages
// ingest rejected. A custom collector reads the store at scrape time, within
// a timeout, so the numbers are never older than the scrape; labels are
// site and agent ids and supply names only, never a MAC address, a job name
// or a user. The handler sits behind central/auth: a Prometheus server
// scrapes with an API token, made once with
//
//	relais-central user token prometheus --role manager > /etc/prometheus/relais.token
//
// and named in its scrape configuration:
//
//	scrape_configs:
//	  - job_name: relais-central
//	    authorization:
//	      type: Bearer
//	      credentials_file: /etc/prometheus/relais.token
//	    static_configs:
//	      - targets: ["central.example.org:8080"]
//
// configs/grafana-dashboard.json is a Grafana dashboard of these metrics.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// Options configure the metrics handler.
type Options struct {
	Store store.Store
	// Auth guards the handler (any role); required.
	Auth *auth.Auth
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OfflineAfter is how long an agent may stay silent and still count as
	// up; 10 minutes when zero (the default of alerts.offline_after).
	OfflineAfter time.Duration
	// Timeout bounds the store queries of one scrape; 10 s when zero.
	Timeout time.Duration
	// Logger receives collection errors; slog.Default() when nil.
	Logger *slog.Logger
}

// maxOpenFaults bounds the open faults read by one scrape.
const maxOpenFaults = 100_000

// metric is one metric family of the collector.
type metric struct {
	desc      *prometheus.Desc
	name      string
	valueType prometheus.ValueType
}

func newMetric(name, help string, t prometheus.ValueType, labels ...string) metric {
	return metric{desc: prometheus.NewDesc(name, help, labels, nil), name: name, valueType: t}
}

// Collector reads the store when Prometheus scrapes.
type Collector struct {
	o     Options
	usage usageCounter

	up, lastSeen, marker, wifiClients, faultsOpen metric
	pages, copies, scans, visitors                metric
	rejected                                      metric
}

// NewCollector returns a collector of o.Store's fleet.
func NewCollector(o Options) *Collector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	return &Collector{
		o:           o,
		up:          newMetric("relais_agent_up", "1 when the agent's latest status is online and it was heard from within alerts.offline_after, else 0.", g, "site", "agent"),
		lastSeen:    newMetric("relais_agent_last_seen_timestamp_seconds", "Time of the latest message of the agent, in seconds since the Unix epoch.", g, "site", "agent"),
		marker:      newMetric("relais_printer_marker_ratio", "Supply (toner, ink, drum) level of the site printer, from 0 (empty) to 1 (full), as last reported; absent when the printer cannot tell.", g, "site", "agent", "marker", "color"),
		wifiClients: newMetric("relais_wifi_clients", "Stations associated with the site's access point, as last reported.", g, "site", "agent"),
		faultsOpen:  newMetric("relais_faults_open", "Faults of the agent's devices that are open (not cleared).", g, "site", "agent"),
		pages:       newMetric("relais_pages_total", "Pages printed from PCs and phones (impressions), from the daily usage rollups.", c, "site"),
		copies:      newMetric("relais_copies_total", "Pages copied with the button (photocopies), from the daily usage rollups.", c, "site"),
		scans:       newMetric("relais_scans_total", "Documents scanned to the inbox, from the daily usage rollups.", c, "site"),
		visitors:    newMetric("relais_wifi_visitors_total", "Sum of the daily distinct Wi-Fi visitors of the site's agents, from the daily usage rollups.", c, "site"),
		rejected:    newMetric("relais_ingest_rejected_total", "Messages refused by ingest, by reason (too-large, malformed, invalid, topic).", c, "reason"),
	}
}

func (c *Collector) metrics() []metric {
	return []metric{c.up, c.lastSeen, c.marker, c.wifiClients, c.faultsOpen, c.pages, c.copies, c.scans, c.visitors, c.rejected}
}

// Names returns the names of the metrics the collector exposes.
func (c *Collector) Names() []string {
	var names []string
	for _, m := range c.metrics() {
		names = append(names, m.name)
	}
	return names
}

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics() {
		ch <- m.desc
	}
}

// Collect reads the store and sends the current values. A store failure is
// sent as an invalid metric, which fails the scrape rather than exposing
// partial numbers as if they were complete.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	now := c.o.Now()
	fail := func(m metric, err error) {
		c.o.Logger.Error("metrics: cannot read the store", "metric", m.name, "err", err)
		ch <- prometheus.NewInvalidMetric(m.desc, err)
	}
	send := func(m metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.valueType, v, labels...)
	}

	fleet, err := c.o.Store.Fleet(ctx)
	if err != nil {
		fail(c.up, err)
		return
	}
	open := true
	faults, err := c.o.Store.Faults(ctx, store.FaultQuery{Open: &open, Limit: maxOpenFaults})
	if err != nil {
		fail(c.faultsOpen, err)
		return
	}
	if len(faults) == maxOpenFaults {
		c.o.Logger.Warn("metrics: open faults truncated", "limit", maxOpenFaults)
	}
	type key struct{ site, agent string }
	openFaults := map[key]int{}
	for _, f := range faults {
		openFaults[key{f.Site, f.Agent}]++
	}
	for _, s := range fleet {
		k := key{s.Site, s.Agent}
		up := s.Status.Online && !s.LastSeen.IsZero() && now.Sub(s.LastSeen) <= c.o.OfflineAfter
		send(c.up, b2f(up), s.Site, s.Agent)
		if !s.LastSeen.IsZero() {
			send(c.lastSeen, float64(s.LastSeen.UnixMilli())/1000, s.Site, s.Agent)
		}
		send(c.faultsOpen, float64(openFaults[k]), s.Site, s.Agent)
		delete(openFaults, k)
		if s.MetricsAt.IsZero() {
			continue
		}
		if p := s.Metrics.Printer; p != nil {
			seen := map[[2]string]bool{}
			for _, m := range p.Markers {
				id := [2]string{m.Name, m.Color}
				if m.Level < 0 || seen[id] {
					continue // a special level (api.MarkerLevelUnknown...), or a supply the printer repeats
				}
				seen[id] = true
				send(c.marker, float64(m.Level)/100, s.Site, s.Agent, m.Name, m.Color)
			}
		}
		if w := s.Metrics.WiFi; w != nil {
			send(c.wifiClients, float64(w.Clients), s.Site, s.Agent)
		}
	}
	// Faults of agents that Fleet does not list (removed since).
	for k, n := range openFaults {
		send(c.faultsOpen, float64(n), k.site, k.agent)
	}

	sums, err := c.usage.totals(ctx, c.o.Store, now)
	if err != nil {
		fail(c.pages, err)
		return
	}
	for site, t := range sums {
		send(c.pages, float64(t.pages), site)
		send(c.copies, float64(t.copies), site)
		send(c.scans, float64(t.scans), site)
		send(c.visitors, float64(t.visitors), site)
	}

	rej, err := c.o.Store.Rejections(ctx)
	if err != nil {
		fail(c.rejected, err)
		return
	}
	for reason, n := range rej {
		send(c.rejected, float64(n), reason)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler returns the /metrics handler: the collector and the Go runtime
// and process collectors in a registry of their own, behind
// Options.Auth.Require() (any role; a browser session works as well as a
// Bearer token). At most two scrapes run at once; a scrape that fails to
// read the store answers 500 so that Prometheus marks the target down.
func Handler(o Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(o),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: 2,
		Timeout:             30 * time.Second,
	})
	return o.Auth.Middleware(o.Auth.Require()(h))
}
