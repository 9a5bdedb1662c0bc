package wifi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/relais-fr/relais/agent/hostapd"
)

// requestTimeout bounds one resynchronisation with hostapd.
const requestTimeout = 5 * time.Second

// hostapdSource follows hostapd: a Monitor for the events, and a request
// connection of its own for STATUS and the station list.
type hostapdSource struct {
	w        *Watch
	req      *hostapd.Conn
	attached bool
}

func (w *Watch) runHostapd(ctx context.Context) error {
	s := &hostapdSource{w: w}
	defer s.closeReq()
	mon := &hostapd.Monitor{Path: w.cfg.HostapdCtrl, Dir: w.cfg.RuntimeDir,
		PingInterval: w.cfg.PingInterval, MaxBackoff: w.cfg.MaxBackoff}
	events := make(chan hostapd.Event, 64)
	monCtx, stop := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		mon.Run(monCtx, events)
	}()
	defer func() { stop(); <-monDone }()

	tick := time.NewTicker(w.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if w.checkDay() && s.attached && ev.Kind != hostapd.EventAttached {
				s.sync(ctx)
			}
			s.handle(ctx, ev)
		case <-tick.C:
			w.checkDay()
			if s.attached {
				s.sync(ctx)
			}
			w.flush()
		}
	}
}

func (s *hostapdSource) handle(ctx context.Context, ev hostapd.Event) {
	w := s.w
	switch ev.Kind {
	case hostapd.EventAttached:
		s.attached = true
		s.sync(ctx)
	case hostapd.EventDetached:
		s.attached = false
		s.closeReq()
		w.setDown(fmt.Errorf("hostapd at %s: %w", w.cfg.HostapdCtrl, ev.Err))
	case hostapd.EventAPEnabled:
		s.sync(ctx)
	case hostapd.EventAPDisabled:
		w.setDown(errors.New("hostapd disabled the access point"))
	case hostapd.EventStaConnected:
		w.joined(ev.Addr)
	case hostapd.EventStaDisconnected:
		w.left(ev.Addr)
	}
}

// sync reads STATUS and the station list, which replace what the events
// said. A failure leaves the state as it was: if hostapd is gone, the
// monitor says so.
func (s *hostapdSource) sync(ctx context.Context) {
	w := s.w
	if s.req == nil {
		c, err := hostapd.Dial(w.cfg.HostapdCtrl, w.cfg.RuntimeDir)
		if err != nil {
			w.log.Warn("wifi: hostapd", "err", err)
			return
		}
		s.req = c
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	st, err := s.req.Status(ctx)
	if err != nil {
		w.log.Warn("wifi: hostapd STATUS", "err", err)
		s.closeReq()
		return
	}
	if st.State != "ENABLED" {
		w.setDown(fmt.Errorf("hostapd: access point state %s", st.State))
		return
	}
	stas, err := s.req.Stations(ctx)
	if err != nil {
		w.log.Warn("wifi: hostapd station list", "err", err)
		s.closeReq()
		return
	}
	var macs []net.HardwareAddr
	for _, sta := range stas {
		if sta.Authorized() {
			macs = append(macs, sta.Addr)
		}
	}
	w.setUp(st.SSID, st.Channel, macs)
}

func (s *hostapdSource) closeReq() {
	if s.req != nil {
		s.req.Close()
		s.req = nil
	}
}
