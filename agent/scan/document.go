package scan

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"regexp"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/signintech/gopdf"
)

// A page is one document as a scanner delivered it: a JPEG image, or a PDF
// of one or more pages.
type page struct {
	data   []byte
	format string // FormatJPEG or FormatPDF
	pages  int    // pages it holds: 1 for a JPEG
	width  int    // pixels, for a JPEG
	height int
	// opaque: a PDF whose pages could only be counted by their page
	// objects, which cannot be merged with others.
	opaque bool
}

// pageObject matches a PDF page object, not the page tree's /Pages.
var pageObject = regexp.MustCompile(`/Type\s*/Page(?:[^s]|$)`)

// maxCountedPages bounds the pages counted in a PDF whose structure cannot be read.
const maxCountedPages = 10000

// sniff identifies a document by its content, whatever the scanner said
// it is, and checks it against the limits.
func sniff(data []byte, maxPixels int64) (page, error) {
	p := page{data: data}
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return p, fmt.Errorf("page is not a readable JPEG: %w", err)
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return p, errors.New("JPEG page without dimensions")
		}
		if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
			return p, &Error{Reason: TooLarge, Err: fmt.Errorf("page of %d×%d pixels, more than %d", cfg.Width, cfg.Height, maxPixels)}
		}
		p.format, p.pages, p.width, p.height = FormatJPEG, 1, cfg.Width, cfg.Height
	case bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")):
		n, err := pdfPages(data)
		if err != nil {
			// A PDF the reader cannot take apart can still be passed on
			// whole, when it is the only document of the job.
			if n = len(pageObject.FindAllIndex(data, maxCountedPages)); n == 0 {
				return p, fmt.Errorf("page is not a readable PDF: %w", err)
			}
			p.opaque = true
		}
		if n < 1 {
			return p, errors.New("PDF without pages")
		}
		p.format, p.pages = FormatPDF, n
	default:
		return p, fmt.Errorf("page is neither JPEG nor PDF (starts with %q)", data[:min(len(data), 8)])
	}
	return p, nil
}

// pdfPages counts the pages of a PDF, with pdfcpu: it reads the damaged
// documents devices send without hanging, and returns errors for those it
// cannot read.
func pdfPages(data []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("%v", r)
		}
	}()
	return api.PageCount(bytes.NewReader(data), pdfConfig())
}

// pdfConfig is pdfcpu's configuration: no configuration directory (pdfcpu
// would otherwise create one in the user's home, and exit the process if
// it cannot), no network, relaxed validation as scanners need.
func pdfConfig() *model.Configuration {
	pdfcpuOnce.Do(api.DisableConfigDir)
	conf := model.NewDefaultConfiguration()
	conf.Offline = true
	conf.ValidationMode = model.ValidationRelaxed
	return conf
}

var pdfcpuOnce sync.Once

// writeDocument writes the pages as one document: the scanner's own
// document when there is only one and it is of the format wanted, or else
// one PDF with every page, JPEG pages embedded as they are (not
// re-encoded) at their resolution. It returns the format written.
func writeDocument(w io.Writer, pages []page, want string, dpi int) (string, int64, error) {
	cw := &countWriter{w: w}
	if len(pages) == 1 && (pages[0].format == FormatPDF || want == FormatJPEG) {
		_, err := cw.Write(pages[0].data)
		return pages[0].format, cw.n, err
	}
	doc, err := buildPDF(pages, dpi)
	if err != nil {
		return "", 0, err
	}
	_, err = cw.Write(doc)
	return FormatPDF, cw.n, err
}

// buildPDF assembles the pages into one PDF: runs of JPEG pages become PDF
// pages of their size at dpi, embedded as they are (not re-encoded), and
// PDF documents are merged with them in order. It is built in memory
// before anything is written, so that a failure leaves nothing half
// written.
func buildPDF(pages []page, dpi int) ([]byte, error) {
	var parts [][]byte
	var run []page
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		doc, err := jpegPDF(run, dpi)
		if err != nil {
			return err
		}
		parts, run = append(parts, doc), nil
		return nil
	}
	for i, p := range pages {
		switch {
		case p.format == FormatJPEG:
			run = append(run, p)
		case p.format == FormatPDF && p.opaque:
			return nil, fmt.Errorf("document %d: a PDF that cannot be read cannot be merged", i+1)
		case p.format == FormatPDF:
			if err := flush(); err != nil {
				return nil, err
			}
			parts = append(parts, p.data)
		default:
			return nil, fmt.Errorf("page %d: format %q", i+1, p.format)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	switch len(parts) {
	case 0:
		return nil, errors.New("no page")
	case 1:
		return parts[0], nil
	}
	return mergePDF(parts)
}

// jpegPDF makes a PDF of JPEG pages.
func jpegPDF(pages []page, dpi int) (doc []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("assembling the PDF: %v", r)
		}
	}()
	if dpi <= 0 {
		dpi = DefaultResolution
	}
	var pdf gopdf.GoPdf
	pdf.Start(gopdf.Config{Unit: gopdf.UnitPT, PageSize: *gopdf.PageSizeA4})
	pdf.SetInfo(gopdf.PdfInfo{Producer: "Relais", Creator: "Relais scan"})
	for i, p := range pages {
		size := &gopdf.Rect{W: float64(p.width) * 72 / float64(dpi), H: float64(p.height) * 72 / float64(dpi)}
		pdf.AddPageWithOption(gopdf.PageOption{PageSize: size})
		img, err := gopdf.ImageHolderByBytes(p.data)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", i+1, err)
		}
		if err := pdf.ImageByHolder(img, 0, 0, size); err != nil {
			return nil, fmt.Errorf("page %d: %w", i+1, err)
		}
	}
	var b bytes.Buffer
	if err := pdf.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mergePDF merges PDF documents, in order, with pdfcpu.
func mergePDF(parts [][]byte) (doc []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("merging the PDF documents: %v", r)
		}
	}()
	rs := make([]io.ReadSeeker, len(parts))
	for i, p := range parts {
		rs[i] = bytes.NewReader(p)
	}
	var b bytes.Buffer
	if err := api.MergeRaw(rs, &b, false, pdfConfig()); err != nil {
		return nil, fmt.Errorf("merging the PDF documents: %w", err)
	}
	return b.Bytes(), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
