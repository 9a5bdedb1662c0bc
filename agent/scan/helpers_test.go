package scan_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"sync"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/agent/sim/scanner"
)

// fakeClock is a clock the test advances. Each timer made is announced on
// made, so that a test knows the driver is waiting on it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), made: make(chan time.Duration, 100)}
}

type fakeTimer struct {
	c     *fakeClock
	when  time.Time
	ch    chan time.Time
	fired bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) scan.Timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.made <- d
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return !t.fired
		}
	}
	return false
}

// Advance moves the time on and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.when.After(c.now) {
			t.fired = true
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// waitTimer waits until the driver makes a timer, and returns its duration.
func (c *fakeClock) waitTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.made:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("the driver never waited on the clock")
		return 0
	}
}

// startSim starts a simulated eSCL scanner on the loopback interface.
func startSim(t *testing.T, cfg scanner.Config) *scanner.Scanner {
	t.Helper()
	s, err := scanner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func command(t *testing.T, s *scanner.Scanner, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := s.Command(l); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
}

func newESCL(t *testing.T, url string, opt scan.Options) *scan.ESCL {
	t.Helper()
	e, err := scan.NewESCL(url, opt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// pdfPageCount counts a PDF's pages with a reader other than the one that
// wrote JPEG pages into it.
func pdfPageCount(t *testing.T, doc []byte) int {
	t.Helper()
	api.DisableConfigDir()
	n, err := api.PageCount(bytes.NewReader(doc), nil)
	if err != nil {
		t.Fatalf("the PDF does not read: %v", err)
	}
	return n
}

// pdfImages decodes the JPEG images a PDF embeds, in the order they appear.
func pdfImages(t *testing.T, doc []byte) []image.Image {
	t.Helper()
	var imgs []image.Image
	for i := 0; ; {
		j := bytes.Index(doc[i:], []byte{0xff, 0xd8, 0xff})
		if j < 0 {
			return imgs
		}
		i += j
		if img, err := jpeg.Decode(bytes.NewReader(doc[i:])); err == nil {
			imgs = append(imgs, img)
		}
		i += 3
	}
}

// pageCodes reads the page numbers simulated pages carry.
func pageCodes(imgs []image.Image, dpi int) []int {
	var codes []int
	for _, img := range imgs {
		codes = append(codes, scanner.PageCode(img, dpi))
	}
	return codes
}

func isColour(img image.Image) bool {
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return false
	}
	return true
}

func reason(err error) scan.Reason { return scan.ReasonOf(err) }
