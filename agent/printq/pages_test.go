package printq

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/OpenPrinting/goipp"
)

// pwgRaster encodes a PWG raster stream of pages, each of the given height
// and 4 pixels of 24 bits wide, with every kind of run.
func pwgRaster(heights ...int) []byte {
	var b bytes.Buffer
	b.WriteString("RaS2")
	for _, h := range heights {
		hdr := make([]byte, pwgHeaderBytes)
		copy(hdr, "PwgRaster")
		binary.BigEndian.PutUint32(hdr[pwgHeightAt:], uint32(h))
		binary.BigEndian.PutUint32(hdr[pwgBitsPerPixAt:], 24)
		binary.BigEndian.PutUint32(hdr[pwgBytesLineAt:], 12)
		b.Write(hdr)
		for y := 0; y < h; {
			switch {
			case h-y >= 3: // three identical lines: one pixel repeated 4 times
				b.Write([]byte{2, 3, 0xff, 0xff, 0xff})
				y += 3
			case y%2 == 0: // four literal pixels
				b.Write([]byte{0, 253, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
				y++
			default: // one literal pixel, then blank to the end of the line
				b.Write([]byte{0, 0, 9, 9, 9, 128})
				y++
			}
		}
	}
	return b.Bytes()
}

func TestCountPages(t *testing.T) {
	var bigPDF strings.Builder
	bigPDF.WriteString("%PDF-1.4\n1 0 obj << /Type /Pages /Count 3000 >> endobj\n")
	for i := range 3000 {
		fmt.Fprintf(&bigPDF, "%d 0 obj\n<< /Type /Page /Parent 1 0 R >>\nstream\n%s\nendstream endobj\n", i+2, strings.Repeat("q", 700))
	}
	urf := append([]byte("UNIRAST\x00"), 0, 0, 0, 3)
	for name, c := range map[string]struct {
		doc  []byte
		want int
	}{
		"pwg":         {pwgRaster(5, 2, 1), 3},
		"urf":         {urf, 3},
		"pdf":         {[]byte("%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type /Pages/Kids[3 0 R 4 0 R]>>endobj 3 0 obj<</Type /Page>>endobj 4 0 obj<</Type/Page/Parent 2 0 R>>endobj\n%%EOF"), 2},
		"big pdf":     {[]byte(bigPDF.String()), 3000},
		"postscript":  {[]byte("%!PS-Adobe-3.0\n%%Pages: (atend)\nshowpage\n%%Trailer\n%%Pages: 5\n%%EOF\n"), 5},
		"jpeg":        {[]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10}, 1},
		"text":        {[]byte("hello"), 0},
		"cut pwg":     {pwgRaster(5)[:1900], 0},
		"empty pdf":   {[]byte("%PDF-1.7\n%%EOF"), 0},
		"bad pwg hdr": {append([]byte("RaS2"), make([]byte, pwgHeaderBytes)...), 0},
	} {
		path := filepath.Join(t.TempDir(), "doc")
		if err := os.WriteFile(path, c.doc, 0o600); err != nil {
			t.Fatal(err)
		}
		n, ok := countPages(path, "application/octet-stream")
		if n != c.want || ok != (c.want > 0) {
			t.Errorf("%s: countPages = %d, %v; want %d", name, n, ok, c.want)
		}
	}
}

// A printer that reports no impressions: the queue counts the document's
// pages, times the copies.
func TestCountedImpressions(t *testing.T) {
	p := newFakePrinter(t)
	p.set(func(p *fakePrinter) { p.impress, p.sheets = 0, 0 })
	h := newHarness(t, p.uri(), nil)
	tmpl := goipp.Attributes{goipp.MakeAttribute("copies", goipp.TagInteger, goipp.Integer(2))}
	j, err := h.q.Submit(Ticket{Format: "image/pwg-raster", Template: tmpl}, bytes.NewReader(pwgRaster(3, 3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	if done := h.waitState(j.ID, Completed); done.Impressions != 6 {
		t.Errorf("impressions %d, want 6", done.Impressions)
	}
	if ev := h.rec.waitEvents(t, 1)[0]; *ev.Pages != 6 || ev.Sheets != nil {
		t.Errorf("event %+v", ev)
	}
}
