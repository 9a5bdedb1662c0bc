package scan

import (
	"bytes"
	"strings"
	"testing"
)

// A PDF without cross-reference table or trailer, as scanimage 1.1.1
// writes: its pages are counted by their page objects, and it is passed on
// whole, never merged.
const brokenPDF = "%PDF-1.3\n4 0 obj\n/Type /Page\n/Parent 2 0 R\nendobj\n9 0 obj\n/Type /Page\n/Parent 2 0 R\nendobj\n" +
	"2 0 obj\n/Type /Pages\n/Count 2\nendobj\n"

func TestSniff(t *testing.T) {
	jpg := testJPEG(t, 30, 40)
	p, err := sniff(jpg, 10_000)
	if err != nil || p.format != FormatJPEG || p.pages != 1 || p.width != 30 || p.height != 40 {
		t.Errorf("JPEG: %+v, %v", p, err)
	}
	if _, err := sniff(jpg, 1000); ReasonOf(err) != TooLarge {
		t.Errorf("JPEG above the pixel limit: %v", err)
	}
	p, err = sniff([]byte(brokenPDF), 10_000)
	if err != nil || p.format != FormatPDF || p.pages != 2 || !p.opaque {
		t.Errorf("unreadable PDF: %+v, %v", p, err)
	}
	for _, bad := range []string{"", "\xff\xd8\xff\xe0 not a JPEG", "%PDF-1.4 nothing", "P6\n1 1\n255\n..."} {
		if p, err := sniff([]byte(bad), 10_000); err == nil {
			t.Errorf("%q accepted as %+v", bad, p)
		}
	}
}

func TestWriteDocument(t *testing.T) {
	jpg := testJPEG(t, 300, 300)
	pg, _ := sniff(jpg, 1e6)
	opaque, _ := sniff([]byte(brokenPDF), 1e6)

	var b bytes.Buffer
	if f, n, err := writeDocument(&b, []page{pg}, FormatJPEG, 300); err != nil || f != FormatJPEG || n != int64(len(jpg)) || !bytes.Equal(b.Bytes(), jpg) {
		t.Errorf("one JPEG as JPEG: %s, %d, %v", f, n, err)
	}
	b.Reset()
	f, n, err := writeDocument(&b, []page{pg, pg}, FormatJPEG, 300)
	if err != nil || f != FormatPDF || n != int64(b.Len()) || !strings.HasPrefix(b.String(), "%PDF-") {
		t.Errorf("two JPEGs: %s, %d, %v", f, n, err)
	}
	if got, err := pdfPages(b.Bytes()); err != nil || got != 2 {
		t.Errorf("two JPEGs: %d pages, %v", got, err)
	}
	// One inch square at 300 dpi is 72 points.
	if !bytes.Contains(b.Bytes(), []byte("/MediaBox [ 0 0 72.00 72.00 ]")) {
		t.Error("the page is not one inch square")
	}
	b.Reset()
	if f, _, err := writeDocument(&b, []page{opaque}, FormatPDF, 300); err != nil || f != FormatPDF || b.String() != brokenPDF {
		t.Errorf("an unreadable PDF alone: %s, %v", f, err)
	}
	b.Reset()
	if _, _, err := writeDocument(&b, []page{pg, opaque}, FormatPDF, 300); err == nil || b.Len() != 0 {
		t.Errorf("an unreadable PDF merged: %v, %d bytes written", err, b.Len())
	}
}
