package ippserver

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// Document formats.
const (
	formatOctetStream = "application/octet-stream"
	formatPDF         = "application/pdf"
	formatPostScript  = "application/postscript"
	formatPCL         = "application/vnd.hp-pcl"
	formatPCLm        = "application/PCLm"
	formatJPEG        = "image/jpeg"
	formatPWG         = "image/pwg-raster"
	formatURF         = "image/urf"
)

// passThrough are the formats the agent forwards as they are, when the
// site's printer supports them. Others (text/plain, vendor formats) are not
// offered.
var passThrough = []string{formatPDF, formatPWG, formatURF, formatJPEG, formatPCLm, formatPostScript, formatPCL}

// capabilities are the attributes mirrored from the site's printer (or the
// built-in set while it is not known): job template -default, -supported
// and -ready attributes, media, document format details, supplies, speed.
type capabilities struct {
	attrs   goipp.Attributes
	byName  map[string]goipp.Values
	formats []string // accepted formats as advertised, without application/octet-stream
	known   bool     // mirrored from the site's printer
	// filled are the attributes the site's printer lacks, filled from the
	// built-in set: their job template attributes are accepted (their only
	// values ask for the printer's default) and not forwarded.
	filled  map[string]bool
	sum     [32]byte  // of attrs, to tell when they change
	changed time.Time // printer-config-change-time

	from    *goipp.TaggedValue // the printer attributes they were built from
	fromLen int
}

// get returns the values of a capability attribute, or nil.
func (c *capabilities) get(name string) goipp.Values {
	return c.byName[name]
}

// format returns the advertised spelling of a supported format.
func (c *capabilities) format(mime string) (string, bool) {
	for _, f := range c.formats {
		if strings.EqualFold(f, mime) {
			return f, true
		}
	}
	return "", false
}

// capsFor returns the capabilities for the printer's status, rebuilt when
// its attributes changed.
func (s *Server) capsFor(ps printq.PrinterStatus) *capabilities {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The queue returns a shallow copy of its attributes: their values are
	// the same until the printer's attributes change.
	var first *goipp.TaggedValue
	if len(ps.Attrs) > 0 && len(ps.Attrs[0].Values) > 0 {
		first = &ps.Attrs[0].Values[0]
	}
	if s.caps != nil && s.caps.from == first && s.caps.fromLen == len(ps.Attrs) {
		return s.caps
	}
	c := buildCaps(ps.Attrs)
	c.from, c.fromLen = first, len(ps.Attrs)
	c.changed = s.started
	if s.caps != nil {
		c.changed = s.caps.changed
		if s.caps.sum != c.sum {
			c.changed = s.now()
		}
	}
	s.caps = c
	return c
}

// buildCaps mirrors the site printer's attributes, or returns the built-in
// set when there are none.
func buildCaps(up goipp.Attributes) *capabilities {
	c := &capabilities{known: len(up) > 0}
	src := up
	if !c.known {
		src = fallback()
	}
	seen := map[string]bool{}
	for _, a := range src {
		if seen[a.Name] || len(a.Values) == 0 || !mirrored(a.Name) {
			continue
		}
		seen[a.Name] = true
		c.attrs.Add(a.DeepCopy())
	}

	// The formats: those of the site's printer that pass through.
	for _, v := range values(src, "document-format-supported") {
		for _, f := range passThrough {
			if strings.EqualFold(v.V.String(), f) && !contains(c.formats, f) {
				c.formats = append(c.formats, f)
			}
		}
	}
	for _, drop := range []struct{ format, prefix string }{
		{formatPWG, "pwg-raster-"}, {formatURF, "urf-"}, {formatJPEG, "jpeg-"},
		{formatPDF, "pdf-"}, {formatPCLm, "pclm-"},
	} {
		if _, ok := c.format(drop.format); !ok {
			c.attrs = without(c.attrs, func(n string) bool { return strings.HasPrefix(n, drop.prefix) })
		}
	}
	if pref := values(c.attrs, "document-format-preferred"); len(pref) > 0 {
		if _, ok := c.format(pref[0].V.String()); !ok {
			c.attrs = without(c.attrs, func(n string) bool { return n == "document-format-preferred" })
		}
	}
	formats := goipp.Attribute{Name: "document-format-supported"}
	formats.Values.Add(goipp.TagMimeType, goipp.String(formatOctetStream))
	for _, f := range c.formats {
		formats.Values.Add(goipp.TagMimeType, goipp.String(f))
	}
	c.attrs.Add(formats)
	c.attrs.Add(goipp.MakeAttr("document-format-default", goipp.TagMimeType, goipp.String(formatOctetStream)))

	// What IPP Everywhere requires and a printer may lack: the built-in
	// values, which ask nothing of the printer beyond its defaults.
	c.filled = map[string]bool{}
	if c.known && !seen["media-col-database"] {
		// Some printers return it only when asked for by name.
		if db := mediaColDatabase(c.attrs); len(db.Values) > 0 {
			c.attrs.Add(db)
		}
	}
	if c.known {
		base := fallback()
		for _, name := range required {
			if !seen[name] {
				c.attrs.Add(values2attr(name, fillValues(base, name)))
				c.filled[name] = true
			}
		}
	}
	if color := values(c.attrs, "color-supported"); len(color) == 0 || color[0].V != goipp.Boolean(true) {
		c.attrs = without(c.attrs, func(n string) bool { return n == "pages-per-minute-color" })
	}

	c.byName = make(map[string]goipp.Values, len(c.attrs))
	for _, a := range c.attrs {
		c.byName[a.Name] = a.Values
	}
	m := goipp.Message{Groups: goipp.Groups{{Tag: goipp.TagPrinterGroup, Attrs: c.attrs}}}
	if data, err := m.EncodeBytes(); err == nil {
		c.sum = sha256.Sum256(data)
	}
	return c
}

// required are the attributes filled from the built-in set when the site's
// printer lacks them.
var required = []string{
	"copies-default", "copies-supported", "finishings-default", "finishings-supported",
	"media-default", "media-supported", "orientation-requested-default", "orientation-requested-supported",
	"output-bin-default", "output-bin-supported", "print-quality-default", "print-quality-supported",
	"printer-resolution-default", "printer-resolution-supported", "sides-default", "sides-supported",
	"print-color-mode-default", "print-color-mode-supported", "pages-per-minute",
	"print-content-optimize-default", "print-content-optimize-supported",
	"print-rendering-intent-default", "print-rendering-intent-supported",
	"print-scaling-default", "print-scaling-supported",
}

// mediaColDatabase derives media-col-database from the printer's sizes
// and margins: each size of media-size-supported, with the largest margins
// (whose printable area every margin setting contains).
func mediaColDatabase(attrs goipp.Attributes) goipp.Attribute {
	db := goipp.Attribute{Name: "media-col-database"}
	var margins goipp.Collection
	for _, side := range []string{"top", "bottom", "left", "right"} {
		name := "media-" + side + "-margin"
		largest := -1
		for _, v := range values(attrs, name+"-supported") {
			if i, ok := v.V.(goipp.Integer); ok && int(i) > largest {
				largest = int(i)
			}
		}
		if largest >= 0 {
			margins = append(margins, goipp.MakeAttr(name, goipp.TagInteger, goipp.Integer(largest)))
		}
	}
	for _, v := range values(attrs, "media-size-supported") {
		size, ok := v.V.(goipp.Collection)
		if !ok {
			continue
		}
		col := goipp.Collection{goipp.MakeAttr("media-size", goipp.TagBeginCollection, size.DeepCopy())}
		col = append(col, margins...)
		db.Values.Add(goipp.TagBeginCollection, col)
	}
	return db
}

// fillValues are the values of a required attribute that the site's
// printer lacks: for X-supported, only X-default (what the printer does
// anyway), unless it is a range.
func fillValues(base goipp.Attributes, name string) goipp.Values {
	v := values(base, name)
	if b, ok := strings.CutSuffix(name, "-supported"); ok && len(v) > 0 && v[0].T != goipp.TagRange {
		if def := values(base, b+"-default"); len(def) > 0 {
			return def
		}
	}
	return v
}

// mirrored tells whether an attribute of the site's printer is mirrored.
func mirrored(name string) bool {
	if mirroredNames[name] {
		return true
	}
	base, suffix := splitSuffix(name)
	if suffix == "" {
		return false
	}
	if _, ok := templateSyntax[base]; ok {
		return true
	}
	// Members of media-col: media-size-supported, media-source-supported...
	return strings.HasPrefix(base, "media-") && (suffix == "-supported" || suffix == "-default")
}

// mirroredNames are mirrored besides the job template attributes.
var mirroredNames = setOf(
	"color-supported", "pages-per-minute", "pages-per-minute-color", "printer-kind",
	"marker-colors", "marker-high-levels", "marker-levels", "marker-low-levels", "marker-names", "marker-types",
	"printer-supply", "printer-supply-description", "printer-input-tray", "printer-output-tray",
	"finishing-template-supported", "job-constraints-supported", "job-resolvers-supported",
	"job-impressions-supported", "job-media-sheets-supported", "landscape-orientation-requested-preferred",
	"document-format-varying-attributes", "document-format-preferred",
	"pwg-raster-document-resolution-supported", "pwg-raster-document-sheet-back", "pwg-raster-document-type-supported",
	"urf-supported", "jpeg-features-supported", "jpeg-k-octets-supported", "jpeg-x-dimension-supported",
	"jpeg-y-dimension-supported", "pdf-k-octets-supported", "pdf-versions-supported", "pdf-fit-to-page-default",
	"pdf-fit-to-page-supported", "pclm-raster-back-side", "pclm-source-resolution-supported",
	"pclm-strip-height-preferred", "pclm-strip-height-supported", "pclm-compression-method-preferred",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// splitSuffix splits "media-col-ready" into "media-col" and "-ready".
func splitSuffix(name string) (base, suffix string) {
	for _, s := range []string{"-default", "-supported", "-ready", "-database"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b, s
		}
	}
	return name, ""
}

// fallback is the built-in capability set: a conservative IPP Everywhere
// printer, A4 first.
func fallback() goipp.Attributes {
	kw := func(name string, vals ...string) goipp.Attribute { return strAttr(name, goipp.TagKeyword, vals...) }
	integer := func(name string, tag goipp.Tag, vals ...int) goipp.Attribute {
		a := goipp.Attribute{Name: name}
		for _, v := range vals {
			a.Values.Add(tag, goipp.Integer(v))
		}
		return a
	}
	res := goipp.Resolution{Xres: 300, Yres: 300, Units: goipp.UnitsDpi}
	size := func(x, y int) goipp.Collection {
		return goipp.Collection{
			goipp.MakeAttr("x-dimension", goipp.TagInteger, goipp.Integer(x)),
			goipp.MakeAttr("y-dimension", goipp.TagInteger, goipp.Integer(y)),
		}
	}
	col := func(x, y int) goipp.Collection {
		return goipp.Collection{
			goipp.MakeAttr("media-size", goipp.TagBeginCollection, size(x, y)),
			goipp.MakeAttr("media-top-margin", goipp.TagInteger, goipp.Integer(423)),
			goipp.MakeAttr("media-bottom-margin", goipp.TagInteger, goipp.Integer(423)),
			goipp.MakeAttr("media-left-margin", goipp.TagInteger, goipp.Integer(423)),
			goipp.MakeAttr("media-right-margin", goipp.TagInteger, goipp.Integer(423)),
			goipp.MakeAttr("media-source", goipp.TagKeyword, goipp.String("auto")),
			goipp.MakeAttr("media-type", goipp.TagKeyword, goipp.String("stationery")),
		}
	}
	a4, letter := col(21000, 29700), col(21590, 27940)
	return goipp.Attributes{
		strAttr("document-format-supported", goipp.TagMimeType, formatPDF, formatJPEG, formatPWG),
		goipp.MakeAttr("color-supported", goipp.TagBoolean, goipp.Boolean(true)),
		integer("pages-per-minute", goipp.TagInteger, 1),
		integer("pages-per-minute-color", goipp.TagInteger, 1),
		integer("copies-default", goipp.TagInteger, 1),
		goipp.MakeAttr("copies-supported", goipp.TagRange, goipp.Range{Lower: 1, Upper: 1}),
		integer("finishings-default", goipp.TagEnum, 3),
		integer("finishings-supported", goipp.TagEnum, 3),
		kw("media-default", "iso_a4_210x297mm"),
		kw("media-ready", "iso_a4_210x297mm"),
		kw("media-supported", "iso_a4_210x297mm", "na_letter_8.5x11in"),
		kw("media-col-supported", "media-size", "media-top-margin", "media-bottom-margin",
			"media-left-margin", "media-right-margin", "media-source", "media-type"),
		goipp.MakeAttr("media-col-default", goipp.TagBeginCollection, a4),
		goipp.MakeAttr("media-col-ready", goipp.TagBeginCollection, a4),
		goipp.MakeAttr("media-col-database", goipp.TagBeginCollection, a4, letter),
		goipp.MakeAttr("media-size-supported", goipp.TagBeginCollection, size(21000, 29700), size(21590, 27940)),
		integer("media-top-margin-supported", goipp.TagInteger, 423),
		integer("media-bottom-margin-supported", goipp.TagInteger, 423),
		integer("media-left-margin-supported", goipp.TagInteger, 423),
		integer("media-right-margin-supported", goipp.TagInteger, 423),
		kw("media-source-supported", "auto"),
		kw("media-type-supported", "stationery"),
		integer("orientation-requested-default", goipp.TagEnum, 3),
		integer("orientation-requested-supported", goipp.TagEnum, 3),
		kw("output-bin-default", "face-down"),
		kw("output-bin-supported", "face-down"),
		goipp.MakeAttr("page-ranges-supported", goipp.TagBoolean, goipp.Boolean(false)),
		kw("print-color-mode-default", "auto"),
		kw("print-color-mode-supported", "auto", "monochrome", "color"),
		kw("print-content-optimize-default", "auto"),
		kw("print-content-optimize-supported", "auto"),
		kw("print-rendering-intent-default", "auto"),
		kw("print-rendering-intent-supported", "auto"),
		kw("print-scaling-default", "auto"),
		kw("print-scaling-supported", "auto"),
		integer("print-quality-default", goipp.TagEnum, 4),
		integer("print-quality-supported", goipp.TagEnum, 4),
		goipp.MakeAttr("printer-resolution-default", goipp.TagResolution, res),
		goipp.MakeAttr("printer-resolution-supported", goipp.TagResolution, res),
		kw("sides-default", "one-sided"),
		kw("sides-supported", "one-sided"),
		goipp.MakeAttr("pwg-raster-document-resolution-supported", goipp.TagResolution, res),
		kw("pwg-raster-document-sheet-back", "normal"),
		kw("pwg-raster-document-type-supported", "sgray_8", "srgb_8"),
	}
}

func strAttr(name string, tag goipp.Tag, vals ...string) goipp.Attribute {
	a := goipp.Attribute{Name: name}
	for _, v := range vals {
		a.Values.Add(tag, goipp.String(v))
	}
	return a
}

// values returns the values of the named attribute, or nil.
func values(attrs goipp.Attributes, name string) goipp.Values {
	for _, a := range attrs {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}

func values2attr(name string, v goipp.Values) goipp.Attribute {
	return goipp.Attribute{Name: name, Values: v.DeepCopy()}
}

// without returns attrs without those whose name matches drop.
func without(attrs goipp.Attributes, drop func(string) bool) goipp.Attributes {
	out := attrs[:0]
	for _, a := range attrs {
		if !drop(a.Name) {
			out = append(out, a)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
