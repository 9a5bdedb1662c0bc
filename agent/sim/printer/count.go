package printer

import (
	"encoding/binary"
	"io"
	"os"
	"regexp"
)

// A pageCounter counts a document's pages as it is written, without
// keeping it: PDF page objects (roughly: a PDF whose pages are all in
// compressed object streams counts as one page), the page count in an
// Apple raster (URF) header, the page headers of a PWG raster stream
// (which it must walk, decompressing each page's lines), one page for
// anything else.
type pageCounter interface {
	io.Writer
	Pages() int
}

func newPageCounter(format string) pageCounter {
	switch format {
	case "application/pdf":
		return &pdfCounter{}
	case "image/urf":
		return &urfCounter{}
	case "image/pwg-raster":
		return &pwgCounter{}
	}
	return onePage{}
}

type onePage struct{}

func (onePage) Write(b []byte) (int, error) { return len(b), nil }
func (onePage) Pages() int                  { return 1 }

// pdfPage matches a page object's type, not that of the page tree
// (/Pages); the byte after it may come in the next write.
var pdfPage = regexp.MustCompile(`/Type\s{0,8}/Page[^s]`)

// pdfOverlap is more than a match's length: a match that ends in the new
// bytes starts in them or in the overlap.
const pdfOverlap = 32

type pdfCounter struct {
	tail []byte // the last bytes already searched
	n    int
}

func (c *pdfCounter) Write(b []byte) (int, error) {
	buf := append(c.tail, b...)
	for _, m := range pdfPage.FindAllIndex(buf, -1) {
		if m[1] > len(c.tail) { // not counted with the previous write
			c.n++
		}
	}
	keep := min(len(buf), pdfOverlap)
	c.tail = append(c.tail[:0:0], buf[len(buf)-keep:]...)
	return len(b), nil
}

func (c *pdfCounter) Pages() int { return max(c.n, 1) }

// urfCounter reads the page count of an Apple raster header: "UNIRAST\0"
// then a big-endian 32-bit count.
type urfCounter struct {
	head []byte
}

func (c *urfCounter) Write(b []byte) (int, error) {
	if need := 12 - len(c.head); need > 0 {
		c.head = append(c.head, b[:min(need, len(b))]...)
	}
	return len(b), nil
}

func (c *urfCounter) Pages() int {
	if len(c.head) < 12 || string(c.head[:8]) != "UNIRAST\x00" {
		return 1
	}
	return max(int(binary.BigEndian.Uint32(c.head[8:12])), 1)
}

// pwgCounter walks a PWG raster stream: "RaS2", then for each page a
// 1796-byte header and the page's lines, each a repeat count byte then
// PackBits-like runs of pixels (PWG 5102.4).
type pwgCounter struct {
	state   int // 0 sync, 1 header, 2 line repeat, 3 run, 4 literal pixels, 5 repeated pixel
	buf     []byte
	pages   int
	bpl     int // bytes per line
	height  int // lines per page
	bpp     int // bytes per pixel (at least 1)
	line    int // lines of the page done
	col     int // bytes of the current line done
	repeat  int // lines the current line stands for
	skip    int // bytes of pixels to pass
	invalid bool
}

const pwgHeaderBytes = 1796

func (c *pwgCounter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && !c.invalid {
		switch c.state {
		case 0, 1:
			want := 4
			if c.state == 1 {
				want = pwgHeaderBytes
			}
			k := min(want-len(c.buf), len(b))
			c.buf, b = append(c.buf, b[:k]...), b[k:]
			if len(c.buf) < want {
				continue
			}
			if c.state == 0 {
				if string(c.buf) != "RaS2" {
					c.invalid = true
				}
				c.buf, c.state = c.buf[:0], 1
				continue
			}
			h := c.buf
			bitsPerPixel := int(binary.BigEndian.Uint32(h[388:392]))
			c.bpl = int(binary.BigEndian.Uint32(h[392:396]))
			c.height = int(binary.BigEndian.Uint32(h[376:380]))
			c.bpp = max((bitsPerPixel+7)/8, 1)
			c.buf = c.buf[:0]
			c.pages++
			c.line = 0
			c.state = 2
			if c.height == 0 || c.bpl == 0 {
				c.state = 1
			}
		case 2: // line repeat count
			c.repeat = int(b[0]) + 1
			b = b[1:]
			c.col = 0
			c.state = 3
		case 3: // run header
			r := int(b[0])
			b = b[1:]
			switch {
			case r == 128: // the rest of the line is white
				c.skip, c.state = 0, 4
				c.col = c.bpl
			case r < 128:
				c.skip, c.state = c.bpp, 5 // one pixel, repeated r+1 times
				c.col += (r + 1) * c.bpp
			default:
				k := (257 - r) * c.bpp
				c.skip, c.state = k, 4
				c.col += k
			}
		case 4, 5:
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			if c.skip > 0 {
				continue
			}
			c.state = 3
			if c.col >= c.bpl {
				c.line += c.repeat
				c.state = 2
				if c.line >= c.height {
					c.state = 1
				}
			}
		}
	}
	return n, nil
}

func (c *pwgCounter) Pages() int { return max(c.pages, 1) }

// removeQuietly removes a file the printer failed to fill.
func removeQuietly(path string) { os.Remove(path) }
