// Package probe reaches each device that an agent configuration names — the
// site's printer, its scanner, relais-central's broker, the Wi-Fi access
// point, the button and LED pins, the storage directory — and says in plain
// words whether it answers. `relais-agent check` prints its results; nothing
// here changes a device's state.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/text/message"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/relais-fr/relais/agent/hostapd"
	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/agent/uplink"
	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/configs"
)

// Timeout bounds each probe.
const Timeout = 15 * time.Second

// Outcome is the verdict of one probe.
type Outcome int

const (
	OK      Outcome = iota // the device answered
	Fail                   // configured, and it did not answer
	Skipped                // not configured
)

// Result is what one probe found.
type Result struct {
	Device  string // "printer", "scanner", "broker", "wifi", "panel", "storage"
	Target  string // the address or path that was probed
	Outcome Outcome
	Detail  string // in the reader's language
}

// All probes every device of cfg, one after the other, in a fixed order.
func All(ctx context.Context, p *message.Printer, cfg *configs.Agent) []Result {
	return []Result{
		Printer(ctx, p, cfg.Printer.URI),
		Scanner(ctx, p, cfg.Scanner),
		Broker(ctx, p, cfg.MQTT, cfg.Site.ID+"-"+cfg.Site.Agent+"-check"),
		WiFi(ctx, p, cfg.WiFi),
		Panel(p, cfg.Panel),
		Storage(p, cfg.Storage.Dir),
	}
}

func fail(device, target string, err error) Result {
	return Result{Device: device, Target: target, Outcome: Fail, Detail: err.Error()}
}

func skipped(p *message.Printer, device string) Result {
	return Result{Device: device, Outcome: Skipped, Detail: p.Sprintf("not configured")}
}

// Printer asks the printer at uri for its model, state and formats.
func Printer(ctx context.Context, p *message.Printer, uri string) Result {
	if uri == "" {
		return skipped(p, "printer")
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	c := &upstream.Client{URI: uri}
	attrs, err := c.PrinterAttributes(ctx, "printer-make-and-model", "printer-state", "printer-state-reasons", "document-format-supported")
	if err != nil {
		return fail("printer", uri, err)
	}
	var parts []string
	if v := upstream.Find(attrs, "printer-make-and-model"); len(v) > 0 {
		parts = append(parts, v[0].V.String())
	}
	if v := upstream.Find(attrs, "printer-state"); len(v) > 0 {
		parts = append(parts, printerState(v[0].V.String()))
	}
	if v := upstream.Find(attrs, "printer-state-reasons"); len(v) > 0 && v[0].V.String() != "none" {
		var rs []string
		for _, r := range v {
			rs = append(rs, r.V.String())
		}
		parts = append(parts, strings.Join(rs, ","))
	}
	var formats []string
	for _, f := range upstream.Find(attrs, "document-format-supported") {
		formats = append(formats, f.V.String())
	}
	if len(formats) > 0 {
		parts = append(parts, strings.Join(formats, " "))
	}
	return Result{Device: "printer", Target: uri, Outcome: OK, Detail: strings.Join(parts, "; ")}
}

func printerState(enum string) string {
	switch enum {
	case "3":
		return "idle"
	case "4":
		return "processing"
	case "5":
		return "stopped"
	}
	return "state " + enum
}

// Scanner asks an eSCL scanner for its capabilities, or checks that SANE
// lists the configured device.
func Scanner(ctx context.Context, p *message.Printer, cfg configs.AgentScanner) Result {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	switch cfg.Driver {
	case "escl":
		model, err := esclModel(ctx, cfg.URL)
		if err != nil {
			return fail("scanner", cfg.URL, err)
		}
		return Result{Device: "scanner", Target: cfg.URL, Outcome: OK, Detail: model}
	case "sane":
		// Listing the device's options opens it: the scanner answers, and
		// the backend and its permissions work.
		out, err := exec.CommandContext(ctx, "scanimage", "-d", cfg.Device, "-A").CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
				msg = msg[i+1:]
			}
			return fail("scanner", cfg.Device, fmt.Errorf("scanimage: %v: %s", err, msg))
		}
		return Result{Device: "scanner", Target: cfg.Device, Outcome: OK, Detail: "SANE"}
	}
	return skipped(p, "scanner")
}

func esclModel(ctx context.Context, root string) (string, error) {
	e, err := scan.NewESCL(root, scan.Options{RequestTimeout: Timeout})
	if err != nil {
		return "", err
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(caps.MakeAndModel + " (eSCL " + caps.Version + ")"), nil
}

// Broker connects to relais-central's broker with the agent's credentials,
// under a client id of its own so as not to push the running agent off, and
// disconnects without publishing.
func Broker(ctx context.Context, p *message.Printer, cfg configs.AgentMQTT, clientID string) Result {
	if cfg.Broker == "" {
		return skipped(p, "broker")
	}
	opts, err := uplink.Options(cfg, clientID)
	if err != nil {
		return fail("broker", cfg.Broker, err)
	}
	opts.SetAutoReconnect(false).SetConnectRetry(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fail("broker", cfg.Broker, ctx.Err())
	case <-time.After(Timeout):
		return fail("broker", cfg.Broker, errors.New("no answer"))
	}
	if err := tok.Error(); err != nil {
		return fail("broker", cfg.Broker, err)
	}
	c.Disconnect(100)
	user := cfg.Username
	if user == "" {
		user = "anonymous"
	}
	return Result{Device: "broker", Target: cfg.Broker, Outcome: OK, Detail: p.Sprintf("connected as %s", user)}
}

// WiFi asks hostapd for the access point's state, or checks the wireless
// interface.
func WiFi(ctx context.Context, p *message.Printer, cfg configs.AgentWiFi) Result {
	switch {
	case cfg.HostapdCtrl != "":
		dir, err := os.MkdirTemp("", "relais-check-")
		if err != nil {
			return fail("wifi", cfg.HostapdCtrl, err)
		}
		defer os.RemoveAll(dir)
		c, err := hostapd.Dial(cfg.HostapdCtrl, dir)
		if err != nil {
			return fail("wifi", cfg.HostapdCtrl, err)
		}
		defer c.Close()
		st, err := c.Status(ctx)
		if err != nil {
			return fail("wifi", cfg.HostapdCtrl, err)
		}
		out := OK
		if st.State != "ENABLED" {
			out = Fail
		}
		return Result{Device: "wifi", Target: cfg.HostapdCtrl, Outcome: out,
			Detail: p.Sprintf("access point %s, channel %s, %s client(s)", fmt.Sprintf("%q %s", st.SSID, st.State), fmt.Sprint(st.Channel), fmt.Sprint(st.Stations))}
	case cfg.Interface != "":
		ifi, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return fail("wifi", cfg.Interface, err)
		}
		state, out := "down", Fail
		if ifi.Flags&net.FlagUp != 0 {
			state, out = "up", OK
		}
		return Result{Device: "wifi", Target: cfg.Interface, Outcome: out, Detail: p.Sprintf("interface %s is %s", cfg.Interface, state)}
	}
	return skipped(p, "wifi")
}

// Panel checks that the GPIO pins of the button and LEDs exist.
func Panel(p *message.Printer, cfg configs.AgentPanel) Result {
	pins := strings.Join(nonEmpty(cfg.Button, cfg.LED, cfg.FaultLED), ", ")
	if cfg.Simulate {
		return Result{Device: "panel", Target: pins, Outcome: OK, Detail: p.Sprintf("simulated (no GPIO)")}
	}
	if err := CheckPins(cfg); err != nil {
		return Result{Device: "panel", Target: pins, Outcome: Fail, Detail: localisePinError(p, err)}
	}
	return Result{Device: "panel", Target: pins, Outcome: OK, Detail: p.Sprintf("pins %s", pins)}
}

// PinError says which pin is missing, or that there is no GPIO at all.
type PinError struct {
	Key, Pin string // empty when no GPIO chip was found
	Err      error
}

func (e *PinError) Error() string {
	if e.Pin == "" {
		return fmt.Sprintf("no GPIO chip found (%v); set [panel] simulate = true to run without a button", e.Err)
	}
	return fmt.Sprintf("pin %s (%s) does not exist on this board", e.Pin, e.Key)
}

func localisePinError(p *message.Printer, err error) string {
	var pe *PinError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if pe.Pin == "" {
		return p.Sprintf("no GPIO chip found (%v); set [panel] simulate = true to run without a button", pe.Err)
	}
	return p.Sprintf("pin %s (%s) does not exist on this board", pe.Pin, pe.Key)
}

// CheckPins initialises periph.io's host drivers and looks up every
// configured pin; relais-agent run refuses to start without them unless the
// panel is simulated.
func CheckPins(cfg configs.AgentPanel) error {
	if _, err := host.Init(); err != nil {
		return &PinError{Err: err}
	}
	if len(gpioreg.All()) == 0 {
		return &PinError{Err: errors.New("no GPIO driver loaded")}
	}
	for _, pin := range []struct{ key, name string }{
		{"panel.button", cfg.Button}, {"panel.led", cfg.LED}, {"panel.fault_led", cfg.FaultLED},
	} {
		if pin.name != "" && gpioreg.ByName(pin.name) == nil {
			return &PinError{Key: pin.key, Pin: pin.name}
		}
	}
	return nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Storage checks that the storage directory exists or can be made, that a
// file written there reaches the disk, and how much room is left.
func Storage(p *message.Printer, dir string) Result {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail("storage", dir, err)
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return fail("storage", dir, err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString("relais\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("storage", dir, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Clean(dir), &st); err != nil {
		return fail("storage", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	total := st.Blocks * uint64(st.Bsize)
	return Result{Device: "storage", Target: dir, Outcome: OK, Detail: p.Sprintf("writable, %s free of %s", Bytes(free), Bytes(total))}
}

// Bytes formats a size for people: 1.5 GiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
