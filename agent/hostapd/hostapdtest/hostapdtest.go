// Package hostapdtest runs Debian's real hostapd for tests, with
// driver=none, which needs no radio: the access point is "enabled" and
// stations can be added with NEW_STA and removed with DEAUTHENTICATE on its
// control socket. It can be stopped, killed and restarted with the same
// configuration, so that the same control socket path reappears. Without
// hostapd the test skips, or fails under RELAIS_REQUIRE_PEERS=1 (see
// peertest).
package hostapdtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/hostapd"
	"github.com/relais-fr/relais/central/peertest"
)

// Interface is the (nonexistent) interface name hostapd serves; the
// control socket is named after it.
const Interface = "relais0"

// SSID and Channel are those of the test access point.
const (
	SSID    = "Relais-Test"
	Channel = 6
)

// Hostapd is one hostapd process, restartable.
type Hostapd struct {
	Ctrl string // the control socket path
	t    testing.TB
	bin  string
	conf string
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start runs hostapd and returns once it has enabled the access point (its
// control socket is then open). It is killed when the test ends.
func Start(t testing.TB) *Hostapd {
	t.Helper()
	bin := peertest.Program(t, "hostapd", "hostapd")
	dir := t.TempDir()
	ctrl := filepath.Join(dir, "ctrl")
	h := &Hostapd{Ctrl: filepath.Join(ctrl, Interface), t: t, bin: bin, conf: filepath.Join(dir, "hostapd.conf")}
	conf := fmt.Sprintf("driver=none\ninterface=%s\nctrl_interface=%s\nssid=%s\nchannel=%d\nhw_mode=g\n",
		Interface, ctrl, SSID, Channel)
	if err := os.WriteFile(h.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Kill)
	h.Restart()
	return h
}

// Restart starts hostapd again (after Kill or Stop) and waits until the
// access point is enabled, at most 20 s.
func (h *Hostapd) Restart() {
	h.t.Helper()
	if h.cmd != nil {
		h.t.Fatal("hostapdtest: Restart while running")
	}
	cmd := exec.Command(h.bin, h.conf)
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.cmd, h.exit = cmd, make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		// hostapd prints "relais0: AP-ENABLED" once its control socket is
		// open; keep draining after that so it never blocks on stdout.
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "AP-ENABLED") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		cmd.Wait()
		close(h.exit)
	}()
	select {
	case ok := <-ready:
		if !ok {
			h.t.Fatal("hostapdtest: hostapd exited before enabling the access point")
		}
	case <-time.After(20 * time.Second):
		h.t.Fatal("hostapdtest: hostapd did not enable the access point within 20 s")
	}
}

// Kill kills hostapd with SIGKILL, as a crash would: its control socket
// file stays behind, unanswered. It returns once the process is gone.
func (h *Hostapd) Kill() { h.signal(syscall.SIGKILL) }

// Stop stops hostapd with SIGTERM: it sends CTRL-EVENT-TERMINATING to its
// monitors and removes its control socket. It returns once the process is
// gone.
func (h *Hostapd) Stop() { h.signal(syscall.SIGTERM) }

func (h *Hostapd) signal(sig syscall.Signal) {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(sig)
	select {
	case <-h.exit:
	case <-time.After(20 * time.Second):
		h.cmd.Process.Kill()
		<-h.exit
	}
	h.cmd = nil
}

// WaitGone waits until hostapd has forgotten the station: after
// DEAUTHENTICATE it keeps the entry (without flags) for a few seconds, and
// NEW_STA of the same address does nothing meanwhile. It polls the station
// list, at most 20 s.
func (h *Hostapd) WaitGone(mac string) {
	h.t.Helper()
	limit := time.Now().Add(20 * time.Second)
	for {
		if !strings.Contains(h.stations(), strings.ToLower(mac)) {
			return
		}
		if time.Now().After(limit) {
			h.t.Fatalf("hostapdtest: hostapd still lists %s after 20 s", mac)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stations returns the addresses of the stations hostapd lists.
func (h *Hostapd) stations() string {
	h.t.Helper()
	dir, err := os.MkdirTemp("", "hapd")
	if err != nil {
		h.t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c, err := hostapd.Dial(h.Ctrl, dir)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stas, err := c.Stations(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var addrs []string
	for _, s := range stas {
		addrs = append(addrs, s.Addr.String())
	}
	return strings.Join(addrs, " ")
}

// Command sends one control command (such as "NEW_STA 02:00:00:00:00:01")
// on a connection of its own and returns the reply; an error fails the
// test.
func (h *Hostapd) Command(cmd string) string {
	h.t.Helper()
	dir, err := os.MkdirTemp("", "hapd")
	if err != nil {
		h.t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c, err := hostapd.Dial(h.Ctrl, dir)
	if err != nil {
		h.t.Fatalf("hostapdtest: %s: %v", cmd, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := c.Request(ctx, cmd)
	if err != nil {
		h.t.Fatalf("hostapdtest: %s: %v", cmd, err)
	}
	return reply
}
