package ippserver

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// The printer's icons (printer-icons), drawn at start: a printer with a
// sheet coming out, in the three sizes IPP Everywhere asks for.
const (
	iconSmall  = Path + "/icon-48.png"
	iconMedium = Path + "/icon-128.png"
	iconLarge  = Path + "/icon-512.png"
)

func makeIcons() map[string][]byte {
	return map[string][]byte{iconSmall: drawIcon(48), iconMedium: drawIcon(128), iconLarge: drawIcon(512)}
}

// drawIcon draws the icon on a size×size transparent square.
func drawIcon(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	fill := func(x0, y0, x1, y1 float64, c color.NRGBA) {
		for y := int(y0 * float64(size)); y < int(y1*float64(size)); y++ {
			for x := int(x0 * float64(size)); x < int(x1*float64(size)); x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	paper := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	ink := color.NRGBA{0x44, 0x44, 0x44, 0xff}
	body := color.NRGBA{0x1f, 0x4e, 0x8c, 0xff}
	light := color.NRGBA{0x6c, 0xd0, 0x6c, 0xff}
	// The sheet waiting, the body, its light, the printed sheet and its text.
	fill(0.25, 0.08, 0.75, 0.40, ink)
	fill(0.27, 0.10, 0.73, 0.40, paper)
	fill(0.08, 0.35, 0.92, 0.75, body)
	fill(0.78, 0.42, 0.86, 0.48, light)
	fill(0.25, 0.62, 0.75, 0.94, ink)
	fill(0.27, 0.62, 0.73, 0.92, paper)
	for i := range 3 {
		y := 0.70 + 0.06*float64(i)
		fill(0.32, y, 0.68-0.08*float64(i), y+0.02, ink)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory image does not fail
	}
	return buf.Bytes()
}
