package scanner

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strconv"

	"github.com/signintech/gopdf"
)

// A page the simulator scans is white, with a frame, lines of grey "text",
// a title, its page number in large digits and, for a colour scan, three
// colour bars. Its top-left corner carries the page number in a form a
// test reads back from the decoded image (see PageCode): a black start
// square, then 8 squares, one per bit, most significant first, black for 1.
// Each square is a tenth of an inch wide, with a gap as wide between them,
// so that JPEG compression leaves them readable at any resolution.

// codeOrigin is where the page code starts, and codeCell the side of one
// square, in tenths of an inch.
const (
	codeOrigin = 2 // from the left and the top
	codeBits   = 8
)

// cell returns the side of a code square at a resolution, in pixels.
func cell(dpi int) int { return max(dpi/10, 3) }

// canvas is a page being drawn: one byte per pixel in grey, or RGB.
type canvas struct {
	w, h   int
	colour bool
	gray   *image.Gray
	rgb    *image.RGBA
}

func newCanvas(w, h int, colour bool) *canvas {
	c := &canvas{w: w, h: h, colour: colour}
	if colour {
		c.rgb = image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range c.rgb.Pix {
			c.rgb.Pix[i] = 0xff
		}
	} else {
		c.gray = image.NewGray(image.Rect(0, 0, w, h))
		for i := range c.gray.Pix {
			c.gray.Pix[i] = 0xff
		}
	}
	return c
}

// fill paints a rectangle, clipped to the page.
func (c *canvas) fill(x0, y0, x1, y1 int, col color.RGBA) {
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, c.w), min(y1, c.h)
	if x0 >= x1 || y0 >= y1 {
		return
	}
	if c.colour {
		for y := y0; y < y1; y++ {
			row := c.rgb.Pix[y*c.rgb.Stride+x0*4 : y*c.rgb.Stride+x1*4]
			for i := 0; i < len(row); i += 4 {
				row[i], row[i+1], row[i+2], row[i+3] = col.R, col.G, col.B, 0xff
			}
		}
		return
	}
	g := uint8((299*int(col.R) + 587*int(col.G) + 114*int(col.B)) / 1000)
	for y := y0; y < y1; y++ {
		row := c.gray.Pix[y*c.gray.Stride+x0 : y*c.gray.Stride+x1]
		for i := range row {
			row[i] = g
		}
	}
}

func (c *canvas) image() image.Image {
	if c.colour {
		return c.rgb
	}
	return c.gray
}

var (
	black = color.RGBA{0, 0, 0, 0xff}
	grey  = color.RGBA{0x70, 0x70, 0x70, 0xff}
	red   = color.RGBA{0xd0, 0x20, 0x20, 0xff}
	green = color.RGBA{0x20, 0xa0, 0x40, 0xff}
	blue  = color.RGBA{0x20, 0x40, 0xc0, 0xff}
)

// glyphs is a 5×7 bitmap font of the characters pages use.
var glyphs = map[rune][7]string{
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'A': {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	' ': {".....", ".....", ".....", ".....", ".....", ".....", "....."},
}

// text draws s with dots of side px from (x, y); it returns the width.
func (c *canvas) text(x, y, px int, s string, col color.RGBA) int {
	x0 := x
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs[' ']
		}
		for row, line := range g {
			for col0, ch := range line {
				if ch == '#' {
					c.fill(x+col0*px, y+row*px, x+(col0+1)*px, y+(row+1)*px, col)
				}
			}
		}
		x += 6 * px
	}
	return x - x0
}

// renderPage draws page number n of w×h pixels at dpi.
func renderPage(w, h, dpi int, colour bool, n int) image.Image {
	c := newCanvas(w, h, colour)
	in := func(tenths int) int { return tenths * dpi / 10 } // tenths of an inch
	// Frame, a quarter of an inch in.
	m, t := in(2)+in(1)/2, max(dpi/50, 1)
	c.fill(m, m, w-m, m+t, black)
	c.fill(m, h-m-t, w-m, h-m, black)
	c.fill(m, m, m+t, h-m, black)
	c.fill(w-m-t, m, w-m, h-m, black)
	// Page code.
	sq := cell(dpi)
	x, y := in(codeOrigin), in(codeOrigin)/2
	c.fill(x, y, x+sq, y+sq, black)
	for b := 0; b < codeBits; b++ {
		if n>>(codeBits-1-b)&1 == 1 {
			bx := x + 2*sq*(b+1)
			c.fill(bx, y, bx+sq, y+sq, black)
		}
	}
	// Title and page number.
	dot := max(dpi/40, 1)
	c.text(in(6), in(6), dot, "RELAIS SIM", black)
	big := max(dpi/12, 2)
	c.text(in(6), in(10), big, "PAGE "+strconv.Itoa(n), black)
	// Lines of "text".
	lh := max(dpi/6, 4)
	for i, ly := 0, in(25); ly+lh < h-in(12); i, ly = i+1, ly+lh {
		end := w - in(8) - (i*7919%5)*in(3)
		c.fill(in(6), ly, end, ly+lh/3, grey)
	}
	if colour {
		bw := in(8)
		by := h - in(10)
		c.fill(in(6), by, in(6)+bw, by+in(3), red)
		c.fill(in(6)+bw, by, in(6)+2*bw, by+in(3), green)
		c.fill(in(6)+2*bw, by, in(6)+3*bw, by+in(3), blue)
	}
	return c.image()
}

// encodeJPEG encodes a page; a grey page gives a one-component JPEG.
func encodeJPEG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pagePDF wraps a JPEG page in a one-page PDF, at its size in points.
func pagePDF(jpg []byte, w, h, dpi int) ([]byte, error) {
	wpt, hpt := float64(w)*72/float64(dpi), float64(h)*72/float64(dpi)
	var pdf gopdf.GoPdf
	size := gopdf.Rect{W: wpt, H: hpt}
	pdf.Start(gopdf.Config{Unit: gopdf.UnitPT, PageSize: size})
	pdf.SetInfo(gopdf.PdfInfo{Producer: "relais-sim scanner"})
	pdf.AddPage()
	img, err := gopdf.ImageHolderByBytes(jpg)
	if err != nil {
		return nil, err
	}
	if err := pdf.ImageByHolder(img, 0, 0, &size); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := pdf.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// PageCode reads the page number a simulated page carries, from the image
// decoded at the resolution it was scanned at; -1 when there is none.
func PageCode(img image.Image, dpi int) int {
	sq := cell(dpi)
	b := img.Bounds()
	x, y := b.Min.X+codeOrigin*dpi/10, b.Min.Y+codeOrigin*dpi/10/2
	dark := func(px, py int) bool {
		cx, cy := px+sq/2, py+sq/2
		if !image.Pt(cx, cy).In(b) {
			return false
		}
		r, g, bl, _ := img.At(cx, cy).RGBA()
		return (r+g+bl)/3 < 0x8000
	}
	if !dark(x, y) {
		return -1
	}
	n := 0
	for i := 0; i < codeBits; i++ {
		n <<= 1
		if dark(x+2*sq*(i+1), y) {
			n |= 1
		}
	}
	return n
}
