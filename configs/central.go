package configs

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// DefaultCentralPath is where relais-central looks for its configuration.
const DefaultCentralPath = "/etc/relais/central.toml"

// Central is the configuration of relais-central. Every key is documented in
// central.example.toml.
type Central struct {
	HTTP    CentralHTTP    `toml:"http"`
	Broker  CentralBroker  `toml:"broker"`
	DB      CentralDB      `toml:"db"`
	Alerts  CentralAlerts  `toml:"alerts"`
	Storage CentralStorage `toml:"storage"`
}

// CentralHTTP is the dashboard, API and metrics listener.
type CentralHTTP struct {
	Listen string `toml:"listen"`
	// PublicURL is the dashboard's address as people reach it, for the
	// links in alerts; empty: alerts carry no link.
	PublicURL string `toml:"public_url"`
}

// CentralBroker is the MQTT broker that agents report to: embedded, or an
// external one reached at URL.
type CentralBroker struct {
	Embedded  bool   `toml:"embedded"`
	Listen    string `toml:"listen"`
	TLSListen string `toml:"tls_listen"`
	CertFile  string `toml:"cert_file"`
	KeyFile   string `toml:"key_file"`
	URL       string `toml:"url"`
}

// CentralDB is the store: sqlite:PATH (relative to the state directory) or
// postgres://...
type CentralDB struct {
	URL string `toml:"url"`
}

// CentralAlerts says when and where to send alerts.
type CentralAlerts struct {
	OfflineAfter     time.Duration `toml:"offline_after"`
	FaultAfter       time.Duration `toml:"fault_after"`
	WebhookURL       string        `toml:"webhook_url"`
	SMTPAddr         string        `toml:"smtp_addr"`
	SMTPFrom         string        `toml:"smtp_from"`
	SMTPTo           []string      `toml:"smtp_to"`
	SMTPUsername     string        `toml:"smtp_username"`
	SMTPPasswordFile string        `toml:"smtp_password_file"`
	// Language of the alert messages: "fr" or "en".
	Language string `toml:"language"`
}

// CentralStorage is where central keeps its database and keys.
type CentralStorage struct {
	Dir string `toml:"dir"`
}

// DefaultCentral returns the central configuration used for keys that the
// file does not set.
func DefaultCentral() Central {
	return Central{
		HTTP:    CentralHTTP{Listen: ":8080"},
		Broker:  CentralBroker{Embedded: true, Listen: ":1883", TLSListen: ":8883"},
		DB:      CentralDB{URL: "sqlite:central.db"},
		Alerts:  CentralAlerts{OfflineAfter: 10 * time.Minute, FaultAfter: 30 * time.Minute, Language: "fr"},
		Storage: CentralStorage{Dir: "/var/lib/relais-central"},
	}
}

// LoadCentral reads the central configuration at path over the defaults,
// applies the overrides and validates the result. A missing file at the
// default path is not an error: central runs on its defaults.
func LoadCentral(path string, ov Overrides) (*Central, error) {
	cfg := DefaultCentral()
	if err := load(path, path != DefaultCentralPath, &cfg, ov); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Central) validate() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if c.HTTP.PublicURL != "" {
		if err := checkURL(c.HTTP.PublicURL, "http", "https"); err != nil {
			bad("http.public_url", "%v; want the dashboard's address, such as https://relais.example.org", err)
		}
	}
	b := c.Broker
	if b.Embedded == (b.URL != "") {
		if b.Embedded {
			bad("broker.url", "set while broker.embedded is true; want one of the two")
		} else {
			bad("broker.embedded", "false but broker.url is empty; want embedded = true or the address of an external broker")
		}
	}
	if b.Embedded {
		if err := checkListen(b.Listen); err != nil {
			bad("broker.listen", "%v", err)
		}
		if (b.CertFile == "") != (b.KeyFile == "") {
			bad("broker.cert_file", "cert_file and key_file go together; set both or neither")
		}
		if b.CertFile != "" {
			if err := checkListen(b.TLSListen); err != nil {
				bad("broker.tls_listen", "%v", err)
			}
		}
	}
	if b.URL != "" {
		if err := checkURL(b.URL, "mqtt", "mqtts", "tcp", "ssl", "tls"); err != nil {
			bad("broker.url", "%v; want mqtt://host:1883 or mqtts://host:8883", err)
		}
	}
	switch {
	case strings.HasPrefix(c.DB.URL, "sqlite:"):
		if strings.TrimPrefix(c.DB.URL, "sqlite:") == "" {
			bad("db.url", "sqlite: wants a file name, such as sqlite:central.db")
		}
	case strings.HasPrefix(c.DB.URL, "postgres://"), strings.HasPrefix(c.DB.URL, "postgresql://"):
		if _, err := url.Parse(c.DB.URL); err != nil {
			bad("db.url", "not a URL: %v", err)
		}
	default:
		bad("db.url", "%q is not a database; want sqlite:FILE or postgres://user@host/dbname", c.DB.URL)
	}
	a := c.Alerts
	if a.OfflineAfter < time.Minute {
		bad("alerts.offline_after", "%v is too short; want 1m or more", a.OfflineAfter)
	}
	if a.FaultAfter < time.Minute {
		bad("alerts.fault_after", "%v is too short; want 1m or more", a.FaultAfter)
	}
	if a.Language != "fr" && a.Language != "en" {
		bad("alerts.language", "%q is not a language of the alerts; want fr or en", a.Language)
	}
	if a.WebhookURL != "" {
		if err := checkURL(a.WebhookURL, "http", "https"); err != nil {
			bad("alerts.webhook_url", "%v", err)
		}
	}
	if a.SMTPAddr != "" {
		if err := checkListen(a.SMTPAddr); err != nil {
			bad("alerts.smtp_addr", "%q is not host:port, such as smtp.example.org:587", a.SMTPAddr)
		}
		if _, err := mail.ParseAddress(a.SMTPFrom); err != nil {
			bad("alerts.smtp_from", "%q is not an e-mail address", a.SMTPFrom)
		}
		if len(a.SMTPTo) == 0 {
			bad("alerts.smtp_to", "empty while smtp_addr is set; want at least one address")
		}
		for _, to := range a.SMTPTo {
			if _, err := mail.ParseAddress(to); err != nil {
				bad("alerts.smtp_to", "%q is not an e-mail address", to)
			}
		}
	}
	if c.Storage.Dir == "" || !strings.HasPrefix(c.Storage.Dir, "/") {
		bad("storage.dir", "%q is not an absolute path", c.Storage.Dir)
	}
	return errs
}

// Settings lists every key with its value, for reports. Secrets are not part
// of the configuration (only the paths of the files holding them).
func (c *Central) Settings() []Setting { return settings(c) }
