package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/panel"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/agent/statuspage"
	"github.com/relais-fr/relais/central/api"
)

// errNoScanner is why a copy or a scan cannot be made at a site without a
// scanner.
var errNoScanner = errors.New("no scanner is configured ([scanner] driver = \"none\")")

// buttonHandlers are what the visitor's gestures do (DESIGN §5).
func (a *agent) buttonHandlers() map[panel.Gesture]panel.Handler {
	return map[panel.Gesture]panel.Handler{
		panel.Short:    a.shortPress,
		panel.Long:     a.longPress,
		panel.VeryLong: a.veryLongPress,
	}
}

// shortPress releases held prints if there are any, else makes a copy.
func (a *agent) shortPress(ctx context.Context, ev panel.Event) error {
	if a.heldJobs() > 0 {
		n, err := a.queue.ReleaseAll()
		slog.Info("button: held prints released", "jobs", n)
		return err
	}
	return a.copy(ctx)
}

// longPress scans to the inbox for the aidant.
func (a *agent) longPress(ctx context.Context, ev panel.Event) error {
	return a.scanToInbox(ctx)
}

// veryLongPress prints the status page for the technician.
func (a *agent) veryLongPress(ctx context.Context, ev panel.Event) error {
	var doc bytes.Buffer
	if err := statuspage.Render(&doc, a.statusPageInfo(), locale.Supported[0]); err != nil {
		return err
	}
	_, err := a.queue.Submit(printq.Ticket{Name: "Relais status page", User: "relais", Format: "application/pdf", Source: api.SourceCentral}, &doc)
	return err
}

func (a *agent) heldJobs() int {
	n := 0
	for _, j := range a.queue.Jobs() {
		if j.State == printq.Held {
			n++
		}
	}
	return n
}

// observeGesture records every gesture, counted for central.
func (a *agent) observeGesture(ev panel.Event, ignored bool) {
	if err := a.outbox.Record(api.Event{Type: api.EventButtonPressed, Gesture: ev.Gesture}); err != nil {
		slog.Error("cannot record button.pressed", "err", err)
	}
}

// watchLED keeps the LED's fault and held states in line with the open
// faults and the queue, checking every second.
func (a *agent) watchLED(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		health, _ := a.Status()
		a.panel.Set(panel.Fault, health == api.HealthFault)
		a.panel.Set(panel.Held, a.heldJobs() > 0)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// statusPageInfo describes the site for the status page.
func (a *agent) statusPageInfo() statuspage.Info {
	info := statuspage.Info{
		SiteName: a.cfg.Site.Name, SiteID: a.cfg.Site.ID, AgentID: a.cfg.Site.Agent,
		Version: buildVersion(), Printed: time.Now(),
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			info.Addresses = append(info.Addresses, ipn.IP.String())
			if info.LocalURL == "" && ipn.IP.To4() != nil {
				info.LocalURL = "http://" + localAddr(ipn.IP.String(), a.cfg.Web.Listen) + "/"
			}
		}
	}
	_, faults := a.Status()
	device := func(dev api.Device, configured bool, name string) statuspage.Device {
		d := statuspage.Device{Condition: statuspage.Working, Name: name}
		if !configured {
			return statuspage.Device{Condition: statuspage.NotConfigured}
		}
		var codes []string
		for _, f := range faults {
			if f.Device != dev {
				continue
			}
			codes = append(codes, f.Code)
			if f.Severity == api.SeverityFault {
				d.Condition = statuspage.Fault
			} else if d.Condition == statuspage.Working {
				d.Condition = statuspage.Warning
			}
			if strings.HasSuffix(f.Code, "-unreachable") {
				d.Condition = statuspage.Unreachable
			}
		}
		d.Detail = strings.Join(codes, ", ")
		return d
	}
	info.Printer = device(api.DevicePrinter, a.cfg.Printer.URI != "", a.cfg.Printer.URI)
	info.Scanner = device(api.DeviceScanner, a.cfg.Scanner.Driver != "none", a.cfg.Scanner.Driver)
	info.WiFi = device(api.DeviceWiFi, a.wifi != nil, a.cfg.WiFi.HostapdCtrl+a.cfg.WiFi.Interface)
	return info
}

// localAddr is ip with the local page's port when it is not 80.
func localAddr(ip, listen string) string {
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "80" {
		return net.JoinHostPort(ip, port)
	}
	return ip
}

// panelCommands serves `ctl press` and `ctl led`.
func (a *agent) registerPanel(s *ctl.Server) {
	s.Handle("press", func(ctx context.Context, req ctl.Request) (string, any, error) {
		p := locale.Printer(locale.Match(req.Lang))
		if len(req.Args) != 1 {
			return "", nil, errors.New(p.Sprintf("want short, long or verylong"))
		}
		g := panel.Gesture(req.Args[0])
		if g != panel.Short && g != panel.Long && g != panel.VeryLong {
			return "", nil, errors.New(p.Sprintf("%q is not a gesture; want short, long or verylong", req.Args[0]))
		}
		if err := a.panel.Press(g); err != nil {
			return "", nil, err
		}
		return p.Sprintf("%s press made", p.Sprintf(string(g))), map[string]string{"gesture": string(g)}, nil
	})
	s.Handle("led", func(ctx context.Context, req ctl.Request) (string, any, error) {
		pat := a.panel.Pattern()
		return locale.Printer(locale.Match(req.Lang)).Sprintf(pat), map[string]string{"pattern": pat}, nil
	})
}
