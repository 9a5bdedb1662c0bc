package ippserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"testing"

	"github.com/relais-fr/relais/central/peertest"
)

// Documents for the tests, made here rather than kept as files.

// minimalPDF returns a PDF of one page of w×h points with a line of text,
// its cross-reference table exact.
func minimalPDF(w, h int, text string) []byte {
	return pdfPages(w, h, text, 1)
}

// pdfPages returns a PDF of n pages of w×h points.
func pdfPages(w, h int, text string, n int) []byte {
	var objs []string
	kids := make([]string, n)
	for i := range n {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	objs = append(objs,
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	for i := range n {
		content := fmt.Sprintf("BT /F1 24 Tf 72 %d Td (%s, page %d) Tj ET", h-100, text, i+1)
		objs = append(objs,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>", w, h, 5+2*i),
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	return peertest.PDFObjects(objs)
}

// postScript returns a PostScript document of n pages of w×h points.
func postScript(w, h int, text string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%%!PS-Adobe-3.0\n%%%%BoundingBox: 0 0 %d %d\n%%%%Pages: %d\n%%%%EndComments\n", w, h, n)
	for i := range n {
		fmt.Fprintf(&b, "%%%%Page: %d %d\n<< /PageSize [%d %d] >> setpagedevice\n"+
			"/Helvetica findfont 24 scalefont setfont\n72 %d moveto (%s, page %d) show\nshowpage\n", i+1, i+1, w, h, h-100, text, i+1)
	}
	b.WriteString("%%EOF\n")
	return b.Bytes()
}

// jpegImage returns a JPEG photo-like gradient, in colour or gray.
func jpegImage(t testing.TB, w, h int, gray bool) []byte {
	t.Helper()
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.SetGray(x, y, color.Gray{Y: uint8((x + y) * 255 / (w + h))})
			}
		}
		img = g
	} else {
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				c.SetRGBA(x, y, color.RGBA{R: uint8(x * 255 / w), G: uint8(y * 255 / h), B: 160, A: 255})
			}
		}
		img = c
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rasterType describes a PWG raster type (PWG 5102.4).
type rasterType struct {
	bitsPerColor, colors, colorSpace int
	white                            byte
}

var rasterTypes = map[string]rasterType{
	"black_1": {1, 1, 3, 0x00},   // CUPS_CSPACE_K
	"black_8": {8, 1, 3, 0x00},   //
	"sgray_8": {8, 1, 18, 0xff},  // CUPS_CSPACE_SW
	"srgb_8":  {8, 3, 19, 0xff},  // CUPS_CSPACE_SRGB
	"srgb_16": {16, 3, 19, 0xff}, //
	"cmyk_8":  {8, 4, 6, 0x00},   // CUPS_CSPACE_CMYK
}

// pwgRaster returns a PWG raster document (PWG 5102.4) of n pages of
// w×h points at dpi, of the given type: blank but for a dark band.
func pwgRaster(w, h float64, dpi int, typ, sizeName string, n int) []byte {
	rt := rasterTypes[typ]
	width := int(math.Round(w / 72 * float64(dpi)))
	height := int(math.Round(h / 72 * float64(dpi)))
	bpp := rt.bitsPerColor * rt.colors
	bytesPerLine := (width*bpp + 7) / 8
	unit := max(bpp/8, 1) // bytes that a run repeats
	units := bytesPerLine / unit
	var b bytes.Buffer
	b.WriteString("RaS2")
	for page := range n {
		hdr := make([]byte, 1796)
		put := func(off, v int) { binary.BigEndian.PutUint32(hdr[off-4:], uint32(v)) }
		copy(hdr[0:], "PwgRaster")
		put(280, dpi)
		put(284, dpi)
		put(344, 1) // NumCopies
		put(356, int(math.Round(w)))
		put(360, int(math.Round(h)))
		put(376, width)
		put(380, height)
		put(388, rt.bitsPerColor)
		put(392, bpp)
		put(396, bytesPerLine)
		put(404, rt.colorSpace)
		put(424, rt.colors)
		put(456, n)      // TotalPageCount
		put(460, 1)      // CrossFeedTransform
		put(464, 1)      // FeedTransform
		put(476, width)  // ImageBoxRight
		put(480, height) // ImageBoxBottom
		copy(hdr[1736-4:], sizeName)
		b.Write(hdr)
		// Lines in groups of at most 256 identical ones: blank, a band
		// whose place depends on the page, blank.
		band := dpi/2 + page*dpi/4
		for y := 0; y < height; {
			dark := y >= band && y < band+dpi/10
			count := 1
			for y+count < height && count < 256 && (y+count >= band && y+count < band+dpi/10) == dark {
				count++
			}
			b.WriteByte(byte(count - 1))
			pixel := bytes.Repeat([]byte{rt.white}, unit)
			if dark {
				pixel = bytes.Repeat([]byte{rt.white ^ 0xff}, unit)
			}
			for left := units; left > 0; left -= min(left, 128) {
				b.WriteByte(byte(min(left, 128) - 1))
				b.Write(pixel)
			}
			y += count
		}
	}
	return b.Bytes()
}
