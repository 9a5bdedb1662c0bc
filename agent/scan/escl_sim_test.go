package scan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/agent/sim/scanner"
	"github.com/relais-fr/relais/central/peertest"
)

// The escl driver against relais-sim's eSCL scanner.

func TestESCLPlatenOnePage(t *testing.T) {
	sim := startSim(t, scanner.Config{})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 150, Color: true, Format: scan.FormatJPEG}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := scan.Result{Pages: 1, Format: scan.FormatJPEG, Color: true, Source: scan.SourcePlaten, Resolution: 150, Bytes: int64(out.Len())}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	img, err := jpeg.Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	// A4 at 150 dpi.
	if b := img.Bounds(); b.Dx() != 1240 || b.Dy() != 1754 {
		t.Errorf("page of %v, want 1240×1754", b.Size())
	}
	if !isColour(img) || scanner.PageCode(img, 150) != 1 {
		t.Errorf("colour %t, page code %d", isColour(img), scanner.PageCode(img, 150))
	}
	st := sim.Status()
	if st.Completed != 1 || st.Active != 0 || st.Pages != 1 {
		t.Errorf("simulator after the scan: %+v", st)
	}
}

// A request with no resolution is A4 at 300 dpi; from the glass when the
// feeder is empty.
func TestESCLDefaultsA4At300(t *testing.T) {
	sim := startSim(t, scanner.Config{})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 1 || res.Format != scan.FormatPDF || res.Resolution != 300 || res.Source != scan.SourcePlaten || res.Color {
		t.Errorf("result %+v", res)
	}
	doc := out.Bytes()
	if n := pdfPageCount(t, doc); n != 1 {
		t.Errorf("%d pages in the PDF", n)
	}
	// 2480×3508 pixels at 300 dpi is A4 in points.
	if !bytes.Contains(doc, []byte("/MediaBox [ 0 0 595.20 841.92 ]")) {
		t.Errorf("the page is not A4: %s", mediaBoxes(doc))
	}
	imgs := pdfImages(t, doc)
	if len(imgs) != 1 || imgs[0].Bounds().Dx() != 2480 || imgs[0].Bounds().Dy() != 3508 || isColour(imgs[0]) {
		t.Fatalf("images %d; first %v", len(imgs), imgs[0].Bounds())
	}
}

func mediaBoxes(doc []byte) string {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.Contains(l, "MediaBox") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

func TestESCLFeederThreePagesOnePDF(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 3})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 100}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 3 || res.Format != scan.FormatPDF || res.Source != scan.SourceFeeder || res.Duplex {
		t.Errorf("result %+v", res)
	}
	if n := pdfPageCount(t, out.Bytes()); n != 3 {
		t.Errorf("%d pages in the PDF, want 3", n)
	}
	if codes := pageCodes(pdfImages(t, out.Bytes()), 100); !slices.Equal(codes, []int{1, 2, 3}) {
		t.Errorf("pages %v, want 1, 2, 3 in order", codes)
	}
	st := sim.Status()
	if st.ADF != 0 || st.ADFState != "ScannerAdfEmpty" || st.Completed != 1 || st.Active != 0 {
		t.Errorf("simulator after the scan: %+v", st)
	}
}

// Several pages make a PDF even when a JPEG is asked for.
func TestESCLFeederJPEGRequestGivesPDF(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 2})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 75, Format: scan.FormatJPEG}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 2 || res.Format != scan.FormatPDF || !bytes.HasPrefix(out.Bytes(), []byte("%PDF-")) {
		t.Errorf("result %+v, document starts %q", res, out.Bytes()[:8])
	}
}

func TestESCLDuplex(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 2})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 75, Duplex: true, Color: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 4 || !res.Duplex || !res.Color || res.Source != scan.SourceFeeder {
		t.Errorf("result %+v", res)
	}
	if codes := pageCodes(pdfImages(t, out.Bytes()), 75); !slices.Equal(codes, []int{1, 2, 3, 4}) {
		t.Errorf("pages %v", codes)
	}
}

// A device that offers only PDF sends a PDF per page: they are merged.
func TestESCLPDFOnlyDeviceMerged(t *testing.T) {
	caps := strings.NewReplacer(
		"<pwg:DocumentFormat>image/jpeg</pwg:DocumentFormat>", "",
		"<scan:DocumentFormatExt>image/jpeg</scan:DocumentFormatExt>", "").Replace(string(scanner.BuiltinCapabilities()))
	sim := startSim(t, scanner.Config{Capabilities: []byte(caps), ADF: 3})
	e := newESCL(t, sim.URL(), scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 75}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 3 || res.Format != scan.FormatPDF {
		t.Errorf("result %+v", res)
	}
	if n := pdfPageCount(t, out.Bytes()); n != 3 {
		t.Errorf("%d pages in the merged PDF, want 3", n)
	}
	if codes := pageCodes(pdfImages(t, out.Bytes()), 75); !slices.Equal(codes, []int{1, 2, 3}) {
		t.Errorf("pages %v", codes)
	}
}

// Devices that answer an absolute Location naming localhost, and job
// locations with a trailing slash; a root given with its slash.
func TestESCLLocationQuirks(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 2, AbsoluteLocation: true, TrailingSlash: true})
	e := newESCL(t, sim.URL()+"/", scan.Options{})
	var out bytes.Buffer
	res, err := e.Scan(context.Background(), scan.Request{Resolution: 75}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 2 {
		t.Errorf("result %+v", res)
	}
	if st := sim.Status(); st.Completed != 1 {
		t.Errorf("simulator: %+v", st)
	}
}

func TestESCLBusyThenSuccess(t *testing.T) {
	sim := startSim(t, scanner.Config{})
	clock := newFakeClock()
	e := newESCL(t, sim.URL(), scan.Options{Clock: clock})
	command(t, sim, "busy on")
	type outcome struct {
		res scan.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := e.Scan(context.Background(), scan.Request{Resolution: 75}, &bytes.Buffer{})
		done <- outcome{res, err}
	}()
	if d := clock.waitTimer(t); d != scan.DefaultBackoff {
		t.Errorf("first pause %v, want %v", d, scan.DefaultBackoff)
	}
	command(t, sim, "busy off")
	clock.Advance(scan.DefaultBackoff)
	o := <-done
	if o.err != nil || o.res.Pages != 1 {
		t.Fatalf("%+v, %v", o.res, o.err)
	}
}

func TestESCLBusyGivesUp(t *testing.T) {
	sim := startSim(t, scanner.Config{})
	clock := newFakeClock()
	e := newESCL(t, sim.URL(), scan.Options{Clock: clock, Retries: 4})
	command(t, sim, "busy on")
	done := make(chan error, 1)
	go func() {
		_, err := e.Scan(context.Background(), scan.Request{Resolution: 75}, &bytes.Buffer{})
		done <- err
	}()
	var pauses []time.Duration
	for range 3 {
		d := clock.waitTimer(t)
		pauses = append(pauses, d)
		clock.Advance(d)
	}
	err := <-done
	if reason(err) != scan.Busy || !errors.Is(err, scan.Busy) {
		t.Fatalf("error %v, want busy", err)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(pauses, want) {
		t.Errorf("pauses %v, want %v", pauses, want)
	}
}

// Pages not ready yet (503 on NextDocument) are asked for again.
func TestESCLPageNotReadyRetried(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 2})
	clock := newFakeClock()
	e := newESCL(t, sim.URL(), scan.Options{Clock: clock})
	command(t, sim, "not-ready 2")
	done := make(chan error, 1)
	var res scan.Result
	go func() {
		var err error
		res, err = e.Scan(context.Background(), scan.Request{Resolution: 75}, &bytes.Buffer{})
		done <- err
	}()
	for range 2 {
		clock.Advance(clock.waitTimer(t))
	}
	if err := <-done; err != nil || res.Pages != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestESCLFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		adf      int
		commands []string
		source   scan.Source
		want     scan.Reason
		pages    int
	}{
		{"jammed feeder", 3, []string{"jam on"}, scan.SourceFeeder, scan.Jammed, 0},
		{"jam at the second sheet", 3, []string{"jam 2"}, scan.SourceAuto, scan.Jammed, 1},
		{"door open", 3, []string{"open on"}, scan.SourceFeeder, scan.CoverOpen, 0},
		{"feeder empty", 0, nil, scan.SourceFeeder, scan.NoDocuments, 0},
		{"scanner down", 0, []string{"down on"}, scan.SourceAuto, scan.Unreachable, 0},
		{"scanner down during a feeder scan", 3, []string{"down on"}, scan.SourceFeeder, scan.Unreachable, 0},
		{"scanner offline", 0, []string{"offline on"}, scan.SourceAuto, scan.Unreachable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scanner.Config{ADF: tc.adf})
			clock := newFakeClock()
			e := newESCL(t, sim.URL(), scan.Options{Clock: clock})
			command(t, sim, tc.commands...)
			var out bytes.Buffer
			_, err := e.Scan(context.Background(), scan.Request{Resolution: 75, Source: tc.source}, &out)
			var se *scan.Error
			if !errors.As(err, &se) || se.Reason != tc.want || se.Pages != tc.pages {
				t.Fatalf("error %v (%+v), want %s after %d pages", err, se, tc.want, tc.pages)
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written for a failed scan", out.Len())
			}
			select {
			case d := <-clock.made:
				t.Errorf("the driver waited %v: a fault that explains itself is not retried", d)
			default:
			}
			if st := sim.Status(); st.Active != 0 {
				t.Errorf("a job is left in progress: %+v", st)
			}
		})
	}
}

func TestESCLStatus(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 2})
	e := newESCL(t, sim.URL(), scan.Options{})
	ctx := context.Background()
	st, err := e.Status(ctx)
	if want := (scan.Status{State: "idle", ADF: "loaded", Model: "Relais Sim Scanner"}); err != nil || st != want {
		t.Errorf("status %+v, %v; want %+v", st, err, want)
	}
	command(t, sim, "jam on")
	if st, err := e.Status(ctx); err != nil || st.ADF != "jam" || st.Fault != scan.Jammed {
		t.Errorf("jammed: %+v, %v", st, err)
	}
	command(t, sim, "jam off", "down on")
	if st, err := e.Status(ctx); err != nil || st.State != "down" || st.Fault != scan.Unreachable {
		t.Errorf("down: %+v, %v", st, err)
	}
	command(t, sim, "down off", "offline on")
	if _, err := e.Status(ctx); reason(err) != scan.Unreachable {
		t.Errorf("offline: %v", err)
	}
	command(t, sim, "online")
	if st, err := e.Status(ctx); err != nil || st.State != "idle" {
		t.Errorf("back online: %+v, %v", st, err)
	}
}

func TestESCLCancelDeletesTheJob(t *testing.T) {
	sim := startSim(t, scanner.Config{ADF: 3})
	clock := newFakeClock()
	e := newESCL(t, sim.URL(), scan.Options{Clock: clock})
	command(t, sim, "not-ready 5")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Scan(ctx, scan.Request{Resolution: 75}, &bytes.Buffer{})
		done <- err
	}()
	clock.waitTimer(t)
	cancel()
	if err := <-done; reason(err) != scan.Canceled {
		t.Fatalf("error %v, want canceled", err)
	}
	if st := sim.Status(); st.Active != 0 || st.Aborted != 1 {
		t.Errorf("the job was not deleted: %+v", st)
	}
}

func TestESCLLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  scan.Options
	}{
		{"pages", scan.Options{MaxPages: 2}},
		{"page bytes", scan.Options{MaxPageBytes: 2000}},
		{"bytes", scan.Options{MaxBytes: 20000}},
		{"pixels", scan.Options{MaxPixels: 500_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, scanner.Config{ADF: 3})
			e := newESCL(t, sim.URL(), tc.opt)
			_, err := e.Scan(context.Background(), scan.Request{Resolution: 75, Color: true}, &bytes.Buffer{})
			if reason(err) != scan.TooLarge {
				t.Fatalf("error %v, want too-large", err)
			}
			if st := sim.Status(); st.Active != 0 {
				t.Errorf("a job is left in progress: %+v", st)
			}
		})
	}
}

func TestESCLUnsupported(t *testing.T) {
	sim := startSim(t, scanner.Config{Capabilities: platenOnly(t)})
	e := newESCL(t, sim.URL(), scan.Options{})
	for _, req := range []scan.Request{
		{Source: scan.SourceFeeder},
		{Format: "image/png"},
		{Source: "tray"},
		{Resolution: -1},
	} {
		if _, err := e.Scan(context.Background(), req, &bytes.Buffer{}); reason(err) != scan.Unsupported {
			t.Errorf("%+v: %v, want unsupported", req, err)
		}
	}
}

// platenOnly is the built-in capabilities without the feeder.
func platenOnly(t *testing.T) []byte {
	caps := string(scanner.BuiltinCapabilities())
	i, j := strings.Index(caps, "<scan:Adf>"), strings.Index(caps, "</scan:Adf>")
	if i < 0 || j < 0 {
		t.Fatal("no feeder in the built-in capabilities")
	}
	return []byte(caps[:i] + caps[j+len("</scan:Adf>"):])
}

func TestESCLNoScannerThere(t *testing.T) {
	port := peertest.FreePort(t)
	e := newESCL(t, fmt.Sprintf("http://127.0.0.1:%d/eSCL", port), scan.Options{})
	if _, err := e.Scan(context.Background(), scan.Request{}, &bytes.Buffer{}); reason(err) != scan.Unreachable {
		t.Errorf("scan: %v, want unreachable", err)
	}
	if _, err := e.Status(context.Background()); reason(err) != scan.Unreachable {
		t.Errorf("status: %v, want unreachable", err)
	}
	for _, bad := range []string{"", "ftp://127.0.0.1/eSCL", "http:///eSCL", "127.0.0.1/eSCL"} {
		if _, err := scan.NewESCL(bad, scan.Options{}); err == nil {
			t.Errorf("NewESCL(%q) accepted", bad)
		}
	}
}

// The simulator replaying real devices' capabilities: the driver fits its
// request to each.
func TestESCLReplayedDevices(t *testing.T) {
	for _, tc := range []struct {
		dump   string
		adf    int
		req    scan.Request
		pages  int
		duplex bool
	}{
		{"HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml", 2, scan.Request{Resolution: 100, Duplex: true}, 4, true},
		{"HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml", 0, scan.Request{Resolution: 75, Color: true}, 1, false},
		{"Xerox-B235-ScannerCapabilities.xml", 2, scan.Request{Resolution: 75, Duplex: true}, 2, false},
	} {
		t.Run(fmt.Sprintf("%s-adf%d", strings.SplitN(tc.dump, "-", 2)[0], tc.adf), func(t *testing.T) {
			caps, err := scanner.LoadCapabilities(peertest.Device(t, tc.dump))
			if err != nil {
				t.Fatal(err)
			}
			sim := startSim(t, scanner.Config{Capabilities: caps, ADF: tc.adf})
			e := newESCL(t, sim.URL(), scan.Options{})
			var out bytes.Buffer
			res, err := e.Scan(context.Background(), tc.req, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pages != tc.pages || res.Duplex != tc.duplex {
				t.Errorf("result %+v, want %d pages, duplex %t", res, tc.pages, tc.duplex)
			}
		})
	}
}
