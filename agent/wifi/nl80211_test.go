package wifi

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"

	"github.com/relais-fr/relais/central/api"
)

// The nl80211 path cannot be tested against a radio here (no wireless on
// the build machines). These tests cover what can be: the error path on a
// machine without nl80211 (or without the interface), and the conversion
// of the library's types, built as its parser builds them from the
// kernel's attributes.

func TestNL80211Unavailable(t *testing.T) {
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	cfg := s.config(t, "")
	cfg.Interface = "relais-nowifi0"
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	waitFor(t, w, "reported down", func() bool { return w.Err() != nil && s.faults.raises.Load() == 1 })
	err = w.Err()
	if _, statErr := os.Stat("/sys/class/ieee80211"); statErr != nil {
		// No wireless driver: the error must say so plainly.
		if !errors.Is(err, errNoNL80211) {
			t.Errorf("err = %v, want it to say nl80211 is unavailable", err)
		}
	} else if !strings.Contains(err.Error(), "no such wireless interface") {
		t.Errorf("err = %v, want no such wireless interface", err)
	}
	t.Logf("as reported: %v", err)
	if w.Snapshot() != (api.WiFi{}) {
		t.Errorf("snapshot %+v", w.Snapshot())
	}
	fs, err := s.outbox.OpenFaults()
	if err != nil || len(fs) != 1 || fs[0].Code != FaultAPDown {
		t.Errorf("open faults %v, %v", fs, err)
	}
}

// stationInfo builds a StationInfo the way the library does from a
// NL80211_CMD_GET_STATION reply.
func stationInfo(t *testing.T, mac []byte) *wifi.StationInfo {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.NL80211_ATTR_IFINDEX, 3)
	ae.Bytes(unix.NL80211_ATTR_MAC, mac)
	ae.Nested(unix.NL80211_ATTR_STA_INFO, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(unix.NL80211_STA_INFO_CONNECTED_TIME, 42)
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	info, err := wifi.ParseStationInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestFromNL80211(t *testing.T) {
	a, _ := net.ParseMAC(macA)
	b, _ := net.ParseMAC(macB)
	ap := &wifi.Interface{Name: "wlan0", Type: wifi.InterfaceTypeAP, Frequency: 2437}
	stas := []*wifi.StationInfo{stationInfo(t, a), stationInfo(t, b), stationInfo(t, a), nil, stationInfo(t, []byte{1, 2, 3})}
	if stas[0].Connected != 42*time.Second || stas[0].HardwareAddr.String() != macA {
		t.Fatalf("the library parsed %+v", stas[0])
	}
	ch, macs, err := fromNL80211(ap, stas)
	if err != nil || ch != 6 || len(macs) != 2 || macs[0].String() != macA || macs[1].String() != macB {
		t.Errorf("got channel %d, stations %v, %v", ch, macs, err)
	}

	for _, ifi := range []*wifi.Interface{
		nil,
		{Name: "wlan0", Type: wifi.InterfaceTypeStation, Frequency: 2437},
		{Name: "wlan0", Type: wifi.InterfaceTypeAP}, // not started: no frequency
	} {
		if _, _, err := fromNL80211(ifi, stas); err == nil {
			t.Errorf("%+v: no error", ifi)
		}
	}

	many := make([]*wifi.StationInfo, MaxStations+10)
	for i := range many {
		many[i] = &wifi.StationInfo{HardwareAddr: net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}}
	}
	if _, macs, _ := fromNL80211(ap, many); len(macs) != MaxStations {
		t.Errorf("%d stations kept, want the bound %d", len(macs), MaxStations)
	}
}

func TestChannelOf(t *testing.T) {
	for mhz, want := range map[int]int{
		2412: 1, 2437: 6, 2472: 13, 2484: 14, 5180: 36, 5500: 100, 5825: 165, 5955: 1, 6115: 33, 7115: 233,
		5935: 2, 4920: 184, 0: 0, 2413: 0, 60480: 0, -5: 0,
	} {
		if got := channelOf(mhz); got != want {
			t.Errorf("channelOf(%d) = %d, want %d", mhz, got, want)
		}
	}
}
