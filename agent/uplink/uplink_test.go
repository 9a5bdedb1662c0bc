package uplink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relais-fr/relais/configs"
)

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\r\n"), 0o600)
	opts, err := Options(configs.AgentMQTT{Broker: "mqtt://127.0.0.1:1883", Username: "u", PasswordFile: pw}, "site-agent")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Password != "s3cret" || opts.Username != "u" || opts.ClientID != "site-agent" || opts.TLSConfig != nil {
		t.Errorf("got %+v", opts)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := Options(configs.AgentMQTT{Broker: "mqtts://127.0.0.1:8883", CAFile: bad}, "c"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA: %v", err)
	}
	opts, err = Options(configs.AgentMQTT{Broker: "mqtts://127.0.0.1:8883"}, "c")
	if err != nil || opts.TLSConfig == nil || opts.TLSConfig.RootCAs != nil {
		t.Errorf("system roots: %+v, %v", opts, err)
	}
	if _, err := Options(configs.AgentMQTT{}, "c"); err == nil {
		t.Error("no broker accepted")
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, MaxPasswordFileBytes+1), 0o600)
	if _, err := ReadPassword(big); err == nil {
		t.Error("oversized password file accepted")
	}
}
