package provision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/BurntSushi/toml"
)

const agentPart = `# relais.toml written by the technician
[site]
id = "mairie-test"
agent = "accueil"
name = "Mairie de Test"

[panel]
simulate = true
`

const apPart = `
[access_point]
ssid = "Mairie de Test — public"
passphrase = "bienvenue2026"
channel = 11
`

func paths(t *testing.T) Paths {
	t.Helper()
	boot, etc := t.TempDir(), t.TempDir()
	return Paths{
		Source:     filepath.Join(boot, "relais.toml"),
		Report:     filepath.Join(boot, "relais-erreur.txt"),
		Config:     filepath.Join(etc, "relais/agent.toml"),
		Hostapd:    filepath.Join(etc, "hostapd/hostapd.conf"),
		NetworkDir: filepath.Join(etc, "systemd/network"),
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyAgentOnly(t *testing.T) {
	p := paths(t)
	write(t, p.Source, agentPart)
	write(t, p.Report, "an earlier refusal")
	owner := Owner{UID: os.Getuid(), GID: os.Getgid()}
	res, err := Apply(p, owner)
	if err != nil {
		t.Fatal(err)
	}
	if res.Site != "mairie-test" || res.Agent != "accueil" || res.AccessPoint != nil {
		t.Errorf("result %+v", res)
	}
	if got := read(t, p.Config); got != agentPart {
		t.Errorf("agent.toml:\n%s\nwant the file as written:\n%s", got, agentPart)
	}
	fi, err := os.Stat(p.Config)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("agent.toml mode %v, want 0640", fi.Mode().Perm())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != owner.GID {
		t.Errorf("agent.toml gid %d, want %d", st.Gid, owner.GID)
	}
	for _, gone := range []string{p.Source, p.Report, p.Hostapd} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it absent", gone, err)
		}
	}
}

func TestApplyAccessPoint(t *testing.T) {
	p := paths(t)
	// The access point in the middle: the agent's tables after it stay in agent.toml.
	src := "[site]\nid = \"mairie-test\"\nagent = \"accueil\"\n" + apPart + "\n[wifi]\nhostapd_ctrl = \"/run/hostapd/wlan0\"\n"
	write(t, p.Source, src)
	res, err := Apply(p, Owner{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	ap := res.AccessPoint
	if ap == nil || ap.SSID != "Mairie de Test — public" || ap.Channel != 11 || ap.Country != "FR" || ap.Interface != "wlan0" || ap.Bridge != "eth0" {
		t.Fatalf("access point %+v", ap)
	}
	cfg := read(t, p.Config)
	if strings.Contains(cfg, "access_point") || strings.Contains(cfg, "bienvenue") {
		t.Errorf("agent.toml keeps the access point:\n%s", cfg)
	}
	if !strings.Contains(cfg, `hostapd_ctrl = "/run/hostapd/wlan0"`) {
		t.Errorf("agent.toml lost [wifi]:\n%s", cfg)
	}
	conf := read(t, p.Hostapd)
	for _, want := range []string{"interface=wlan0\n", "bridge=br0\n", "ssid=Mairie de Test — public\n", "utf8_ssid=1\n",
		"channel=11\n", "country_code=FR\n", "wpa=2\n", "wpa_passphrase=bienvenue2026\n", "ctrl_interface_group=relais-agent\n", "ap_isolate=1\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("hostapd.conf lacks %q:\n%s", want, conf)
		}
	}
	if fi, _ := os.Stat(p.Hostapd); fi.Mode().Perm() != 0o600 {
		t.Errorf("hostapd.conf mode %v, want 0600 (it holds the passphrase)", fi.Mode().Perm())
	}
	port := read(t, filepath.Join(p.NetworkDir, "20-relais-br0-port.network"))
	if !strings.Contains(port, "Name=eth0") || !strings.Contains(port, "Bridge=br0") {
		t.Errorf("bridge port:\n%s", port)
	}
	if _, err := os.Stat(p.Source); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("relais.toml still on the boot partition: %v", err)
	}
}

func TestApplyOpenAccessPoint(t *testing.T) {
	p := paths(t)
	write(t, p.Source, agentPart+"\n[access_point]\nssid = \"Mairie-Wifi\"\ncountry = \"BE\"\n")
	if _, err := Apply(p, Owner{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	conf := read(t, p.Hostapd)
	if strings.Contains(conf, "wpa") || !strings.Contains(conf, "country_code=BE\n") {
		t.Errorf("open access point:\n%s", conf)
	}
}

func TestApplyRefused(t *testing.T) {
	cases := map[string]struct{ text, want string }{
		"bad agent key": {"[site]\nid = \"Mairie Test\"\nagent = \"a\"\n", "relais.toml:2"},
		"unknown key":   {agentPart + "[printer]\ncolour = true\n", "colour"},
		"not TOML":      {"[site\n", "relais.toml"},
		"short pass":    {agentPart + apPart[:strings.Index(apPart, "passphrase")] + "passphrase = \"court\"\n", "passphrase"},
		"ap key":        {agentPart + "\n[access_point]\nssid = \"x\"\nchanel = 3\n", "chanel"},
		"channel":       {agentPart + "\n[access_point]\nssid = \"x\"\nchannel = 14\n", "channel"},
		"dotted ap":     {"access_point.ssid = \"x\"\n" + agentPart, "[access_point] must be a table"},
		"two ap":        {agentPart + "\n[access_point]\nssid = \"x\"\n[access_point]\nssid = \"y\"\n", "access_point"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := paths(t)
			write(t, p.Source, c.text)
			_, err := Apply(p, Owner{UID: -1, GID: -1})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply: %v, want an error naming %q", err, c.want)
			}
			if got := read(t, p.Source); got != c.text {
				t.Errorf("relais.toml changed")
			}
			report := read(t, p.Report)
			if !strings.Contains(report, "n'a pas été appliqué") || !strings.Contains(report, "was not applied") ||
				!strings.Contains(report, c.want) || strings.Contains(strings.ReplaceAll(report, "\r\n", ""), "\n") {
				t.Errorf("report (want French and English, the error, CRLF line ends):\n%q", report)
			}
			for _, absent := range []string{p.Config, p.Hostapd} {
				if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s written for a refused file", absent)
				}
			}
		})
	}
}

func TestApplyNoSource(t *testing.T) {
	if _, err := Apply(paths(t), Owner{UID: -1, GID: -1}); !errors.Is(err, ErrNoSource) {
		t.Errorf("Apply without relais.toml: %v, want ErrNoSource", err)
	}
}

func TestApplyTooLarge(t *testing.T) {
	p := paths(t)
	write(t, p.Source, agentPart+"#"+strings.Repeat("x", 1<<20)+"\n")
	if _, err := Apply(p, Owner{UID: -1, GID: -1}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Apply of a 1 MiB file: %v, want a size error", err)
	}
}

func FuzzStripSection(f *testing.F) {
	f.Add(agentPart + apPart)
	f.Add("[access_point]\nssid = \"x\"\n[[printer]]\n")
	f.Add("a = \"\"\"\n[access_point]\n\"\"\"\n")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		_, compact, err := check([]byte(src), "relais.toml")
		if err != nil {
			return
		}
		// Whatever was accepted, agent.toml must not carry the access point's table.
		var doc map[string]any
		if _, err := toml.Decode(string(compact), &doc); err != nil {
			t.Fatalf("agent.toml does not decode: %v\n%s", err, compact)
		}
		if _, ok := doc[Section]; ok {
			t.Fatalf("agent.toml keeps [%s]:\n%s", Section, compact)
		}
	})
}
