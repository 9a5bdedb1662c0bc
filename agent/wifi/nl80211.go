package wifi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mdlayher/wifi"
)

// nlTimeout bounds one nl80211 request.
const nlTimeout = 5 * time.Second

// errNoNL80211 says that the kernel has no nl80211 (no wireless driver
// loaded, as on a machine without Wi-Fi).
var errNoNL80211 = errors.New("nl80211 is not available: no wireless driver is loaded on this machine")

// runNL80211 polls the interface's state and stations over nl80211 every
// Poll. SSID is not reported on this path: the nl80211 library lists an
// interface's type, frequency and stations, not an access point's SSID.
func (w *Watch) runNL80211(ctx context.Context) error {
	var c *wifi.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	poll := func() {
		if c == nil {
			var err error
			if c, err = wifi.New(); err != nil {
				c = nil
				if errors.Is(err, os.ErrNotExist) {
					err = fmt.Errorf("%w (%v)", errNoNL80211, err)
				}
				w.setDown(fmt.Errorf("wifi: %s: %w", w.cfg.Interface, err))
				return
			}
		}
		ifi, stas, err := readNL80211(c, w.cfg.Interface)
		if err != nil {
			c.Close()
			c = nil
			w.setDown(fmt.Errorf("wifi: %s: %w", w.cfg.Interface, err))
			return
		}
		channel, macs, err := fromNL80211(ifi, stas)
		if err != nil {
			w.setDown(fmt.Errorf("wifi: %s: %w", w.cfg.Interface, err))
			return
		}
		w.setUp("", channel, macs)
	}
	poll()
	tick := time.NewTicker(w.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			w.checkDay()
			poll()
			w.flush()
		}
	}
}

// readNL80211 finds the interface by name and lists its stations.
func readNL80211(c *wifi.Client, name string) (*wifi.Interface, []*wifi.StationInfo, error) {
	c.SetDeadline(time.Now().Add(nlTimeout))
	ifis, err := c.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	var ifi *wifi.Interface
	for _, i := range ifis {
		if i != nil && i.Name == name {
			ifi = i
			break
		}
	}
	if ifi == nil {
		return nil, nil, errors.New("no such wireless interface")
	}
	if ifi.Type != wifi.InterfaceTypeAP {
		return ifi, nil, nil // fromNL80211 says why
	}
	stas, err := c.StationInfo(ifi)
	if errors.Is(err, os.ErrNotExist) {
		err = nil // no station
	}
	return ifi, stas, err
}

// fromNL80211 turns an interface and its stations, as the nl80211 library
// gives them, into a channel and the stations' addresses; an interface
// that is not an operating access point is an error saying why.
func fromNL80211(ifi *wifi.Interface, stas []*wifi.StationInfo) (channel int, macs []net.HardwareAddr, err error) {
	switch {
	case ifi == nil:
		return 0, nil, errors.New("no such wireless interface")
	case ifi.Type != wifi.InterfaceTypeAP:
		return 0, nil, fmt.Errorf("not an access point (mode %s)", ifi.Type)
	case ifi.Frequency == 0:
		return 0, nil, errors.New("access point not operating (no frequency)")
	}
	seen := map[string]bool{}
	for _, s := range stas {
		if s == nil || len(s.HardwareAddr) != 6 || seen[string(s.HardwareAddr)] {
			continue
		}
		if len(macs) == MaxStations {
			break
		}
		seen[string(s.HardwareAddr)] = true
		macs = append(macs, s.HardwareAddr)
	}
	return channelOf(ifi.Frequency), macs, nil
}

// MaxStations bounds the stations taken from one nl80211 poll.
const MaxStations = 2048

// channelOf converts a frequency in MHz to an IEEE 802.11 channel number,
// or 0 if it is none.
func channelOf(mhz int) int {
	switch {
	case mhz == 2484:
		return 14
	case mhz >= 2412 && mhz <= 2472 && (mhz-2407)%5 == 0:
		return (mhz - 2407) / 5
	case mhz == 5935: // 6 GHz channel 2
		return 2
	case mhz >= 5955 && mhz <= 7115 && (mhz-5950)%5 == 0:
		return (mhz - 5950) / 5
	case mhz >= 5000 && mhz <= 5925 && (mhz-5000)%5 == 0:
		return (mhz - 5000) / 5
	case mhz >= 4910 && mhz <= 4980 && (mhz-4000)%5 == 0:
		return (mhz - 4000) / 5
	}
	return 0
}
