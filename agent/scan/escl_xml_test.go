package scan

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/relais-fr/relais/central/peertest"
)

func readDump(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(peertest.Device(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCapabilitiesHP(t *testing.T) {
	c, err := ParseCapabilities(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "2.5" || c.MakeAndModel != "HP LaserJet MFP M426fdn" || c.SerialNumber != "PHBLL6F5GB" {
		t.Errorf("identity: %q %q %q", c.Version, c.MakeAndModel, c.SerialNumber)
	}
	want := &InputCaps{
		MinWidth: 576, MaxWidth: 2550, MinHeight: 576, MaxHeight: 3508,
		ColorModes: []string{"RGB24", "Grayscale8"},
		Formats:    []string{"image/jpeg", "application/pdf"}, FormatExt: true,
		Resolutions: []int{75, 200, 300, 600, 1200},
	}
	if !reflect.DeepEqual(c.Platen, want) {
		t.Errorf("platen:\n got %+v\nwant %+v", c.Platen, want)
	}
	if c.ADF == nil || c.ADFDuplex == nil {
		t.Fatalf("feeder %v, duplex %v: the M426fdn has both", c.ADF, c.ADFDuplex)
	}
	if c.ADF.MaxHeight != 4500 || !slices.Equal(c.ADF.Resolutions, []int{75, 200, 300}) {
		t.Errorf("feeder: %+v", c.ADF)
	}
	if c.FeederCapacity != 50 || !slices.Contains(c.ADFOptions, "Duplex") || !slices.Contains(c.ADFOptions, "DetectPaperLoaded") {
		t.Errorf("feeder capacity %d, options %v", c.FeederCapacity, c.ADFOptions)
	}
}

func TestParseCapabilitiesXerox(t *testing.T) {
	c, err := ParseCapabilities(readDump(t, "Xerox-B235-ScannerCapabilities.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MakeAndModel != "Xerox(R) B235 MFP" || c.Version != "2.9" || c.UUID != "67bbb526-3a17-474f-a567-2ca5f6156613" {
		t.Errorf("identity: %q %q %q", c.MakeAndModel, c.Version, c.UUID)
	}
	if c.Platen == nil || c.ADF == nil || c.ADFDuplex != nil {
		t.Fatalf("sources: platen %v, feeder %v, duplex %v; the B235 has a simplex feeder", c.Platen, c.ADF, c.ADFDuplex)
	}
	for _, ic := range []*InputCaps{c.Platen, c.ADF} {
		if !ic.HasColorMode("BlackAndWhite1") || !ic.HasFormat("image/tiff") || !ic.HasFormat(FormatJPEG) {
			t.Errorf("modes %v, formats %v", ic.ColorModes, ic.Formats)
		}
		if !ic.SupportsResolution(300) || ic.SupportsResolution(250) {
			t.Errorf("resolutions %v", ic.Resolutions)
		}
	}
}

// The quirks sane-airscan documents, applied to a real device's document:
// the same capabilities must come out of each.
func TestParseCapabilitiesNamespaceQuirks(t *testing.T) {
	orig := string(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerCapabilities.xml"))
	want, err := ParseCapabilities([]byte(orig))
	if err != nil {
		t.Fatal(err)
	}
	decls := regexp.MustCompile(`\s+xmlns:\w+="[^"]*"`)
	prefixes := regexp.MustCompile(`(</?)(?:scan|pwg):`)
	unprefixed := prefixes.ReplaceAllString(decls.ReplaceAllString(orig, ""), "$1")
	for name, doc := range map[string]string{
		// No prefixes: the eSCL namespace is the default one.
		"default namespace": strings.Replace(unprefixed, "<ScannerCapabilities", `<ScannerCapabilities xmlns="`+NSScan+`"`, 1),
		// No namespace at all.
		"no namespace": unprefixed,
		// Other prefixes bound to the same namespaces.
		"other prefixes": strings.NewReplacer("scan:", "s:", "pwg:", "p:", "xmlns:scan=", "xmlns:s=", "xmlns:pwg=", "xmlns:p=").Replace(orig),
		// pwg: and scan: elements swapped, as devices mix them up.
		"swapped namespaces": strings.NewReplacer("<pwg:", "<scan:", "</pwg:", "</scan:").Replace(orig),
	} {
		got, err := ParseCapabilities([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestParseCapabilitiesRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":             "",
		"not XML":           "HTTP/1.1 200 OK",
		"another root":      `<scan:ScannerStatus xmlns:scan="` + NSScan + `"><pwg:State xmlns:pwg="` + NSPWG + `">Idle</pwg:State></scan:ScannerStatus>`,
		"foreign namespace": `<x:ScannerCapabilities xmlns:x="urn:other"><x:Platen/></x:ScannerCapabilities>`,
		"no source":         `<scan:ScannerCapabilities xmlns:scan="` + NSScan + `"><scan:Version>2.0</scan:Version></scan:ScannerCapabilities>`,
		"source without resolutions": `<ScannerCapabilities><Platen><PlatenInputCaps><SettingProfiles><SettingProfile>` +
			`<ColorModes><ColorMode>RGB24</ColorMode></ColorModes><DocumentFormats><DocumentFormat>image/jpeg</DocumentFormat></DocumentFormats>` +
			`</SettingProfile></SettingProfiles></PlatenInputCaps></Platen></ScannerCapabilities>`,
		"unbalanced": `<ScannerCapabilities><Platen>`,
		"too large":  `<ScannerCapabilities>` + strings.Repeat("<a/>", MaxXMLBytes/4) + `</ScannerCapabilities>`,
	} {
		if c, err := ParseCapabilities([]byte(doc)); err == nil {
			t.Errorf("%s: parsed as %+v", name, c)
		}
	}
}

func TestParseStatusHP(t *testing.T) {
	s, err := ParseStatus(readDump(t, "HP-LaserJet-MFP-M426fdn-ScannerStatus.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "Idle" || s.ADFState != "ScannerAdfEmpty" || len(s.Jobs) != 2 {
		t.Fatalf("%+v", s)
	}
	for _, uri := range []string{"/eSCL/ScanJobs/1005", "/eSCL/ScanJobs/1005/", "http://192.0.2.7/eSCL/ScanJobs/1005"} {
		j := s.Job(uri)
		if j == nil || j.UUID != "166-1005" || j.State != "Completed" || j.ImagesCompleted != 1 || j.Age != 2 ||
			!slices.Equal(j.Reasons, []string{"JobCompletedSuccessfully"}) {
			t.Errorf("Job(%s) = %+v", uri, j)
		}
	}
	if j := s.Job("/eSCL/ScanJobs/100"); j != nil {
		t.Errorf("Job(100) = %+v", j)
	}
	if adfWord(s.ADFState) != "empty" || adfWord("ScannerAdfDoorOpen") != "door-open" {
		t.Errorf("adfWord: %q %q", adfWord(s.ADFState), adfWord("ScannerAdfDoorOpen"))
	}
	if _, err := ParseStatus([]byte(`<ScannerStatus><Version>2.0</Version></ScannerStatus>`)); err == nil {
		t.Error("a status without State parsed")
	}
}

func TestSettingsXMLRoundTrip(t *testing.T) {
	for _, s := range []Settings{
		{Version: "2.0", Source: "Platen", ColorMode: "RGB24", Format: FormatJPEG, FormatExt: true,
			XResolution: 300, YResolution: 300, Width: A4Width, Height: A4Height},
		{Version: "2.0", Source: "Feeder", Duplex: true, ColorMode: "Grayscale8", Format: FormatPDF,
			XResolution: 75, YResolution: 75, XOffset: 10, YOffset: 20, Width: 2000, Height: 3000},
	} {
		doc := s.XML()
		for _, want := range []string{`xmlns:scan="` + NSScan + `"`, `xmlns:pwg="` + NSPWG + `"`,
			"<pwg:InputSource>" + s.Source + "</pwg:InputSource>", "<scan:ColorMode>", "escl:ThreeHundredthsOfInches"} {
			if !strings.Contains(string(doc), want) {
				t.Errorf("ScanSettings lacks %s:\n%s", want, doc)
			}
		}
		if strings.Contains(string(doc), "DocumentFormatExt") != s.FormatExt {
			t.Errorf("DocumentFormatExt sent %t, want %t", !s.FormatExt, s.FormatExt)
		}
		if strings.Contains(string(doc), "Duplex") != (s.Source == "Feeder") {
			t.Errorf("Duplex element for source %s:\n%s", s.Source, doc)
		}
		got, err := ParseSettings(doc)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
		}
	}
	if _, err := ParseSettings([]byte(`<ScanSettings><ScanRegions><ScanRegion><ContentRegionUnits>escl:Millimeters</ContentRegionUnits></ScanRegion></ScanRegions></ScanSettings>`)); err == nil {
		t.Error("a region in unknown units parsed")
	}
}

func TestResolutionChoice(t *testing.T) {
	discrete := &InputCaps{Resolutions: []int{75, 200, 300, 600}}
	rng := &InputCaps{MinResolution: 100, MaxResolution: 1200, ResolutionStep: 100}
	for _, tc := range []struct {
		ic        *InputCaps
		want, got int
	}{
		{discrete, 300, 300}, {discrete, 100, 75}, {discrete, 150, 200}, {discrete, 250, 300},
		{discrete, 5000, 600}, {discrete, 1, 75},
		{rng, 300, 300}, {rng, 50, 100}, {rng, 2000, 1200}, {rng, 349, 300}, {rng, 350, 400},
	} {
		if r := tc.ic.Resolution(tc.want); r != tc.got {
			t.Errorf("%+v: Resolution(%d) = %d, want %d", tc.ic, tc.want, r, tc.got)
		}
	}
}

func FuzzParseCapabilities(f *testing.F) {
	// Small seeds: the fuzzer minimizes what it finds interesting, which
	// takes long on documents the size of the real dumps (those are
	// parsed by the tests above).
	f.Add([]byte(`<ScannerCapabilities><Platen><PlatenInputCaps><MaxWidth>2550</MaxWidth><SettingProfiles><SettingProfile>` +
		`<ColorModes><ColorMode>RGB24</ColorMode></ColorModes><DocumentFormats><DocumentFormat>image/jpeg</DocumentFormat></DocumentFormats>` +
		`<SupportedResolutions><ResolutionRange><XResolution><Min>75</Min><Max>600</Max><Step>25</Step></XResolution>` +
		`<YResolution><Min>75</Min><Max>600</Max></YResolution></ResolutionRange></SupportedResolutions>` +
		`</SettingProfile></SettingProfiles></PlatenInputCaps></Platen></ScannerCapabilities>`))
	f.Add([]byte(`<scan:ScannerCapabilities xmlns:scan="` + NSScan + `" xmlns:pwg="` + NSPWG + `"><scan:Adf><scan:AdfDuplexInputCaps>` +
		`<scan:SettingProfiles><scan:SettingProfile><scan:ColorModes><scan:ColorMode>Grayscale8</scan:ColorMode></scan:ColorModes>` +
		`<scan:DocumentFormats><scan:DocumentFormatExt>application/pdf</scan:DocumentFormatExt></scan:DocumentFormats>` +
		`<scan:SupportedResolutions><scan:DiscreteResolutions><scan:DiscreteResolution><scan:XResolution>300</scan:XResolution>` +
		`<scan:YResolution>300</scan:YResolution></scan:DiscreteResolution></scan:DiscreteResolutions></scan:SupportedResolutions>` +
		`</scan:SettingProfile></scan:SettingProfiles></scan:AdfDuplexInputCaps></scan:Adf></scan:ScannerCapabilities>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCapabilities(b)
		if err != nil {
			return
		}
		if c.Platen == nil && c.ADF == nil {
			t.Fatal("capabilities without a source")
		}
		for _, ic := range []*InputCaps{c.Platen, c.ADF, c.ADFDuplex} {
			if ic == nil {
				continue
			}
			if len(ic.ColorModes) == 0 || len(ic.Formats) == 0 || len(ic.ColorModes) > maxListItems || len(ic.Resolutions) > maxListItems {
				t.Fatalf("source %+v", ic)
			}
			if r := ic.Resolution(300); r <= 0 {
				t.Fatalf("Resolution(300) = %d for %+v", r, ic)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(`<scan:ScannerStatus xmlns:scan="` + NSScan + `" xmlns:pwg="` + NSPWG + `"><pwg:State>Processing</pwg:State>` +
		`<scan:Jobs><scan:JobInfo><pwg:JobUri>/eSCL/ScanJobs/7/</pwg:JobUri><pwg:JobState>Aborted</pwg:JobState>` +
		`<pwg:JobStateReasons><pwg:JobStateReason>AbortedBySystem</pwg:JobStateReason></pwg:JobStateReasons></scan:JobInfo></scan:Jobs></scan:ScannerStatus>`))
	f.Add([]byte(`<ScannerStatus><State>Idle</State><AdfState>ScannerAdfLoaded</AdfState><Jobs><JobInfo><JobUri>/eSCL/ScanJobs/1</JobUri></JobInfo></Jobs></ScannerStatus>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err != nil {
			return
		}
		if s.State == "" || len(s.Jobs) > maxListItems {
			t.Fatalf("%+v", s)
		}
		for _, j := range s.Jobs {
			if s.Job(j.URI) == nil && jobPath(j.URI) != "" {
				t.Fatalf("Job(%q) not found", j.URI)
			}
		}
	})
}
