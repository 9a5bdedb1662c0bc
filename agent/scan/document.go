package scan

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"

	"github.com/phpdave11/gofpdi"
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
}

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
			return p, fmt.Errorf("page is not a readable PDF: %w", err)
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

// pdfPages counts the pages of a PDF. The PDF reader panics on documents it
// cannot read: that is an error here.
func pdfPages(data []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("%v", r)
		}
	}()
	imp := gofpdi.NewImporter()
	rs := io.ReadSeeker(bytes.NewReader(data))
	imp.SetSourceStream(&rs)
	return imp.GetNumPages(), nil
}

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

// buildPDF assembles the pages into one PDF. It is built in memory before
// anything is written, so that a failure leaves nothing half written.
func buildPDF(pages []page, dpi int) (doc []byte, err error) {
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
	// The PDF reader tells sources apart by the address of the
	// io.ReadSeeker it is given: keep them all alive until the end.
	var sources []*io.ReadSeeker
	for i, p := range pages {
		switch p.format {
		case FormatJPEG:
			wpt := float64(p.width) * 72 / float64(dpi)
			hpt := float64(p.height) * 72 / float64(dpi)
			size := &gopdf.Rect{W: wpt, H: hpt}
			pdf.AddPageWithOption(gopdf.PageOption{PageSize: size})
			img, err := gopdf.ImageHolderByBytes(p.data)
			if err != nil {
				return nil, fmt.Errorf("page %d: %w", i+1, err)
			}
			if err := pdf.ImageByHolder(img, 0, 0, size); err != nil {
				return nil, fmt.Errorf("page %d: %w", i+1, err)
			}
		case FormatPDF:
			rs := io.ReadSeeker(bytes.NewReader(p.data))
			sources = append(sources, &rs)
			if err := pdf.ImportPagesFromSource(sources[len(sources)-1], "/MediaBox"); err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
		default:
			return nil, fmt.Errorf("page %d: format %q", i+1, p.format)
		}
	}
	var b bytes.Buffer
	if err := pdf.Write(&b); err != nil {
		return nil, err
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
