package scan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// eSCL's XML namespaces. Documents are read by namespace URI, never by
// prefix, and elements are matched by local name in either namespace or in
// none: devices put pwg: elements under scan: parents and the reverse, and
// some omit prefixes or namespaces altogether. Documents sent are written
// with the pwg: and scan: prefixes bound explicitly, as devices that read
// XML naively expect.
const (
	NSScan = "http://schemas.hp.com/imaging/escl/2011/05/03"
	NSPWG  = "http://www.pwg.org/schemas/2010/12/sm"
)

// maxListItems bounds each list read from a device (colour modes, formats,
// resolutions, jobs).
const maxListItems = 64

// Capabilities are an eSCL scanner's ScannerCapabilities, as far as Relais
// uses them. Sizes are in 1/300 inch.
type Capabilities struct {
	Version        string
	MakeAndModel   string
	SerialNumber   string
	UUID           string
	Platen         *InputCaps // nil without a glass
	ADF            *InputCaps // the feeder, one side; nil without a feeder
	ADFDuplex      *InputCaps // the feeder, both sides; nil if it cannot
	FeederCapacity int
	ADFOptions     []string // such as DetectPaperLoaded, Duplex
}

// InputCaps are what one source can do.
type InputCaps struct {
	MinWidth, MaxWidth, MinHeight, MaxHeight int
	ColorModes                               []string // RGB24, Grayscale8, BlackAndWhite1
	// Formats are the MIME types of pwg:DocumentFormat and
	// scan:DocumentFormatExt.
	Formats []string
	// FormatExt says the device lists scan:DocumentFormatExt, which a scan
	// request then carries too.
	FormatExt bool
	// Resolutions are the discrete resolutions (X = Y), ascending.
	Resolutions []int
	// A resolution range, when the device gives one instead (Step 0: any).
	MinResolution, MaxResolution, ResolutionStep int
}

// HasColorMode reports whether the source offers an eSCL colour mode.
func (ic *InputCaps) HasColorMode(m string) bool { return slices.Contains(ic.ColorModes, m) }

// HasFormat reports whether the source offers a MIME type.
func (ic *InputCaps) HasFormat(f string) bool { return slices.Contains(ic.Formats, f) }

// Resolution returns the offered resolution nearest to want (the higher of
// two as near).
func (ic *InputCaps) Resolution(want int) int {
	best := 0
	better := func(r int) bool {
		if best == 0 {
			return true
		}
		d, bd := abs(r-want), abs(best-want)
		return d < bd || d == bd && r > best
	}
	for _, r := range ic.Resolutions {
		if better(r) {
			best = r
		}
	}
	if ic.MaxResolution > 0 {
		r := min(max(want, ic.MinResolution), ic.MaxResolution)
		if s := ic.ResolutionStep; s > 1 {
			r = ic.MinResolution + (r-ic.MinResolution+s/2)/s*s
			if r > ic.MaxResolution {
				r -= s
			}
		}
		if better(r) {
			best = r
		}
	}
	return best
}

// SupportsResolution reports whether the source offers exactly r dpi.
func (ic *InputCaps) SupportsResolution(r int) bool {
	return r > 0 && ic.Resolution(r) == r
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// The XML as devices write it. Fields name local names only, so that they
// match in any namespace.
type xmlCapabilities struct {
	XMLName      xml.Name
	Version      string        `xml:"Version"`
	MakeAndModel string        `xml:"MakeAndModel"`
	SerialNumber string        `xml:"SerialNumber"`
	UUID         string        `xml:"UUID"`
	Platen       *xmlInputCaps `xml:"Platen>PlatenInputCaps"`
	ADFSimplex   *xmlInputCaps `xml:"Adf>AdfSimplexInputCaps"`
	ADFDuplex    *xmlInputCaps `xml:"Adf>AdfDuplexInputCaps"`
	Capacity     string        `xml:"Adf>FeederCapacity"`
	ADFOptions   []string      `xml:"Adf>AdfOptions>AdfOption"`
}

type xmlInputCaps struct {
	MinWidth  string       `xml:"MinWidth"`
	MaxWidth  string       `xml:"MaxWidth"`
	MinHeight string       `xml:"MinHeight"`
	MaxHeight string       `xml:"MaxHeight"`
	Profiles  []xmlProfile `xml:"SettingProfiles>SettingProfile"`
}

type xmlProfile struct {
	ColorModes []string `xml:"ColorModes>ColorMode"`
	Formats    []string `xml:"DocumentFormats>DocumentFormat"`
	FormatsExt []string `xml:"DocumentFormats>DocumentFormatExt"`
	Discrete   []struct {
		X string `xml:"XResolution"`
		Y string `xml:"YResolution"`
	} `xml:"SupportedResolutions>DiscreteResolutions>DiscreteResolution"`
	Ranges []struct {
		X xmlRange `xml:"XResolution"`
		Y xmlRange `xml:"YResolution"`
	} `xml:"SupportedResolutions>ResolutionRange"`
}

type xmlRange struct {
	Min  string `xml:"Min"`
	Max  string `xml:"Max"`
	Step string `xml:"Step"`
}

// number reads a non-negative decimal of at most 9 digits; anything else
// (empty, garbage, negative) is 0, as an absent value.
func number(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 999_999_999 {
		return 0
	}
	return n
}

// readXML reads at most MaxXMLBytes of a device's answer.
func readXML(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxXMLBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxXMLBytes {
		return nil, fmt.Errorf("XML document larger than %d bytes", MaxXMLBytes)
	}
	return b, nil
}

// decodeXML decodes an eSCL document whose root element has the local name
// root, in the eSCL namespace, the PWG one, or none.
func decodeXML(b []byte, root string, v any) error {
	if len(b) > MaxXMLBytes {
		return fmt.Errorf("XML document larger than %d bytes", MaxXMLBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// Devices declare UTF-8 or nothing; a few say ISO-8859-1 or
	// us-ascii for what is ASCII in practice.
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported XML charset %q", charset)
	}
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("no XML element")
			}
			return fmt.Errorf("XML: %w", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s
			break
		}
	}
	if start.Name.Local != root {
		return fmt.Errorf("XML: root element is %s, want %s", start.Name.Local, root)
	}
	switch start.Name.Space {
	case NSScan, NSPWG, "":
	default:
		return fmt.Errorf("XML: %s in namespace %q, not eSCL's", root, start.Name.Space)
	}
	if err := d.DecodeElement(v, &start); err != nil {
		return fmt.Errorf("XML: %w", err)
	}
	return nil
}

// ParseCapabilities parses an eSCL ScannerCapabilities document. A source
// lacking colour modes, formats or resolutions is left out; a document
// with no usable source is an error.
func ParseCapabilities(b []byte) (*Capabilities, error) {
	var x xmlCapabilities
	if err := decodeXML(b, "ScannerCapabilities", &x); err != nil {
		return nil, err
	}
	c := &Capabilities{
		Version:        strings.TrimSpace(x.Version),
		MakeAndModel:   strings.TrimSpace(x.MakeAndModel),
		SerialNumber:   strings.TrimSpace(x.SerialNumber),
		UUID:           strings.TrimSpace(x.UUID),
		FeederCapacity: number(x.Capacity),
		ADFOptions:     cleanList(x.ADFOptions),
	}
	var why []string
	for _, s := range []struct {
		name string
		x    *xmlInputCaps
		dst  **InputCaps
	}{{"platen", x.Platen, &c.Platen}, {"feeder", x.ADFSimplex, &c.ADF}, {"duplex feeder", x.ADFDuplex, &c.ADFDuplex}} {
		if s.x == nil {
			continue
		}
		ic, err := s.x.parse()
		if err != nil {
			why = append(why, s.name+": "+err.Error())
			continue
		}
		*s.dst = ic
	}
	if c.ADF == nil && c.ADFDuplex != nil {
		// A feeder that lists duplex only scans one side too.
		c.ADF = c.ADFDuplex
	}
	if c.Platen == nil && c.ADF == nil {
		if len(why) > 0 {
			return nil, fmt.Errorf("no usable scan source (%s)", strings.Join(why, "; "))
		}
		return nil, errors.New("neither a platen nor a feeder")
	}
	return c, nil
}

func (x *xmlInputCaps) parse() (*InputCaps, error) {
	ic := &InputCaps{
		MinWidth: number(x.MinWidth), MaxWidth: number(x.MaxWidth),
		MinHeight: number(x.MinHeight), MaxHeight: number(x.MaxHeight),
	}
	var modes, formats []string
	var res []int
	for _, p := range x.Profiles {
		modes = append(modes, p.ColorModes...)
		formats = append(formats, p.Formats...)
		formats = append(formats, p.FormatsExt...)
		if len(p.FormatsExt) > 0 {
			ic.FormatExt = true
		}
		for _, d := range p.Discrete {
			if rx, ry := number(d.X), number(d.Y); rx > 0 && rx == ry && len(res) < maxListItems {
				res = append(res, rx)
			}
		}
		for _, r := range p.Ranges {
			lo, hi := max(number(r.X.Min), number(r.Y.Min)), min(number(r.X.Max), number(r.Y.Max))
			if lo > 0 && lo <= hi {
				ic.MinResolution, ic.MaxResolution = lo, hi
				ic.ResolutionStep = max(number(r.X.Step), number(r.Y.Step))
			}
		}
	}
	ic.ColorModes = cleanList(modes)
	for i, f := range formats {
		formats[i] = strings.ToLower(f)
	}
	ic.Formats = cleanList(formats)
	slices.Sort(res)
	ic.Resolutions = slices.Compact(res)
	switch {
	case len(ic.ColorModes) == 0:
		return nil, errors.New("no colour mode")
	case len(ic.Formats) == 0:
		return nil, errors.New("no document format")
	case len(ic.Resolutions) == 0 && ic.MaxResolution == 0:
		return nil, errors.New("no resolution")
	case ic.MaxWidth > 0 && ic.MinWidth > ic.MaxWidth, ic.MaxHeight > 0 && ic.MinHeight > ic.MaxHeight:
		return nil, errors.New("minimum size above the maximum")
	}
	return ic, nil
}

// cleanList trims, drops empty values and duplicates, and keeps at most
// maxListItems.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) && len(out) < maxListItems {
			out = append(out, s)
		}
	}
	return out
}

// ScannerStatus is an eSCL ScannerStatus document.
type ScannerStatus struct {
	Version  string
	State    string // Idle, Processing, Testing, Stopped, Down
	ADFState string // ScannerAdfLoaded, ScannerAdfEmpty, ScannerAdfJam, ...; "" if absent
	Jobs     []JobInfo
}

// JobInfo is one job in a ScannerStatus.
type JobInfo struct {
	URI              string
	UUID             string
	Age              int
	ImagesCompleted  int
	ImagesToTransfer int
	State            string   // Pending, Processing, Completed, Canceled, Aborted
	Reasons          []string // such as JobCompletedSuccessfully
}

type xmlStatus struct {
	XMLName  xml.Name
	Version  string `xml:"Version"`
	State    string `xml:"State"`
	ADFState string `xml:"AdfState"`
	Jobs     []struct {
		URI              string   `xml:"JobUri"`
		UUID             string   `xml:"JobUuid"`
		Age              string   `xml:"Age"`
		ImagesCompleted  string   `xml:"ImagesCompleted"`
		ImagesToTransfer string   `xml:"ImagesToTransfer"`
		State            string   `xml:"JobState"`
		Reasons          []string `xml:"JobStateReasons>JobStateReason"`
	} `xml:"Jobs>JobInfo"`
}

// ParseStatus parses an eSCL ScannerStatus document.
func ParseStatus(b []byte) (*ScannerStatus, error) {
	var x xmlStatus
	if err := decodeXML(b, "ScannerStatus", &x); err != nil {
		return nil, err
	}
	s := &ScannerStatus{
		Version:  strings.TrimSpace(x.Version),
		State:    strings.TrimSpace(x.State),
		ADFState: strings.TrimSpace(x.ADFState),
	}
	if s.State == "" {
		return nil, errors.New("ScannerStatus without a State")
	}
	for _, j := range x.Jobs {
		if len(s.Jobs) == maxListItems {
			break
		}
		s.Jobs = append(s.Jobs, JobInfo{
			URI: strings.TrimSpace(j.URI), UUID: strings.TrimSpace(j.UUID),
			Age: number(j.Age), ImagesCompleted: number(j.ImagesCompleted),
			ImagesToTransfer: number(j.ImagesToTransfer),
			State:            strings.TrimSpace(j.State), Reasons: cleanList(j.Reasons),
		})
	}
	return s, nil
}

// Job returns the job whose JobUri names the same path as uri (an
// absolute URL or a path, with or without a trailing slash), or nil.
func (s *ScannerStatus) Job(uri string) *JobInfo {
	want := jobPath(uri)
	for i := range s.Jobs {
		if want != "" && jobPath(s.Jobs[i].URI) == want {
			return &s.Jobs[i]
		}
	}
	return nil
}

func jobPath(s string) string {
	if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
		s = u.Path
	}
	return strings.TrimRight(s, "/")
}

// Settings are an eSCL ScanSettings request. Sizes are in 1/300 inch.
type Settings struct {
	Version                         string // default "2.0"
	Source                          string // Platen or Feeder
	Duplex                          bool
	ColorMode                       string // RGB24, Grayscale8
	Format                          string // MIME type
	FormatExt                       bool   // also send scan:DocumentFormatExt
	XResolution, YResolution        int
	XOffset, YOffset, Width, Height int
}

// XML returns the ScanSettings document, with explicit pwg: and scan:
// prefixes.
func (s Settings) XML() []byte {
	var b bytes.Buffer
	esc := func(v string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(v))
		return e.String()
	}
	version := s.Version
	if version == "" {
		version = "2.0"
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<scan:ScanSettings xmlns:scan="%s" xmlns:pwg="%s">`+
		`<pwg:Version>%s</pwg:Version>`+
		`<pwg:ScanRegions><pwg:ScanRegion>`+
		`<pwg:ContentRegionUnits>escl:ThreeHundredthsOfInches</pwg:ContentRegionUnits>`+
		`<pwg:XOffset>%d</pwg:XOffset><pwg:YOffset>%d</pwg:YOffset>`+
		`<pwg:Width>%d</pwg:Width><pwg:Height>%d</pwg:Height>`+
		`</pwg:ScanRegion></pwg:ScanRegions>`+
		`<pwg:InputSource>%s</pwg:InputSource>`+
		`<scan:ColorMode>%s</scan:ColorMode>`+
		`<pwg:DocumentFormat>%s</pwg:DocumentFormat>`,
		NSScan, NSPWG, esc(version), s.XOffset, s.YOffset, s.Width, s.Height,
		esc(s.Source), esc(s.ColorMode), esc(s.Format))
	if s.FormatExt {
		fmt.Fprintf(&b, `<scan:DocumentFormatExt>%s</scan:DocumentFormatExt>`, esc(s.Format))
	}
	fmt.Fprintf(&b, `<scan:XResolution>%d</scan:XResolution><scan:YResolution>%d</scan:YResolution>`,
		s.XResolution, s.YResolution)
	if s.Source == "Feeder" {
		fmt.Fprintf(&b, `<scan:Duplex>%t</scan:Duplex>`, s.Duplex)
	}
	b.WriteString("</scan:ScanSettings>\n")
	return b.Bytes()
}

type xmlSettings struct {
	XMLName     xml.Name
	Version     string   `xml:"Version"`
	InputSource []string `xml:"InputSource"` // pwg: or scan:, as clients differ
	Duplex      string   `xml:"Duplex"`
	ColorMode   string   `xml:"ColorMode"`
	Format      string   `xml:"DocumentFormat"`
	FormatExt   string   `xml:"DocumentFormatExt"`
	XResolution string   `xml:"XResolution"`
	YResolution string   `xml:"YResolution"`
	Regions     []struct {
		Units   string `xml:"ContentRegionUnits"`
		XOffset string `xml:"XOffset"`
		YOffset string `xml:"YOffset"`
		Width   string `xml:"Width"`
		Height  string `xml:"Height"`
	} `xml:"ScanRegions>ScanRegion"`
}

// ParseSettings parses a ScanSettings request, as a scanner does. The
// scan:DocumentFormatExt wins over pwg:DocumentFormat; an absent region is
// left zero.
func ParseSettings(b []byte) (Settings, error) {
	var x xmlSettings
	if err := decodeXML(b, "ScanSettings", &x); err != nil {
		return Settings{}, err
	}
	s := Settings{
		Version:     strings.TrimSpace(x.Version),
		ColorMode:   strings.TrimSpace(x.ColorMode),
		Format:      strings.ToLower(strings.TrimSpace(x.Format)),
		XResolution: number(x.XResolution),
		YResolution: number(x.YResolution),
	}
	for _, src := range x.InputSource {
		if src = strings.TrimSpace(src); src != "" {
			s.Source = src
		}
	}
	if f := strings.ToLower(strings.TrimSpace(x.FormatExt)); f != "" {
		s.Format, s.FormatExt = f, true
	}
	switch strings.ToLower(strings.TrimSpace(x.Duplex)) {
	case "true", "1":
		s.Duplex = true
	}
	if len(x.Regions) > 0 {
		r := x.Regions[0]
		if u := strings.TrimSpace(r.Units); u != "" && !strings.HasSuffix(u, "ThreeHundredthsOfInches") {
			return s, fmt.Errorf("unsupported ContentRegionUnits %q", u)
		}
		s.XOffset, s.YOffset = number(r.XOffset), number(r.YOffset)
		s.Width, s.Height = number(r.Width), number(r.Height)
	}
	return s, nil
}
