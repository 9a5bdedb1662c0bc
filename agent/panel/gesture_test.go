package panel

import (
	"fmt"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// TestReleaseAroundVeryLong checks the order of a release edge and the very
// long threshold when the clock is only read after both (a busy Pi): a
// release that started before 10 s is long even if confirmed after it.
func TestReleaseAroundVeryLong(t *testing.T) {
	for _, tc := range []struct {
		release time.Duration
		want    string
	}{
		{10*time.Second - 10*ms, "[{long 9.99s}]"},
		{10 * time.Second, "[{verylong 10s}]"},
		{10*time.Second + 10*ms, "[{verylong 10s}]"},
	} {
		d := newDetector(DefaultDebounce, DefaultThresholds(), gpio.High)
		if !d.edge(t0, gpio.Low) {
			t.Fatal("press edge not reported for acknowledgement")
		}
		d.advance(t0.Add(DefaultDebounce))
		d.edge(t0.Add(tc.release), gpio.High)
		var got []string
		for _, o := range d.advance(t0.Add(time.Minute)) {
			got = append(got, fmt.Sprintf("{%s %v}", o.gesture, o.held))
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("release at %v: %v, want %s", tc.release, got, tc.want)
		}
		if _, ok := d.next(); ok {
			t.Errorf("release at %v: still a deadline after the release", tc.release)
		}
	}
}

func TestDetectorNext(t *testing.T) {
	d := newDetector(DefaultDebounce, DefaultThresholds(), gpio.High)
	if _, ok := d.next(); ok {
		t.Error("idle detector has a deadline")
	}
	d.edge(t0, gpio.Low)
	if n, _ := d.next(); !n.Equal(t0.Add(DefaultDebounce)) {
		t.Errorf("pending press: next %v, want the end of the debounce window", n.Sub(t0))
	}
	d.advance(t0.Add(DefaultDebounce))
	if n, _ := d.next(); !n.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("held: next %v, want the very long threshold", n.Sub(t0))
	}
}
