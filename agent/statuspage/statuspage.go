// Package statuspage renders the page that the agent prints on a very long
// press of the button, for the technician on site: a one-page A4 PDF with
// the site's name and ids, the Pi's IP addresses, the printer's, scanner's
// and Wi-Fi's states in plain words, the agent's version, and the address of
// the local page as text and as a QR code. It is written with
// github.com/signintech/gopdf (maintained) in the Go fonts of
// golang.org/x/image, embedded as a subset: UTF-8 text with every French
// accent, ligature and sign (é, à, ç, œ, «», €), the same on every printer,
// and nothing to install on the Pi (no font package is guaranteed there).
// Characters outside the fonts print as "?". The QR code is encoded by
// rsc.io/qr and drawn as vector squares with its quiet zone.
package statuspage

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/signintech/gopdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"rsc.io/qr"

	"github.com/relais-fr/relais/agent/locale"
)

// Condition is a device's state, said in plain words on the page.
type Condition int

// The conditions of a device.
const (
	Unknown       Condition = iota // not checked yet
	NotConfigured                  // the configuration names none
	Working                        // answers and works
	Warning                        // works, with a warning (toner low...)
	Fault                          // needs staff: no paper, jam...
	Unreachable                    // does not answer
)

// words says a condition in plain words.
func (c Condition) words(p *message.Printer) string {
	switch c {
	case NotConfigured:
		return p.Sprintf("not configured")
	case Working:
		return p.Sprintf("in service")
	case Warning:
		return p.Sprintf("in service, with a warning")
	case Fault:
		return p.Sprintf("out of order: staff needed")
	case Unreachable:
		return p.Sprintf("unreachable")
	}
	return p.Sprintf("not checked yet")
}

// Device is the state of the printer, the scanner or the Wi-Fi.
type Device struct {
	Condition Condition
	Name      string // what it is: model, address, network name; may be empty
	Detail    string // why, in the reader's language (e.g. "plus de papier"); may be empty
}

// Info is what the page shows.
type Info struct {
	SiteName  string
	SiteID    string
	AgentID   string
	Addresses []string // the Pi's IP addresses
	Printer   Device
	Scanner   Device
	WiFi      Device
	Version   string
	LocalURL  string    // address of the local page, e.g. http://192.168.1.20/
	Printed   time.Time // when the page is made; zero: not shown
}

// Page geometry, in points (A4 is 595 × 842).
const (
	margin     = 56.0  // ~20 mm
	labelWidth = 150.0 // the label column
	lineHeight = 17.0
	qrSide     = 200.0 // ~70 mm, quiet zone included
)

// Render writes the status page of info as a PDF in lang (French unless
// English is asked for).
func Render(w io.Writer, info Info, lang language.Tag) error {
	p := locale.Printer(locale.Match(lang.String()))
	pdf := &gopdf.GoPdf{}
	pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitPT})
	pdf.SetInfo(gopdf.PdfInfo{
		Title:        p.Sprintf("Relais status page") + " — " + info.SiteName,
		Creator:      "relais-agent " + info.Version,
		Producer:     "relais-agent",
		CreationDate: info.Printed,
	})
	opt := gopdf.TtfOption{OnGlyphNotFoundSubstitute: func(rune) rune { return '?' }}
	if err := pdf.AddTTFFontDataWithOption("regular", goregular.TTF, opt); err != nil {
		return fmt.Errorf("statuspage: font: %w", err)
	}
	if err := pdf.AddTTFFontDataWithOption("bold", gobold.TTF, opt); err != nil {
		return fmt.Errorf("statuspage: font: %w", err)
	}
	pdf.AddPage()
	pg := &page{pdf: pdf, y: margin}

	pg.text("bold", 22, margin, p.Sprintf("Relais status page"))
	pg.y += 10
	pg.text("bold", 16, margin, orDash(info.SiteName))
	pg.y += 14

	pg.row(p.Sprintf("Site id"), info.SiteID)
	pg.row(p.Sprintf("Agent id"), info.AgentID)
	pg.row(p.Sprintf("IP addresses"), strings.Join(info.Addresses, ", "))
	pg.row(p.Sprintf("Printer"), device(p, info.Printer))
	pg.row(p.Sprintf("Scanner"), device(p, info.Scanner))
	pg.row(p.Sprintf("Wi-Fi"), device(p, info.WiFi))
	pg.row(p.Sprintf("Agent version"), info.Version)
	if !info.Printed.IsZero() {
		pg.row(p.Sprintf("Printed on"), printed(lang, info.Printed))
	}
	pg.y += 20

	pg.text("bold", 14, margin, p.Sprintf("Local page"))
	pg.y += 4
	pg.text("regular", 16, margin, orDash(info.LocalURL))
	pg.y += 8
	pg.para(11, p.Sprintf("Scan the code or type the address in a browser on the site's network: latest scans, held prints, state of the devices."))
	pg.y += 10
	if info.LocalURL != "" {
		if err := drawQR(pdf, info.LocalURL, margin, pg.y, qrSide); err != nil {
			return err
		}
	}
	if pg.err != nil {
		return fmt.Errorf("statuspage: %w", pg.err)
	}
	if _, err := pdf.WriteTo(w); err != nil {
		return fmt.Errorf("statuspage: %w", err)
	}
	return nil
}

// page lays text out from the top down, keeping the first error.
type page struct {
	pdf *gopdf.GoPdf
	y   float64 // top of the next line
	err error
}

func (pg *page) font(family string, size float64) {
	if err := pg.pdf.SetFont(family, "", size); err != nil && pg.err == nil {
		pg.err = err
	}
}

// lines splits s into lines that fit width; an error leaves s whole.
func (pg *page) lines(s string, width float64) []string {
	ls, err := pg.pdf.SplitTextWithWordWrap(s, width)
	if err != nil || len(ls) == 0 {
		return []string{s}
	}
	return ls
}

// text writes one line at x and moves down by the font's size.
func (pg *page) text(family string, size, x float64, s string) {
	pg.font(family, size)
	pg.pdf.SetXY(x, pg.y)
	if err := pg.pdf.Cell(nil, s); err != nil && pg.err == nil {
		pg.err = err
	}
	pg.y += size * 1.3
}

// para writes s across the page, wrapped.
func (pg *page) para(size float64, s string) {
	pg.font("regular", size)
	for _, l := range pg.lines(s, gopdf.PageSizeA4.W-2*margin) {
		pg.text("regular", size, margin, l)
	}
}

// row writes a label and its value, wrapped in the value column.
func (pg *page) row(label, value string) {
	pg.font("bold", 12)
	pg.pdf.SetXY(margin, pg.y)
	if err := pg.pdf.Cell(nil, label); err != nil && pg.err == nil {
		pg.err = err
	}
	pg.font("regular", 12)
	for _, l := range pg.lines(orDash(value), gopdf.PageSizeA4.W-2*margin-labelWidth) {
		pg.pdf.SetXY(margin+labelWidth, pg.y)
		if err := pg.pdf.Cell(nil, l); err != nil && pg.err == nil {
			pg.err = err
		}
		pg.y += lineHeight
	}
	pg.y += 3
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// device says a device's state: "en panne : intervention nécessaire —
// Xerox B235 (plus de papier)".
func device(p *message.Printer, d Device) string {
	s := d.Condition.words(p)
	if d.Name != "" {
		s += " — " + d.Name
	}
	if d.Detail != "" {
		s += " (" + d.Detail + ")"
	}
	return s
}

// printed says when, in the reader's custom: 02/03/2026 09:00 in French,
// 2026-03-02 09:00 in English, with the time zone.
func printed(lang language.Tag, t time.Time) string {
	if locale.Match(lang.String()) == language.English {
		return t.Format("2006-01-02 15:04 MST")
	}
	return t.Format("02/01/2006 15:04 MST")
}

// drawQR draws text's QR code, with its 4-module quiet zone, as a square
// of side points at x, y, one filled rectangle per run of dark modules.
func drawQR(pdf *gopdf.GoPdf, text string, x, y, side float64) error {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return fmt.Errorf("statuspage: QR code of %q: %w", text, err)
	}
	const quiet = 4
	m := side / float64(code.Size+2*quiet)
	pdf.SetFillColor(0, 0, 0)
	for row := range code.Size {
		for col := 0; col < code.Size; {
			if !code.Black(col, row) {
				col++
				continue
			}
			run := col
			for run < code.Size && code.Black(run, row) {
				run++
			}
			pdf.RectFromUpperLeftWithStyle(x+float64(quiet+col)*m, y+float64(quiet+row)*m, float64(run-col)*m, m, "F")
			col = run
		}
	}
	return nil
}
