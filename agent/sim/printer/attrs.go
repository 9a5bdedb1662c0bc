package printer

import (
	"fmt"
	"io"
	"os"

	"github.com/OpenPrinting/goipp"
)

// MaxAttributesFileBytes bounds a Get-Printer-Attributes response file;
// a real printer's full set is around 100 KiB.
const MaxAttributesFileBytes = 8 << 20

// LoadAttributes reads a raw IPP Get-Printer-Attributes response, as a
// real device sent it, and returns its printer attributes.
func LoadAttributes(path string) (goipp.Attributes, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAttributesFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxAttributesFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxAttributesFileBytes)
	}
	var m goipp.Message
	if err := m.DecodeBytesEx(data, goipp.DecoderOptions{EnableWorkarounds: true}); err != nil {
		return nil, fmt.Errorf("%s: not an IPP message: %v", path, err)
	}
	if st := goipp.Status(m.Code); st > goipp.StatusOkEventsComplete {
		return nil, fmt.Errorf("%s: an IPP response with status %v, not printer attributes", path, st)
	}
	if len(m.Printer) == 0 {
		return nil, fmt.Errorf("%s: no printer attributes", path)
	}
	if len(find(m.Printer, "document-format-supported")) == 0 {
		return nil, fmt.Errorf("%s: no document-format-supported", path)
	}
	return m.Printer, nil
}

// computed are the printer attributes the simulator makes per request
// (see Printer.printerAttributes), or its own in place of a device's.
var computed = map[string]bool{
	"printer-uri-supported":            true,
	"uri-security-supported":           true,
	"uri-authentication-supported":     true,
	"printer-uuid":                     true,
	"device-uuid":                      true,
	"printer-state":                    true,
	"printer-state-reasons":            true,
	"printer-state-message":            true,
	"printer-is-accepting-jobs":        true,
	"queued-job-count":                 true,
	"printer-up-time":                  true,
	"printer-current-time":             true,
	"printer-state-change-time":        true,
	"printer-state-change-date-time":   true,
	"printer-config-change-time":       true,
	"printer-config-change-date-time":  true,
	"operations-supported":             true,
	"compression-supported":            true,
	"multiple-document-jobs-supported": true,
	"which-jobs-supported":             true,
	"job-ids-supported":                true,
	"printer-name":                     true,
	"printer-dns-sd-name":              true,
	"printer-alert":                    true,
	"printer-alert-description":        true,
}

// replayed turns a device's attributes into the simulator's: the device's
// capabilities, with the simulator's name, operations, state and
// addresses in place of the device's.
func replayed(device goipp.Attributes, name string) goipp.Attributes {
	attrs := goipp.Attributes{}
	for _, a := range device {
		if !computed[a.Name] {
			attrs.Add(a.DeepCopy())
		}
	}
	return append(attrs, common(name)...)
}

// common are the attributes every simulated printer has, replayed or not.
func common(name string) goipp.Attributes {
	ops := []goipp.Op{goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument,
		goipp.OpCancelJob, goipp.OpGetJobAttributes, goipp.OpGetJobs, goipp.OpGetPrinterAttributes}
	opVals := make([]goipp.Value, len(ops))
	for i, op := range ops {
		opVals[i] = goipp.Integer(op)
	}
	return goipp.Attributes{
		goipp.MakeAttr("printer-name", goipp.TagName, goipp.String(name)),
		goipp.MakeAttr("printer-dns-sd-name", goipp.TagName, goipp.String(name)),
		goipp.MakeAttr("operations-supported", goipp.TagEnum, opVals[0], opVals[1:]...),
		goipp.MakeAttr("compression-supported", goipp.TagKeyword, goipp.String("none"), goipp.String("gzip")),
		goipp.MakeAttr("multiple-document-jobs-supported", goipp.TagBoolean, goipp.Boolean(false)),
		goipp.MakeAttr("which-jobs-supported", goipp.TagKeyword, goipp.String("completed"), goipp.String("not-completed")),
		goipp.MakeAttr("job-ids-supported", goipp.TagBoolean, goipp.Boolean(true)),
	}
}

// builtin is the simulator's own attribute set: a monochrome A4 IPP
// Everywhere printer with duplex, taking PDF, PWG raster, Apple raster and
// JPEG.
func builtin(name string) goipp.Attributes {
	kw := func(n string, v ...string) goipp.Attribute { return strAttr(n, goipp.TagKeyword, v...) }
	integer := func(n string, tag goipp.Tag, v ...int) goipp.Attribute {
		vals := make([]goipp.Value, len(v))
		for i, x := range v {
			vals[i] = goipp.Integer(x)
		}
		return goipp.MakeAttr(n, tag, vals[0], vals[1:]...)
	}
	res := func(n string, dpi ...int) goipp.Attribute {
		vals := make([]goipp.Value, len(dpi))
		for i, d := range dpi {
			vals[i] = goipp.Resolution{Xres: d, Yres: d, Units: goipp.UnitsDpi}
		}
		return goipp.MakeAttr(n, goipp.TagResolution, vals[0], vals[1:]...)
	}
	sizes := []struct {
		name string
		x, y int
	}{{"iso_a4_210x297mm", 21000, 29700}, {"iso_a5_148x210mm", 14800, 21000}, {"na_letter_8.5x11in", 21590, 27940}}
	size := func(x, y int) goipp.Collection {
		return goipp.Collection{
			goipp.MakeAttr("x-dimension", goipp.TagInteger, goipp.Integer(x)),
			goipp.MakeAttr("y-dimension", goipp.TagInteger, goipp.Integer(y)),
		}
	}
	col := func(name string, x, y int) goipp.Collection {
		c := goipp.Collection{
			goipp.MakeAttr("media-size", goipp.TagBeginCollection, size(x, y)),
			goipp.MakeAttr("media-size-name", goipp.TagKeyword, goipp.String(name)),
		}
		for _, m := range []string{"media-bottom-margin", "media-left-margin", "media-right-margin", "media-top-margin"} {
			c = append(c, goipp.MakeAttr(m, goipp.TagInteger, goipp.Integer(423)))
		}
		return append(c,
			goipp.MakeAttr("media-source", goipp.TagKeyword, goipp.String("tray-1")),
			goipp.MakeAttr("media-type", goipp.TagKeyword, goipp.String("stationery")))
	}
	var names []string
	var sizeVals, dbVals []goipp.Value
	for _, s := range sizes {
		names = append(names, s.name)
		sizeVals = append(sizeVals, size(s.x, s.y))
		dbVals = append(dbVals, col(s.name, s.x, s.y))
	}
	a4 := col(sizes[0].name, sizes[0].x, sizes[0].y)
	attrs := goipp.Attributes{
		strAttr("charset-configured", goipp.TagCharset, "utf-8"),
		strAttr("charset-supported", goipp.TagCharset, "utf-8", "us-ascii"),
		goipp.MakeAttr("color-supported", goipp.TagBoolean, goipp.Boolean(false)),
		integer("copies-default", goipp.TagInteger, 1),
		goipp.MakeAttr("copies-supported", goipp.TagRange, goipp.Range{Lower: 1, Upper: 99}),
		strAttr("document-format-default", goipp.TagMimeType, "application/octet-stream"),
		strAttr("document-format-supported", goipp.TagMimeType,
			"application/octet-stream", "application/pdf", "image/pwg-raster", "image/urf", "image/jpeg"),
		integer("finishings-default", goipp.TagEnum, 3),
		integer("finishings-supported", goipp.TagEnum, 3),
		strAttr("generated-natural-language-supported", goipp.TagLanguage, "en", "fr"),
		kw("ipp-features-supported", "ipp-everywhere"),
		kw("ipp-versions-supported", "1.0", "1.1", "2.0"),
		kw("job-creation-attributes-supported", "copies", "finishings", "media", "media-col",
			"orientation-requested", "output-bin", "print-color-mode", "print-quality", "printer-resolution", "sides"),
		goipp.MakeAttr("job-impressions-supported", goipp.TagRange, goipp.Range{Lower: 1, Upper: 100000}),
		goipp.MakeAttr("job-k-octets-supported", goipp.TagRange, goipp.Range{Lower: 0, Upper: DefaultMaxDocumentBytes >> 10}),
		goipp.MakeAttr("job-media-sheets-supported", goipp.TagRange, goipp.Range{Lower: 1, Upper: 100000}),
		kw("job-sheets-default", "none"),
		kw("job-sheets-supported", "none"),
		strAttr("marker-colors", goipp.TagName, "#000000"),
		integer("marker-high-levels", goipp.TagInteger, 100),
		integer("marker-levels", goipp.TagInteger, 80),
		integer("marker-low-levels", goipp.TagInteger, 10),
		strAttr("marker-names", goipp.TagName, "Black Toner"),
		kw("marker-types", "toner"),
		goipp.MakeAttr("media-col-database", goipp.TagBeginCollection, dbVals[0], dbVals[1:]...),
		goipp.MakeAttr("media-col-default", goipp.TagBeginCollection, a4),
		goipp.MakeAttr("media-col-ready", goipp.TagBeginCollection, a4),
		kw("media-col-supported", "media-bottom-margin", "media-left-margin", "media-right-margin",
			"media-size", "media-size-name", "media-source", "media-top-margin", "media-type"),
		kw("media-default", sizes[0].name),
		kw("media-ready", sizes[0].name),
		kw("media-supported", names...),
		goipp.MakeAttr("media-size-supported", goipp.TagBeginCollection, sizeVals[0], sizeVals[1:]...),
		integer("media-bottom-margin-supported", goipp.TagInteger, 423),
		integer("media-left-margin-supported", goipp.TagInteger, 423),
		integer("media-right-margin-supported", goipp.TagInteger, 423),
		integer("media-top-margin-supported", goipp.TagInteger, 423),
		kw("media-source-supported", "auto", "tray-1"),
		kw("media-type-supported", "stationery"),
		integer("multiple-operation-time-out", goipp.TagInteger, 60),
		strAttr("natural-language-configured", goipp.TagLanguage, "en"),
		integer("orientation-requested-default", goipp.TagEnum, 3),
		integer("orientation-requested-supported", goipp.TagEnum, 3, 4, 5, 6),
		kw("output-bin-default", "face-down"),
		kw("output-bin-supported", "face-down"),
		integer("pages-per-minute", goipp.TagInteger, 20),
		kw("pdf-versions-supported", "adobe-1.3", "adobe-1.4", "adobe-1.5", "adobe-1.6", "adobe-1.7", "iso-32000-1_2008"),
		kw("pdl-override-supported", "attempted"),
		kw("print-color-mode-default", "monochrome"),
		kw("print-color-mode-supported", "auto", "monochrome"),
		integer("print-quality-default", goipp.TagEnum, 4),
		integer("print-quality-supported", goipp.TagEnum, 3, 4, 5),
		strAttr("printer-device-id", goipp.TagText, "MFG:Relais;MDL:Simulated Printer;CMD:PDF,PWGRaster,URF,JPEG;"),
		strAttr("printer-info", goipp.TagText, name),
		kw("printer-kind", "document"),
		strAttr("printer-location", goipp.TagText, ""),
		strAttr("printer-make-and-model", goipp.TagText, "Relais Simulated Printer"),
		strAttr("printer-more-info", goipp.TagURI, "http://localhost/"),
		res("printer-resolution-default", 600),
		res("printer-resolution-supported", 300, 600),
		res("pwg-raster-document-resolution-supported", 300, 600),
		kw("pwg-raster-document-sheet-back", "normal"),
		kw("pwg-raster-document-type-supported", "black_1", "sgray_8"),
		kw("sides-default", "one-sided"),
		kw("sides-supported", "one-sided", "two-sided-long-edge", "two-sided-short-edge"),
		kw("urf-supported", "V1.4", "CP1", "DM1", "IS1", "MT1-3", "PQ3-4-5", "RS300-600", "SRGB24", "W8"),
	}
	return append(attrs, common(name)...)
}

func strAttr(name string, tag goipp.Tag, v ...string) goipp.Attribute {
	vals := make([]goipp.Value, len(v))
	for i, s := range v {
		vals[i] = goipp.String(s)
	}
	return goipp.MakeAttr(name, tag, vals[0], vals[1:]...)
}
