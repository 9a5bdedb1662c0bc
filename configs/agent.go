package configs

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// DefaultAgentPath is where relais-agent looks for its configuration.
const DefaultAgentPath = "/etc/relais/agent.toml"

// Agent is the configuration of relais-agent. Every key is documented in
// agent.example.toml.
type Agent struct {
	Site    AgentSite    `toml:"site"`
	Printer AgentPrinter `toml:"printer"`
	Scanner AgentScanner `toml:"scanner"`
	Panel   AgentPanel   `toml:"panel"`
	IPP     AgentIPP     `toml:"ipp"`
	Web     AgentWeb     `toml:"web"`
	Scans   AgentScans   `toml:"scans"`
	MQTT    AgentMQTT    `toml:"mqtt"`
	WiFi    AgentWiFi    `toml:"wifi"`
	Storage AgentStorage `toml:"storage"`
}

// AgentSite names the access point.
type AgentSite struct {
	ID    string `toml:"id"`    // site id, [a-z0-9-]{1,63}
	Agent string `toml:"agent"` // agent id within the site
	Name  string `toml:"name"`  // human name shown to people
}

// AgentPrinter is the site's real printer.
type AgentPrinter struct {
	URI              string        `toml:"uri"`
	Hold             bool          `toml:"hold"`
	HoldExpiry       time.Duration `toml:"hold_expiry"`
	QuotaPagesPerDay int           `toml:"quota_pages_per_day"`
}

// AgentScanner is the site's scanner.
type AgentScanner struct {
	Driver     string `toml:"driver"` // "escl", "sane" or "none"
	URL        string `toml:"url"`    // eSCL root, such as http://192.0.2.7/eSCL
	Device     string `toml:"device"` // SANE device name, such as "airscan:e0:..." or "pixma:04A91234"
	Resolution int    `toml:"resolution"`
}

// AgentPanel is the button and the LEDs.
type AgentPanel struct {
	Simulate bool   `toml:"simulate"`
	Button   string `toml:"button"`
	LED      string `toml:"led"`
	FaultLED string `toml:"fault_led"`
}

// AgentIPP is the print queue offered to PCs and phones.
type AgentIPP struct {
	Listen                 string `toml:"listen"`
	MaxJobBytes            int64  `toml:"max_job_bytes"`
	JobsPerClientPerMinute int    `toml:"jobs_per_client_per_minute"`
	DNSSD                  bool   `toml:"dnssd"`
}

// AgentWeb is the local page for the aidant.
type AgentWeb struct {
	Listen string   `toml:"listen"`
	Allow  []string `toml:"allow"`
}

// AgentScans governs the short-lived scan inbox.
type AgentScans struct {
	Retention           time.Duration `toml:"retention"`
	DeleteAfterDownload bool          `toml:"delete_after_download"`
}

// AgentMQTT is the connection to relais-central.
type AgentMQTT struct {
	Broker       string `toml:"broker"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	CAFile       string `toml:"ca_file"`
}

// AgentWiFi is the site's access point.
type AgentWiFi struct {
	HostapdCtrl string `toml:"hostapd_ctrl"`
	Interface   string `toml:"interface"`
}

// AgentStorage is where the agent keeps its spool, outbox and scans.
type AgentStorage struct {
	Dir string `toml:"dir"`
}

// DefaultAgent returns the agent configuration used for keys that the file
// does not set.
func DefaultAgent() Agent {
	return Agent{
		Scanner: AgentScanner{Driver: "none", Resolution: 300},
		Panel:   AgentPanel{Button: "GPIO27", LED: "GPIO17"},
		Printer: AgentPrinter{HoldExpiry: 4 * time.Hour},
		IPP:     AgentIPP{Listen: ":631", MaxJobBytes: 64 << 20, JobsPerClientPerMinute: 30, DNSSD: true},
		Web: AgentWeb{Listen: ":80", Allow: []string{
			"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10",
		}},
		Scans:   AgentScans{Retention: 15 * time.Minute},
		Storage: AgentStorage{Dir: "/var/lib/relais-agent"},
	}
}

// LoadAgent reads the agent configuration at path over the defaults, applies
// the overrides and validates the result. The error lists every problem.
func LoadAgent(path string, ov Overrides) (*Agent, error) {
	cfg := DefaultAgent()
	if err := load(path, true, &cfg, ov); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Agent) validate() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	checkID := func(key, v string) {
		if !api.ValidID(v) {
			bad(key, "%q is not an id; want 1 to 63 characters among a-z, 0-9 and -", v)
		}
	}
	checkID("site.id", c.Site.ID)
	checkID("site.agent", c.Site.Agent)
	if len(c.Site.Name) > 200 {
		bad("site.name", "longer than 200 bytes")
	}
	if c.Printer.URI != "" {
		if err := checkURL(c.Printer.URI, "ipp", "ipps", "http", "https"); err != nil {
			bad("printer.uri", "%v; want the printer's IPP address, such as ipp://192.0.2.10/ipp/print", err)
		}
	}
	if e := c.Printer.HoldExpiry; e < time.Minute || e > 7*24*time.Hour {
		bad("printer.hold_expiry", "%v is out of range; want from 1m to 168h", e)
	}
	if c.Printer.QuotaPagesPerDay < 0 {
		bad("printer.quota_pages_per_day", "%d is negative; want 0 (no quota) or a number of pages", c.Printer.QuotaPagesPerDay)
	}
	switch c.Scanner.Driver {
	case "none":
	case "escl":
		if err := checkURL(c.Scanner.URL, "http", "https"); err != nil {
			bad("scanner.url", "%v; the escl driver wants the scanner's eSCL root, such as http://192.0.2.10/eSCL", err)
		}
	case "sane":
		if c.Scanner.Device == "" {
			bad("scanner.device", "empty; the sane driver wants a device name as listed by scanimage -L")
		}
	default:
		bad("scanner.driver", "%q is not a driver; want escl, sane or none", c.Scanner.Driver)
	}
	switch r := c.Scanner.Resolution; r {
	case 75, 100, 150, 200, 300, 600:
	default:
		bad("scanner.resolution", "%d dpi is not offered; want 75, 100, 150, 200, 300 or 600", r)
	}
	if !c.Panel.Simulate {
		checkPin := func(key, v string, required bool) {
			if v == "" && !required {
				return
			}
			if !validPin(v) {
				bad(key, "%q is not a pin name; want a name such as GPIO27", v)
			}
		}
		checkPin("panel.button", c.Panel.Button, true)
		checkPin("panel.led", c.Panel.LED, true)
		checkPin("panel.fault_led", c.Panel.FaultLED, false)
	}
	if err := checkListen(c.IPP.Listen); err != nil {
		bad("ipp.listen", "%v", err)
	}
	if c.IPP.MaxJobBytes < 1<<20 || c.IPP.MaxJobBytes > 1<<30 {
		bad("ipp.max_job_bytes", "%d is out of range; want from 1048576 (1 MiB) to 1073741824 (1 GiB)", c.IPP.MaxJobBytes)
	}
	if n := c.IPP.JobsPerClientPerMinute; n < 1 || n > 10000 {
		bad("ipp.jobs_per_client_per_minute", "%d is out of range; want from 1 to 10000", n)
	}
	if err := checkListen(c.Web.Listen); err != nil {
		bad("web.listen", "%v", err)
	}
	if len(c.Web.Allow) == 0 {
		bad("web.allow", "empty: nobody could reach the local page; want networks such as [\"192.168.1.0/24\"]")
	}
	for _, n := range c.Web.Allow {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad("web.allow", "%q is not a network; want an address with its prefix length, such as 192.168.1.0/24", n)
		}
	}
	if r := c.Scans.Retention; r < time.Minute || r > 24*time.Hour {
		bad("scans.retention", "%v is out of range; want from 1m to 24h", r)
	}
	if c.MQTT.Broker != "" {
		if err := checkURL(c.MQTT.Broker, "mqtt", "mqtts", "tcp", "ssl", "tls"); err != nil {
			bad("mqtt.broker", "%v; want mqtt://host:1883 or mqtts://host:8883", err)
		}
	}
	if c.WiFi.Interface != "" && len(c.WiFi.Interface) > 15 {
		bad("wifi.interface", "%q is longer than a network interface name (15 bytes)", c.WiFi.Interface)
	}
	if c.Storage.Dir == "" || !strings.HasPrefix(c.Storage.Dir, "/") {
		bad("storage.dir", "%q is not an absolute path", c.Storage.Dir)
	}
	return errs
}

// validPin accepts the names periph.io gives to pins: GPIO27, P1_13, ...
func validPin(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func checkURL(s string, schemes ...string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			if u.Host == "" {
				return fmt.Errorf("%q has no host", s)
			}
			return nil
		}
	}
	return fmt.Errorf("%q has scheme %q, not one of %s", s, u.Scheme, strings.Join(schemes, ", "))
}

func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not a listen address; want host:port or :port, such as :631 or 127.0.0.1:8631", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

// Settings lists every key with its value, for reports such as
// `relais-agent check`. Secrets are not part of the configuration (only the
// path of the file holding them), so everything can be shown.
func (c *Agent) Settings() []Setting { return settings(c) }
