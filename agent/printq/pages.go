package printq

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
)

// countPages counts the pages of a spooled document, for the printers that
// report no impressions: PWG and Apple raster exactly, PDF and PostScript by
// their page objects and comments, a JPEG or PNG image as one page. The
// format is sniffed from the document's first bytes, not trusted from the
// ticket. It reports false when it cannot tell.
func countPages(path, format string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	head, _ := r.Peek(8)
	var n int
	switch {
	case bytes.HasPrefix(head, []byte("RaS2")):
		n, err = pwgPages(r)
	case bytes.HasPrefix(head, []byte("UNIRAST\x00")):
		n, err = urfPages(r)
	case bytes.HasPrefix(head, []byte("%PDF-")):
		n, err = countMatches(r, pdfPage)
	case bytes.HasPrefix(head, []byte("%!PS")):
		n, err = psPages(r)
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}), bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		n = 1
	default:
		return 0, false
	}
	if err != nil || n <= 0 {
		return 0, false
	}
	return min(n, maxCount), true
}

var errRaster = errors.New("printq: bad raster")

// urfPages reads the page count of an Apple raster header.
func urfPages(r io.Reader) (int, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint32(h[8:])), nil
}

// PWG raster (PWG 5102.4): a page is a 1796-byte header followed by its
// lines, each a repeat count and PackBits-like runs of pixels.
const (
	pwgHeaderBytes  = 1796
	pwgHeightAt     = 376
	pwgBitsPerPixAt = 388
	pwgBytesLineAt  = 392
)

// pwgPages counts the pages of a PWG raster stream by decoding the length
// of each page's compressed lines.
func pwgPages(r *bufio.Reader) (int, error) {
	if _, err := r.Discard(4); err != nil {
		return 0, err
	}
	hdr := make([]byte, pwgHeaderBytes)
	pages := 0
	for {
		if _, err := io.ReadFull(r, hdr); err == io.EOF {
			return pages, nil
		} else if err != nil {
			return 0, err
		}
		height := int(binary.BigEndian.Uint32(hdr[pwgHeightAt:]))
		bpp := int(binary.BigEndian.Uint32(hdr[pwgBitsPerPixAt:]))
		bpl := int(binary.BigEndian.Uint32(hdr[pwgBytesLineAt:]))
		if bpp == 0 || bpp%8 != 0 || bpl == 0 || bpl%(bpp/8) != 0 || height > 1<<20 || bpl > 1<<20 {
			return 0, errRaster
		}
		if err := skipLines(r, height, bpl, bpp/8); err != nil {
			return 0, err
		}
		pages++
	}
}

func skipLines(r *bufio.Reader, height, bpl, pix int) error {
	for y := 0; y < height; {
		rep, err := r.ReadByte()
		if err != nil {
			return err
		}
		y += int(rep) + 1
		for x := 0; x < bpl; {
			c, err := r.ReadByte()
			if err != nil {
				return err
			}
			switch {
			case c == 128: // the rest of the line is blank
				x = bpl
			case c < 128: // one pixel repeated c+1 times
				if _, err := r.Discard(pix); err != nil {
					return err
				}
				x += (int(c) + 1) * pix
			default: // 257-c literal pixels
				n := (257 - int(c)) * pix
				if _, err := r.Discard(n); err != nil {
					return err
				}
				x += n
			}
		}
	}
	return nil
}

// pdfPage matches a page object of a PDF (not the /Pages tree nodes).
var pdfPage = regexp.MustCompile(`/Type\s{0,8}/Page[^A-Za-z0-9_]`)

// countMatches counts the matches of re in r, reading it in windows; a
// match is at most tail bytes long.
func countMatches(r io.Reader, re *regexp.Regexp) (int, error) {
	const window, tail = 1 << 20, 64
	buf := make([]byte, 0, window+tail)
	n := 0
	for {
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return 0, err
		}
		limit := len(buf)
		if !eof {
			limit -= tail
		}
		for _, loc := range re.FindAllIndex(buf, -1) {
			if loc[0] < limit {
				n++
			}
		}
		if eof {
			return n, nil
		}
		buf = append(buf[:0], buf[limit:]...)
	}
}

// psPages reads the %%Pages: comment of a DSC PostScript document (the last
// one, since the header may defer it to the trailer).
func psPages(r *bufio.Reader) (int, error) {
	pages := 0
	for {
		line, err := r.ReadSlice('\n')
		if v, ok := bytes.CutPrefix(line, []byte("%%Pages:")); ok {
			if n, perr := strconv.Atoi(string(bytes.TrimSpace(v))); perr == nil {
				pages = n
			}
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer is no comment: skip its rest.
			_, err = r.ReadSlice('\n')
		}
		if err == io.EOF {
			return pages, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
