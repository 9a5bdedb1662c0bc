package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/relais-fr/relais/agent/hostinfo"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/agent/web"
	"github.com/relais-fr/relais/agent/wifi"
	"github.com/relais-fr/relais/central/api"
)

// hostEvery is how often the host's health is read and checked.
const hostEvery = time.Minute

// faultOutboxNearFull is raised while undelivered events fill most of the
// outbox's bound: central has not been reachable for a long while.
const faultOutboxNearFull = "outbox-near-full"

// health holds the latest readings of the devices that are polled rather
// than asked on demand.
type health struct {
	mu   sync.Mutex
	host *api.Host
}

func (h *health) setHost(host api.Host) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.host = &host
}

func (h *health) lastHost() *api.Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.host
}

// watchHost reads and checks the host's health, and the outbox's room,
// every hostEvery until ctx ends.
func (a *agent) watchHost(ctx context.Context) error {
	checker := hostinfo.NewChecker(a.outbox)
	root := os.DirFS("/")
	for {
		host, err := hostinfo.Read(root, a.cfg.Storage.Dir)
		if err != nil {
			slog.Debug("host health: part of it could not be read", "err", err)
		}
		a.health.setHost(host)
		if err := checker.Check(host); err != nil {
			slog.Error("host health: cannot record a fault", "err", err)
		}
		if a.outbox.NearFull() {
			err = a.outbox.Raise(api.DeviceAgent, faultOutboxNearFull, api.SeverityWarn)
		} else {
			err = a.outbox.Clear(api.DeviceAgent, faultOutboxNearFull)
		}
		if err != nil {
			slog.Error("outbox fault", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(hostEvery):
		}
	}
}

// newWiFi returns the Wi-Fi watch of the configuration, or nil when the
// site's access point is not watched.
func (a *agent) newWiFi() (*wifi.Watch, error) {
	if a.cfg.WiFi.HostapdCtrl == "" && a.cfg.WiFi.Interface == "" {
		return nil, nil
	}
	runtime := os.Getenv("RUNTIME_DIRECTORY") // set by systemd's RuntimeDirectory=
	if runtime == "" {
		runtime = a.cfg.Storage.Dir
	}
	return wifi.New(wifi.Config{
		HostapdCtrl: a.cfg.WiFi.HostapdCtrl,
		Interface:   a.cfg.WiFi.Interface,
		RuntimeDir:  runtime,
		StorageDir:  a.cfg.Storage.Dir,
		Faults:      a.outbox,
		Recorder:    a.outbox,
	})
}

// Status is the agent's overall health and its open faults, for the
// status topic: the worst severity among the faults.
func (a *agent) Status() (api.Health, []api.Fault) {
	faults, err := a.outbox.OpenFaults()
	if err != nil {
		slog.Error("cannot read the open faults", "err", err)
		return api.HealthWarn, nil
	}
	h := api.HealthOK
	for _, f := range faults {
		switch f.Severity {
		case api.SeverityFault:
			h = api.HealthFault
		case api.SeverityWarn:
			if h == api.HealthOK {
				h = api.HealthWarn
			}
		}
	}
	return h, faults
}

// Metrics is the periodic snapshot of the site for the metrics topic:
// printer, queue, Wi-Fi and host, counts and states only.
func (a *agent) Metrics() api.Metrics {
	m := api.Metrics{Time: time.Now().UTC()}
	st := a.queue.Printer()
	p := &api.Printer{State: api.PrinterUnknown, Reasons: st.Reasons}
	if st.Reachable {
		p.State = map[int]api.PrinterState{3: api.PrinterIdle, 4: api.PrinterProcessing, 5: api.PrinterStopped}[st.State]
	}
	for _, mk := range st.Markers {
		p.Markers = append(p.Markers, api.Marker{Name: mk.Name, Kind: mk.Kind, Color: mk.Color, Level: mk.Level})
	}
	if p.Validate() == nil {
		m.Printer = p
	}
	q := &api.Queue{}
	today := a.outbox.Today()
	for _, j := range a.queue.Jobs() {
		switch j.State {
		case printq.Pending:
			q.Pending++
		case printq.Held:
			q.Held++
		case printq.Processing, printq.Stopped:
			q.Processing++
		case printq.Completed:
			if a.outbox.Day(j.Finished) == today {
				q.CompletedToday++
			}
		}
	}
	m.Queue = q
	if a.wifi != nil {
		w := a.wifi.Snapshot()
		m.WiFi = &w
	}
	m.Host = a.health.lastHost()
	return m
}

// pageStatus is what the local page shows beyond the queue and the inbox.
func (a *agent) pageStatus() web.PageStatus {
	ps := web.PageStatus{
		Version:   buildVersion(),
		Started:   a.started,
		NoPrinter: a.cfg.Printer.URI == "",
		Hold:      a.cfg.Printer.Hold,
		Host:      a.health.lastHost(),
	}
	_, ps.Faults = a.Status()
	if a.wifi != nil {
		w := a.wifi.Snapshot()
		ps.WiFi = &w
	}
	if a.cfg.MQTT.Broker != "" {
		if st, err := a.outbox.Stats(); err == nil {
			ps.Outbox = &web.OutboxStatus{Depth: st.Depth, LastSeq: st.LastSeq, LastAck: st.LastAck}
		}
	}
	return ps
}
