package printer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/relais-fr/relais/central/peertest"
)

// urf returns an Apple raster of n one-line white pages.
func urf(n int) []byte {
	var b bytes.Buffer
	b.WriteString("UNIRAST\x00")
	binary.Write(&b, binary.BigEndian, uint32(n))
	for range n {
		page := make([]byte, 32)
		page[0], page[2], page[3] = 8, 1, 4        // 8 bits per pixel, duplex off, quality normal
		binary.BigEndian.PutUint32(page[12:], 8)   // width
		binary.BigEndian.PutUint32(page[16:], 1)   // height
		binary.BigEndian.PutUint32(page[20:], 300) // dpi
		b.Write(page)
		b.Write([]byte{0, 7, 0xff}) // one line: 8 white pixels
	}
	return b.Bytes()
}

// pwg returns a PWG raster of n pages, 18 lines of 10 8-bit pixels each,
// using every kind of run: repeated lines, repeated pixels, literal
// pixels, and clear to end of line.
func pwg(n int) []byte {
	var b bytes.Buffer
	b.WriteString("RaS2")
	for range n {
		h := make([]byte, pwgHeaderBytes)
		copy(h, "PwgRaster")
		binary.BigEndian.PutUint32(h[372:], 10) // width
		binary.BigEndian.PutUint32(h[376:], 18) // height
		binary.BigEndian.PutUint32(h[388:], 8)  // bits per pixel
		binary.BigEndian.PutUint32(h[392:], 10) // bytes per line
		b.Write(h)
		b.Write([]byte{9, 9, 0xff})                         // 10 lines of 10 white pixels
		b.Write([]byte{1, 0xfd, 1, 2, 3, 4, 6, 0x80})       // 2 lines: 4 literal pixels, 7 repeated (clipped to 6)
		b.Write([]byte{3, 0xfe, 0x10, 0x11, 0x12, 0x80})    // 4 lines: 3 literal pixels, clear to end
		b.Write([]byte{0, 0x80})                            // 1 line: all white
		b.Write([]byte{0, 4, 0x00, 0xfb, 1, 2, 3, 4, 5, 6}) // 1 line: 5 repeated, 6 literal (clipped to 5)
	}
	return b.Bytes()
}

func count(format string, doc []byte, chunk int) int {
	c := newPageCounter(format)
	for len(doc) > 0 {
		k := min(chunk, len(doc))
		c.Write(doc[:k])
		doc = doc[k:]
	}
	return c.Pages()
}

func TestPageCounters(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		doc          []byte
		want         int
	}{
		{"pdf", "application/pdf", peertest.PDF(7), 7},
		{"pdf page tree only", "application/pdf", []byte("%PDF-1.7 << /Type /Pages /Count 3 >>"), 1},
		{"pdf compact", "application/pdf", []byte("<</Type/Page/Parent 2 0 R>><</Type /Page>>"), 2},
		{"urf", "image/urf", urf(4), 4},
		{"urf truncated", "image/urf", []byte("UNIRA"), 1},
		{"pwg", "image/pwg-raster", pwg(3), 3},
		{"pwg bad sync", "image/pwg-raster", append([]byte("RaS3"), pwg(3)[4:]...), 1},
		{"jpeg", "image/jpeg", []byte{0xff, 0xd8, 0xff, 0xe0}, 1},
	} {
		for _, chunk := range []int{1, 3, 4096} {
			if got := count(tc.format, tc.doc, chunk); got != tc.want {
				t.Errorf("%s in chunks of %d: %d pages, want %d", tc.name, chunk, got, tc.want)
			}
		}
	}
}

func TestSniff(t *testing.T) {
	for head, want := range map[string]string{
		"%PDF-1.4":         "application/pdf",
		"RaS2...":          "image/pwg-raster",
		"UNIRAST\x00\x00":  "image/urf",
		"\xff\xd8\xff\xe0": "image/jpeg",
		"%!PS-Adobe-3.0":   "application/postscript",
		"\x1b%-12345X@PJL": "application/octet-stream",
	} {
		if got := sniff([]byte(head)); got != want {
			t.Errorf("sniff(%q) = %s, want %s", head, got, want)
		}
	}
}
