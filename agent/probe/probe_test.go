package probe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/OpenPrinting/goipp"
	"golang.org/x/text/language"

	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/configs"
)

var en = locale.Printer(language.English)

// replayPrinter answers every IPP request with a real printer's
// Get-Printer-Attributes response.
func replayPrinter(t *testing.T, dump string) *httptest.Server {
	t.Helper()
	resp, err := os.ReadFile(peertest.Device(t, dump))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req goipp.Message
		if err := req.Decode(io.LimitReader(r.Body, 1<<20)); err != nil || goipp.Op(req.Code) != goipp.OpGetPrinterAttributes {
			http.Error(w, "want Get-Printer-Attributes", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", goipp.ContentType)
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPrinter(t *testing.T) {
	srv := replayPrinter(t, "Xerox-B235-Printer-Attributes.ipp")
	uri := "ipp://" + strings.TrimPrefix(srv.URL, "http://") + "/ipp/print"
	r := Printer(context.Background(), en, uri)
	if r.Outcome != OK || !strings.Contains(r.Detail, "Xerox(R) B235 MFP; idle") || !strings.Contains(r.Detail, "image/pwg-raster") {
		t.Errorf("got %+v", r)
	}
	srv.Close()
	if r := Printer(context.Background(), en, uri); r.Outcome != Fail {
		t.Errorf("a stopped printer: %+v", r)
	}
	if r := Printer(context.Background(), en, ""); r.Outcome != Skipped {
		t.Errorf("no printer: %+v", r)
	}
}

func TestESCLScanner(t *testing.T) {
	caps, err := os.ReadFile(peertest.Device(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/eSCL/ScannerCapabilities" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write(caps)
	}))
	defer srv.Close()
	r := Scanner(context.Background(), en, configs.AgentScanner{Driver: "escl", URL: srv.URL + "/eSCL"})
	if r.Outcome != OK || !strings.Contains(r.Detail, "M426fdn") {
		t.Errorf("got %+v", r)
	}
	r = Scanner(context.Background(), en, configs.AgentScanner{Driver: "escl", URL: srv.URL + "/nothing"})
	if r.Outcome != Fail || !strings.Contains(r.Detail, "404") {
		t.Errorf("wrong root: %+v", r)
	}
}

func TestSANEScanner(t *testing.T) {
	peertest.Program(t, "scanimage", "sane-utils")
	r := Scanner(context.Background(), en, configs.AgentScanner{Driver: "sane", Device: "test"})
	if r.Outcome != OK {
		t.Errorf("scanimage -d test: %+v", r)
	}
	r = Scanner(context.Background(), en, configs.AgentScanner{Driver: "sane", Device: "nosuch:0"})
	if r.Outcome != Fail || !strings.Contains(r.Detail, "open of device nosuch:0 failed") {
		t.Errorf("a missing device: %+v", r)
	}
}

func TestBroker(t *testing.T) {
	addr := peertest.Mosquitto(t, "allow_anonymous true")
	r := Broker(context.Background(), en, configs.AgentMQTT{Broker: "mqtt://" + addr}, "site-agent-check")
	if r.Outcome != OK || r.Detail != "connected as anonymous" {
		t.Errorf("got %+v", r)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	auth := peertest.Mosquitto(t, "allow_anonymous false")
	r = Broker(context.Background(), en, configs.AgentMQTT{Broker: "mqtt://" + auth, Username: "x", PasswordFile: pw}, "c")
	if r.Outcome != Fail {
		t.Errorf("refused credentials: %+v", r)
	}
	r = Broker(context.Background(), en, configs.AgentMQTT{Broker: "mqtt://" + addr, PasswordFile: filepath.Join(t.TempDir(), "absent")}, "c")
	if r.Outcome != Fail || !strings.Contains(r.Detail, "absent") {
		t.Errorf("missing password file: %+v", r)
	}
}

func TestWiFiInterface(t *testing.T) {
	if r := WiFi(context.Background(), en, configs.AgentWiFi{Interface: "lo"}); r.Outcome != OK {
		t.Errorf("lo: %+v", r)
	}
	if r := WiFi(context.Background(), en, configs.AgentWiFi{Interface: "nosuch0"}); r.Outcome != Fail {
		t.Errorf("nosuch0: %+v", r)
	}
	if r := WiFi(context.Background(), en, configs.AgentWiFi{HostapdCtrl: filepath.Join(t.TempDir(), "wlan0")}); r.Outcome != Fail {
		t.Errorf("no hostapd: %+v", r)
	}
}

func TestPanel(t *testing.T) {
	if r := Panel(en, configs.AgentPanel{Simulate: true, Button: "GPIO27", LED: "GPIO17"}); r.Outcome != OK {
		t.Errorf("simulated: %+v", r)
	}
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Skip("this machine has GPIO; the no-GPIO path is not testable here")
	}
	r := Panel(locale.Printer(language.French), configs.AgentPanel{Button: "GPIO27", LED: "GPIO17"})
	if r.Outcome != Fail || !strings.Contains(r.Detail, "aucune puce GPIO") {
		t.Errorf("no GPIO: %+v", r)
	}
}

func TestStorage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if r := Storage(en, dir); r.Outcome != OK || !strings.Contains(r.Detail, "free of") {
		t.Errorf("got %+v", r)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if r := Storage(en, filepath.Join(file, "sub")); r.Outcome != Fail {
		t.Errorf("under a file: %+v", r)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
