package hostapd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// startHostapd runs Debian's hostapd with driver=none, which needs no radio,
// and returns the path of its control socket once hostapd says it is ready.
func startHostapd(t *testing.T) string {
	t.Helper()
	bin := peertest.Program(t, "hostapd", "hostapd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "hostapd.conf")
	ctrl := filepath.Join(dir, "ctrl")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(
		"driver=none\ninterface=relais0\nctrl_interface=%s\nssid=Relais-Test\nchannel=6\nhw_mode=g\n", ctrl)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", conf)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// hostapd prints "relais0: AP-ENABLED" once its control socket is open.
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "AP-ENABLED") {
			go func() {
				for sc.Scan() {
				}
			}()
			return filepath.Join(ctrl, "relais0")
		}
	}
	t.Fatalf("hostapd exited before enabling the AP: %v", sc.Err())
	return ""
}

func TestAgainstHostapd(t *testing.T) {
	path := startHostapd(t)
	c, err := Dial(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "ENABLED" || st.SSID != "Relais-Test" || st.Channel != 6 || st.Stations != 0 {
		t.Errorf("status = %+v", st)
	}
	if _, err := c.Request(ctx, "NEW_STA 02:00:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || st.Stations != 1 {
		t.Errorf("after NEW_STA: %+v, %v", st, err)
	}
	if _, err := c.Request(ctx, "NO_SUCH_COMMAND"); err == nil {
		t.Error("an unknown command was not an error")
	}
}

func TestDialNoHostapd(t *testing.T) {
	if _, err := Dial(filepath.Join(t.TempDir(), "wlan0"), t.TempDir()); err == nil {
		t.Error("dialing a missing socket succeeded")
	}
}

func TestParseKV(t *testing.T) {
	kv := ParseKV("state=ENABLED\nssid[0]=Mairie=Wifi\nbad line\nstate=DISABLED\n")
	if kv["state"] != "ENABLED" || kv["ssid[0]"] != "Mairie=Wifi" || len(kv) != 2 {
		t.Errorf("got %v", kv)
	}
}

func FuzzParseKV(f *testing.F) {
	f.Add("state=ENABLED\nchannel=6\nnum_sta[0]=2\n")
	f.Fuzz(func(t *testing.T, s string) {
		for k, v := range ParseKV(s) {
			if k == "" || strings.Contains(k, "\n") || strings.Contains(v, "\n") {
				t.Fatalf("bad pair %q=%q", k, v)
			}
		}
	})
}
