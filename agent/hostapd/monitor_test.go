package hostapd_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/hostapd"
	"github.com/relais-fr/relais/agent/hostapd/hostapdtest"
)

// runMonitor runs a Monitor with short intervals until the test ends and
// returns its events.
func runMonitor(t *testing.T, path string) <-chan hostapd.Event {
	t.Helper()
	m := &hostapd.Monitor{Path: path, Dir: t.TempDir(),
		PingInterval: 100 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan hostapd.Event, 64)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		for {
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v", err)
				}
				return
			case <-events: // keep Run from blocking on a full channel
			}
		}
	})
	return events
}

// next returns the next event of the given kind, skipping others, and
// fails the test if none comes within 10 s. Skipped events are returned
// too, for tests that check what came before.
func next(t *testing.T, events <-chan hostapd.Event, kind hostapd.EventKind) (hostapd.Event, []hostapd.Event) {
	t.Helper()
	limit := time.After(10 * time.Second)
	var skipped []hostapd.Event
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev, skipped
			}
			skipped = append(skipped, ev)
		case <-limit:
			t.Fatalf("no %s event within 10 s; got %v", kind, skipped)
		}
	}
}

func mac(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMonitorEvents(t *testing.T) {
	h := hostapdtest.Start(t)
	events := runMonitor(t, h.Ctrl)
	next(t, events, hostapd.EventAttached)

	h.Command("NEW_STA 02:00:00:00:00:01")
	ev, _ := next(t, events, hostapd.EventStaConnected)
	if ev.Addr.String() != "02:00:00:00:00:01" || ev.Level != 3 {
		t.Errorf("connected event = %+v", ev)
	}
	h.Command("DEAUTHENTICATE 02:00:00:00:00:01")
	ev, _ = next(t, events, hostapd.EventStaDisconnected)
	if ev.Addr.String() != "02:00:00:00:00:01" {
		t.Errorf("disconnected event = %+v", ev)
	}
	h.Command("DISABLE")
	next(t, events, hostapd.EventAPDisabled)
	h.Command("ENABLE")
	_, skipped := next(t, events, hostapd.EventAPEnabled)
	for _, ev := range skipped {
		if ev.Kind == hostapd.EventDetached {
			t.Errorf("detached while hostapd was running: %v", ev.Err)
		}
	}
}

func TestMonitorSurvivesKill(t *testing.T) {
	h := hostapdtest.Start(t)
	events := runMonitor(t, h.Ctrl)
	next(t, events, hostapd.EventAttached)

	h.Kill() // no TERMINATING: the missing PONG or the refused PING tells
	ev, _ := next(t, events, hostapd.EventDetached)
	if ev.Err == nil {
		t.Error("detached without a reason")
	}
	h.Restart()
	_, skipped := next(t, events, hostapd.EventAttached)
	for _, ev := range skipped {
		t.Errorf("unexpected event while hostapd was down: %+v", ev)
	}
	h.Command("NEW_STA 02:00:00:00:00:02")
	if ev, _ := next(t, events, hostapd.EventStaConnected); ev.Addr.String() != "02:00:00:00:00:02" {
		t.Errorf("after restart: %+v", ev)
	}
}

func TestMonitorStopAndStartLater(t *testing.T) {
	h := hostapdtest.Start(t)
	events := runMonitor(t, h.Ctrl)
	next(t, events, hostapd.EventAttached)
	h.Stop()
	next(t, events, hostapd.EventTerminating)
	next(t, events, hostapd.EventDetached)
	if _, err := os.Stat(h.Ctrl); err == nil {
		t.Error("hostapd left its control socket after SIGTERM")
	}
	h.Restart()
	next(t, events, hostapd.EventAttached)
}

func TestMonitorNoHostapdYet(t *testing.T) {
	h := hostapdtest.Start(t)
	h.Stop()
	events := runMonitor(t, h.Ctrl)
	ev, _ := next(t, events, hostapd.EventDetached)
	if ev.Err == nil {
		t.Error("detached without a reason")
	}
	h.Restart() // the socket path appears: the backoff retries find it
	_, skipped := next(t, events, hostapd.EventAttached)
	for _, ev := range skipped {
		t.Errorf("event before attach: %+v (one DETACHED per loss, not per retry)", ev)
	}
}

func TestStationsAgainstHostapd(t *testing.T) {
	h := hostapdtest.Start(t)
	c, err := hostapd.Dial(h.Ctrl, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stas, err := c.Stations(ctx)
	if err != nil || len(stas) != 0 {
		t.Fatalf("no stations: %v, %v", stas, err)
	}
	for _, m := range []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"} {
		h.Command("NEW_STA " + m)
	}
	h.Command("DEAUTHENTICATE 02:00:00:00:00:02")
	stas, err = c.Stations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range stas {
		if s.Authorized() {
			got[s.Addr.String()] = true
		}
	}
	if len(got) != 2 || !got["02:00:00:00:00:01"] || !got["02:00:00:00:00:03"] {
		t.Errorf("authorized stations = %v (all: %+v)", got, stas)
	}
}

// fakeAP is a control socket that answers every request with the next
// reply of a script: garbage hostapd never sends, to check it is bounded.
func fakeAP(t *testing.T, reply func(req string) string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wlan0")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			conn.WriteToUnix([]byte(reply(string(buf[:n]))), from)
		}
	}()
	return path
}

func TestStationsGarbage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := map[string]struct {
		reply func(string) string
		want  error
	}{
		"loop": {func(string) string { return "02:00:00:00:00:01\nflags=[AUTHORIZED]\n" }, hostapd.ErrTooManyStations},
		"endless": {func() func(string) string {
			// a new station every time, never the end of the list
			var n atomic.Uint32
			return func(string) string {
				i := n.Add(1)
				return net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}.String() + "\n"
			}
		}(), hostapd.ErrTooManyStations},
		"not a mac":  {func(string) string { return "hello\nflags=[AUTHORIZED]\n" }, nil},
		"8-byte mac": {func(string) string { return "02:00:00:00:00:00:00:01\n" }, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := hostapd.Dial(fakeAP(t, tc.reply), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stas, err := c.Stations(ctx)
			if err == nil {
				t.Fatalf("no error, %d stations", len(stas))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if len(stas) > hostapd.MaxStations {
				t.Errorf("%d stations returned", len(stas))
			}
		})
	}
}

func TestMonitorGarbage(t *testing.T) {
	// A socket that accepts ATTACH, then floods the monitor with garbage
	// and one real event; PINGs get PONG.
	var peer chan *net.UnixAddr = make(chan *net.UnixAddr, 1)
	path := filepath.Join(t.TempDir(), "wlan0")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			switch string(buf[:n]) {
			case "ATTACH":
				conn.WriteToUnix([]byte("OK\n"), from)
				peer <- from
			case "PING":
				conn.WriteToUnix([]byte("PONG\n"), from)
			}
		}
	}()
	events := runMonitor(t, path)
	next(t, events, hostapd.EventAttached)
	from := <-peer
	for _, g := range []string{"", "<", "<3", "<3>", "<x>AP-ENABLED", "<3>AP-STA-CONNECTED", "<3>AP-STA-CONNECTED zz",
		"<3>AP-STA-CONNECTED 02:00:00:00:00:01:02:03", "<3>WPS-PBC-ACTIVE", "\x00\xff", strings.Repeat("<3>", 2000),
		"IFNAME=wlan0", "FAIL"} {
		conn.WriteToUnix([]byte(g), from)
	}
	conn.WriteToUnix([]byte("IFNAME=wlan0 <3>AP-STA-CONNECTED 02:00:00:00:00:09 keyid=x"), from)
	ev, skipped := next(t, events, hostapd.EventStaConnected)
	if ev.Addr.String() != "02:00:00:00:00:09" || len(skipped) != 0 {
		t.Errorf("got %+v after %v", ev, skipped)
	}
}

func TestParseEvent(t *testing.T) {
	m := mac(t, "02:00:00:00:00:01")
	for _, tc := range []struct {
		in   string
		want hostapd.Event
		ok   bool
	}{
		{"<3>AP-STA-CONNECTED 02:00:00:00:00:01", hostapd.Event{Kind: hostapd.EventStaConnected, Level: 3, Addr: m}, true},
		{"<3>AP-STA-DISCONNECTED 02:00:00:00:00:01 reason=3", hostapd.Event{Kind: hostapd.EventStaDisconnected, Level: 3, Addr: m}, true},
		{"<3>AP-ENABLED ", hostapd.Event{Kind: hostapd.EventAPEnabled, Level: 3}, true},
		{"<3>AP-DISABLED ", hostapd.Event{Kind: hostapd.EventAPDisabled, Level: 3}, true},
		{"<2>CTRL-EVENT-TERMINATING ", hostapd.Event{Kind: hostapd.EventTerminating, Level: 2}, true},
		{"IFNAME=wlan0 <3>AP-ENABLED", hostapd.Event{Kind: hostapd.EventAPEnabled, Level: 3}, true},
		{"OK\n", hostapd.Event{}, false},
		{"<3>AP-STA-CONNECTED 02-00-00-00-00-01", hostapd.Event{Kind: hostapd.EventStaConnected, Level: 3, Addr: m}, true},
		{"<3>AP-STA-CONNECTED 0200.0000.0001", hostapd.Event{}, false},
		{"<-1>AP-ENABLED", hostapd.Event{}, false},
		{"<123>AP-ENABLED", hostapd.Event{}, false},
		{"<3>ATTACHED", hostapd.Event{}, false}, // not hostapd's: only the Monitor makes those
	} {
		got, ok := hostapd.ParseEvent(tc.in)
		if ok != tc.ok || got.Kind != tc.want.Kind || got.Level != tc.want.Level || got.Addr.String() != tc.want.Addr.String() {
			t.Errorf("ParseEvent(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add("<3>AP-STA-CONNECTED 02:00:00:00:00:01")
	f.Add("IFNAME=wlan0 <3>AP-DISABLED ")
	f.Fuzz(func(t *testing.T, s string) {
		ev, ok := hostapd.ParseEvent(s)
		if !ok {
			return
		}
		switch ev.Kind {
		case hostapd.EventStaConnected, hostapd.EventStaDisconnected:
			if len(ev.Addr) != 6 {
				t.Fatalf("station event with address %v", ev.Addr)
			}
		case hostapd.EventAPEnabled, hostapd.EventAPDisabled, hostapd.EventTerminating:
		default:
			t.Fatalf("kind %q passed", ev.Kind)
		}
	})
}

func TestParseStation(t *testing.T) {
	st, ok, err := hostapd.ParseStation("02:00:00:00:00:02\nflags=[AUTH][ASSOC][AUTHORIZED]\naid=1\n")
	if err != nil || !ok || st.Addr.String() != "02:00:00:00:00:02" || !st.Authorized() {
		t.Errorf("got %+v, %v, %v", st, ok, err)
	}
	st, ok, err = hostapd.ParseStation("02:00:00:00:00:02\nflags=[AUTH][ASSOC]\n")
	if err != nil || !ok || st.Authorized() {
		t.Errorf("associated, not authorized: %+v, %v, %v", st, ok, err)
	}
	if _, ok, err := hostapd.ParseStation(""); ok || err != nil {
		t.Errorf("empty reply: %v, %v", ok, err)
	}
	if _, _, err := hostapd.ParseStation("flags=[AUTHORIZED]\n"); err == nil {
		t.Error("a reply without an address was accepted")
	}
}

func FuzzParseStation(f *testing.F) {
	f.Add("02:00:00:00:00:02\nflags=[AUTHORIZED]\naid=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, ok, err := hostapd.ParseStation(s)
		if ok && (err != nil || len(st.Addr) != 6 || len(st.Flags) > 256) {
			t.Fatalf("bad station %+v, %v", st, err)
		}
	})
}
