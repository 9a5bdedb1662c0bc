package ippserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/peertest"
)

// replayPrinter is a site printer that answers Get-Printer-Attributes with
// a real device's recorded response, as relais-sim printer does, and
// refuses the rest.
func replayPrinter(t *testing.T, dump string) (uri string, attrs goipp.Attributes) {
	t.Helper()
	data, err := os.ReadFile(peertest.Device(t, dump))
	if err != nil {
		t.Fatal(err)
	}
	var recorded goipp.Message
	if err := recorded.DecodeBytes(data); err != nil {
		t.Fatalf("%s: %v", dump, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req goipp.Message
		if err := req.Decode(io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.Copy(io.Discard, r.Body)
		resp := goipp.NewResponse(req.Version, goipp.StatusErrorOperationNotSupported, req.RequestID)
		resp.Operation = recorded.Operation
		if goipp.Op(req.Code) == goipp.OpGetPrinterAttributes {
			resp.Code = goipp.Code(goipp.StatusOk)
			resp.Printer = recorded.Printer
		}
		out, err := resp.EncodeBytes()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", goipp.ContentType)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return "ipp" + strings.TrimPrefix(srv.URL, "http") + "/ipp/print", recorded.Printer
}

// watchClock is the queue's clock in tests that wait for the queue to
// have read the printer's attributes: it tells the test when the queue
// waits for its next printer poll, which it does once it has taken in the
// printer's answer. A still clock stands at t0 and its timers never fire;
// otherwise it is the real clock.
type watchClock struct {
	still  bool
	mu     sync.Mutex
	waits  []time.Duration
	waited chan struct{}
}

func newWatchClock(still bool) *watchClock {
	return &watchClock{still: still, waited: make(chan struct{}, 1)}
}

func (c *watchClock) Now() time.Time {
	if c.still {
		return t0
	}
	return time.Now()
}

func (c *watchClock) NewTimer(d time.Duration) printq.Timer {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	select {
	case c.waited <- struct{}{}:
	default:
	}
	if c.still {
		return stillTimer{}
	}
	return realTimer{time.NewTimer(d)}
}

// waitFor waits until the queue has started a timer of d.
func (c *watchClock) waitFor(t *testing.T, d time.Duration) {
	t.Helper()
	limit := time.NewTimer(60 * time.Second)
	defer limit.Stop()
	for {
		c.mu.Lock()
		found := slices.Contains(c.waits, d)
		c.mu.Unlock()
		if found {
			return
		}
		select {
		case <-c.waited:
		case <-limit.C:
			t.Fatalf("the queue never waited %v", d)
		}
	}
}

// stillTimer never fires.
type stillTimer struct{}

func (stillTimer) C() <-chan time.Time { return nil }
func (stillTimer) Stop() bool          { return true }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// mirroredEnv starts a queue whose printer replays dump, waits until it has
// read the printer's attributes, and returns the server.
func mirroredEnv(t *testing.T, dump string) (*env, goipp.Attributes) {
	t.Helper()
	uri, attrs := replayPrinter(t, dump)
	clock := newWatchClock(true)
	const poll = 17 * time.Minute // a duration the queue uses for nothing else
	e := newEnv(t, printq.Config{PrinterURI: uri, Clock: clock, PollInterval: poll}, Config{Name: "Mairie"})
	e.run()
	clock.waitFor(t, poll)
	if e.q.Printer().Attrs == nil {
		t.Fatal("the queue has no printer attributes")
	}
	return e, attrs
}

// The printer mirrors a real Xerox B235: what it can print, on what media,
// how; with the agent's own identity, and nothing of the Xerox's network.
func TestMirrorXeroxB235(t *testing.T) {
	e, xerox := mirroredEnv(t, "Xerox-B235-Printer-Attributes.ipp")
	resp := e.do(e.request(goipp.OpGetPrinterAttributes, kw("requested-attributes", "all", "media-col-database")), nil)
	wantStatus(t, "Get-Printer-Attributes", resp, goipp.StatusOk)
	p := resp.Printer

	formats := strs(p, "document-format-supported")
	want := []string{"application/octet-stream", "image/urf", "image/pwg-raster", "application/PCLm", "image/jpeg", "application/postscript"}
	if !slices.Equal(formats, want) {
		t.Errorf("document-format-supported %v, want %v (the B235's, in its order: no PDF, no text/plain)", formats, want)
	}
	for _, name := range []string{"media-supported", "media-ready", "media-default", "media-col-database", "media-col-default",
		"media-col-ready", "media-size-supported", "media-source-supported", "media-type-supported", "sides-supported",
		"print-color-mode-supported", "printer-resolution-supported", "print-quality-supported", "copies-supported",
		"finishings-supported", "pwg-raster-document-resolution-supported", "pwg-raster-document-type-supported",
		"urf-supported", "page-ranges-supported", "print-scaling-supported", "output-bin-supported", "overrides-supported",
		"marker-names", "marker-levels", "printer-supply", "printer-supply-description", "pages-per-minute",
		"color-supported", "jpeg-k-octets-supported", "job-constraints-supported", "media-top-margin-supported"} {
		if got, orig := find(p, name), values(xerox, name); !got.Equal(orig) {
			t.Errorf("%s = %v, want the B235's %v", name, got, orig)
		}
	}
	if got := str(p, "printer-make-and-model"); got != "Xerox(R) B235 MFP (Relais)" {
		t.Errorf("printer-make-and-model %q", got)
	}
	if got := str(p, "printer-device-id"); got != "MFG:Xerox;MDL:B235 MFP;CMD:URF,PWGRaster,PCLM,JPEG,POSTSCRIPT;" {
		t.Errorf("printer-device-id %q", got)
	}
	for name, theirs := range map[string]string{
		"printer-uri-supported": "ipp://192.168.1.100:631/ipp/print", "printer-uuid": "urn:uuid:67bbb526-3a17-474f-a567-2ca5f6156613",
		"printer-more-info": "http://192.168.1.100/#/Settings/Network/AirPrint", "printer-name": "Xerox(R) B235 MFP",
	} {
		if got := str(p, name); got == theirs || got == "" {
			t.Errorf("%s = %q", name, got)
		}
	}
	for _, name := range []string{"printer-wifi-ssid", "printer-firmware-name", "device-uuid", "pages-per-minute-color",
		"job-password-supported", "document-password-supported", "mopria-certified", "job-sheets-supported",
		"pdf-versions-supported", "identify-actions-supported"} {
		if name == "identify-actions-supported" {
			if got := strs(p, name); !slices.Equal(got, []string{"flash"}) {
				t.Errorf("%s = %v: the agent's LED, not the B235's display", name, got)
			}
			continue
		}
		if find(p, name) != nil {
			t.Errorf("%s is mirrored: %v", name, find(p, name))
		}
	}
	if integerOf(p, "printer-state") != 3 || str(p, "printer-state-reasons") != "none" {
		t.Errorf("printer-state %d %v", integerOf(p, "printer-state"), strs(p, "printer-state-reasons"))
	}

	// Jobs are checked against the B235's capabilities.
	ok := withJob(e.request(goipp.OpValidateJob, mimeAttr("image/urf")),
		kw("sides", "two-sided-long-edge"), kw("media", "na_letter_8.5x11in"), intAttr("copies", 999),
		kw("print-scaling", "fit"), goipp.MakeAttr("media-col", goipp.TagBeginCollection, goipp.Collection{
			goipp.MakeAttr("media-size", goipp.TagBeginCollection, goipp.Collection{intAttr("x-dimension", 21000), intAttr("y-dimension", 29700)}),
			kw("media-source", "tray-1"), kw("media-type", "labels"),
			intAttr("media-top-margin", 423), intAttr("media-bottom-margin", 423), intAttr("media-left-margin", 423), intAttr("media-right-margin", 423)}))
	resp = e.do(ok, nil)
	wantStatus(t, "Validate-Job", resp, goipp.StatusOkIgnoredOrSubstituted)
	if got := names(resp.Unsupported); !slices.Equal(got, []string{"media"}) {
		t.Errorf("unsupported %v: only media, given with media-col, is ignored", got)
	}
	for _, bad := range []goipp.Attribute{
		kw("print-color-mode", "color"), intAttr("copies", 1000),
		goipp.MakeAttr("printer-resolution", goipp.TagResolution, goipp.Resolution{Xres: 1200, Yres: 1200, Units: goipp.UnitsDpi}),
		kw("media", "iso_a3_297x420mm"),
	} {
		resp := e.do(withJob(e.request(goipp.OpValidateJob, boolAttr("ipp-attribute-fidelity", true)), bad), nil)
		wantStatus(t, "Validate-Job with "+bad.Name, resp, goipp.StatusErrorAttributesOrValues)
	}
	resp = e.do(e.request(goipp.OpPrintJob, mimeAttr("application/pdf")), pdf)
	wantStatus(t, "PDF to a B235", resp, goipp.StatusErrorDocumentFormatNotSupported)
	resp = e.do(e.request(goipp.OpPrintJob), pdf)
	wantStatus(t, "PDF as octet-stream to a B235", resp, goipp.StatusErrorDocumentFormatNotSupported)
	if !strings.Contains(str(resp.Operation, "status-message"), "application/pdf") {
		t.Errorf("status-message %q", str(resp.Operation, "status-message"))
	}
	if len(e.jobs()) != 0 {
		t.Fatal("a PDF job was queued for a printer without PDF")
	}
}

// printer-config-change-time moves only when the mirrored capabilities
// change.
func TestConfigChangeTime(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	attrsA := goipp.Attributes{kw("sides-supported", "one-sided"), strAttr("document-format-supported", goipp.TagMimeType, "application/pdf")}
	attrsB := goipp.Attributes{kw("sides-supported", "one-sided", "two-sided-long-edge"), strAttr("document-format-supported", goipp.TagMimeType, "application/pdf")}
	c1 := e.srv.capsFor(printq.PrinterStatus{Attrs: attrsA})
	e.clock.Add(time.Hour)
	c2 := e.srv.capsFor(printq.PrinterStatus{Attrs: attrsA.Clone()})
	if c2 != c1 {
		t.Error("a shallow copy of the same attributes rebuilt the capabilities")
	}
	c3 := e.srv.capsFor(printq.PrinterStatus{Attrs: attrsA.DeepCopy()})
	if !c3.changed.Equal(c1.changed) {
		t.Errorf("equal attributes changed the config time to %v", c3.changed)
	}
	c4 := e.srv.capsFor(printq.PrinterStatus{Attrs: attrsB})
	if !c4.changed.Equal(t0.Add(time.Hour)) {
		t.Errorf("new capabilities at %v, want %v", c4.changed, t0.Add(time.Hour))
	}
	if !bytes.Equal([]byte(str(c4.attrs, "sides-supported")), []byte("one-sided")) || len(c4.get("sides-supported")) != 2 {
		t.Errorf("capabilities %v", c4.attrs)
	}
}
