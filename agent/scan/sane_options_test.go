package scan

import (
	"errors"
	"os/exec"
	"slices"
	"testing"
)

// Listings in scanimage -A's form, as backends write them.
const (
	testBackendListing = `
All options specific to device ` + "`test'" + `:
  Scan Mode:
    --mode Gray|Color [Gray]
        Selects the scan mode (e.g., lineart, monochrome, or color).
    --depth 1|8|16 [8]
    --hand-scanner[=(yes|no)] [no]
    --three-pass[=(yes|no)] [inactive]
    --resolution 1..1200dpi (in steps of 1) [50]
        Sets the resolution of the scanned image.
    --source Flatbed|Automatic Document Feeder [Flatbed]
  Geometry:
    -l 0..200mm (in steps of 1) [0]
    -x 0..200mm (in steps of 1) [80]
    -y 0..200mm (in steps of 1) [100]
`
	airscanListing = `
  Standard:
    --resolution 75|100|150|200|300|600dpi [300]
    --mode Color|Gray [Color]
    --source Flatbed|ADF|ADF Duplex [Flatbed]
  Geometry:
    -x 0..215.9mm [215.9]
    -y 0..297.011mm [297.011]
`
	pixelListing = `
    --mode Lineart|Halftone|24bit Color|8bit Grayscale [24bit Color]
    --source ADF Front|ADF Back|ADF Duplex [ADF Front]
    --resolution 100..600dpi (in steps of 50) [300]
    -x 0..2550pel [2550]
    -y 0..3300pel [3300]
    --inactive-thing 1|2 [inactive]
`
)

func TestParseOptions(t *testing.T) {
	o := parseOptions(testBackendListing)
	if !slices.Equal(o.modes, []string{"Gray", "Color"}) || !slices.Equal(o.sources, []string{"Flatbed", "Automatic Document Feeder"}) {
		t.Errorf("test backend: modes %q, sources %q", o.modes, o.sources)
	}
	if !o.hasResolution || o.resMin != 1 || o.resMax != 1200 || o.resStp != 1 || o.maxX != 200 || o.maxY != 200 {
		t.Errorf("test backend: %+v", o)
	}
	if o.source("platen") != "Flatbed" || o.source("feeder") != "Automatic Document Feeder" || o.source("duplex") != "" {
		t.Errorf("test backend sources: %q %q %q", o.source("platen"), o.source("feeder"), o.source("duplex"))
	}
	if o.mode(true) != "Color" || o.mode(false) != "Gray" || o.resolution(300) != 300 {
		t.Errorf("test backend: mode %q/%q, resolution %d", o.mode(true), o.mode(false), o.resolution(300))
	}

	o = parseOptions(airscanListing)
	if !slices.Equal(o.resolutions, []int{75, 100, 150, 200, 300, 600}) || o.maxX != 215.9 || o.maxY != 297.011 {
		t.Errorf("airscan: %+v", o)
	}
	if o.source("platen") != "Flatbed" || o.source("feeder") != "ADF" || o.source("duplex") != "ADF Duplex" {
		t.Errorf("airscan sources: %q %q %q", o.source("platen"), o.source("feeder"), o.source("duplex"))
	}
	if o.resolution(250) != 300 || o.resolution(120) != 100 || o.resolution(1200) != 600 {
		t.Errorf("airscan resolutions: %d %d %d", o.resolution(250), o.resolution(120), o.resolution(1200))
	}

	o = parseOptions(pixelListing)
	if o.mode(true) != "24bit Color" || o.mode(false) != "8bit Grayscale" {
		t.Errorf("modes %q %q", o.mode(true), o.mode(false))
	}
	// A feeder-only scanner: no glass; the front for one side.
	if o.source("platen") != "" || o.source("feeder") != "ADF Front" || o.source("duplex") != "ADF Duplex" {
		t.Errorf("sources: %q %q %q", o.source("platen"), o.source("feeder"), o.source("duplex"))
	}
	// Geometry in pixels is left alone; resolutions follow the steps.
	if o.maxX != 0 || o.maxY != 0 || o.resolution(320) != 300 || o.resolution(330) != 350 || o.resolution(50) != 100 {
		t.Errorf("%+v; resolution(320) = %d", o, o.resolution(320))
	}

	if o := parseOptions(""); o.hasResolution || o.mode(true) != "" || o.source("feeder") != "" || o.resolution(300) != 300 {
		t.Errorf("nothing listed: %+v", o)
	}
}

func TestSANEFailureMessages(t *testing.T) {
	exit := func(code int) error {
		err := exec.Command("sh", "-c", "exit "+string(rune('0'+code))).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("exit %d: %v", code, err)
		}
		return err
	}
	for _, tc := range []struct {
		err    error
		stderr string
		want   Reason
	}{
		{exit(6), "scanimage: sane_read: Document feeder jammed\n", Jammed},
		{exit(7), "scanimage: sane_start: Document feeder out of documents\n", NoDocuments},
		{exit(8), "scanimage: sane_read: Scanner cover is open\n", CoverOpen},
		{exit(3), "scanimage: sane_read: Device busy\n", Busy},
		{exit(9), "scanimage: sane_read: Error during device I/O\n", IOError},
		{exit(1), "scanimage: open of device nosuch:0 failed: Invalid argument\n", Unreachable},
		{exit(1), "scanimage: no SANE devices found\n", Unreachable},
		// Messages in another language: the exit status tells.
		{exit(6), "scanimage: sane_read: Bourrage du chargeur\n", Jammed},
		{exit(8), "?", CoverOpen},
		{exit(1), "scanimage: something else\n", IOError},
		{exec.ErrNotFound, "", Unreachable},
	} {
		if e := saneFailure(tc.err, tc.stderr, 0); e.Reason != tc.want {
			t.Errorf("%v, %q: %s, want %s", tc.err, tc.stderr, e.Reason, tc.want)
		}
	}
}
