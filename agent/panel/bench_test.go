package panel

import (
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// ackPin is an LED pin that says when it is written.
type ackPin struct {
	*gpiotest.Pin
	writes chan gpio.Level
}

func (a *ackPin) Out(l gpio.Level) error {
	err := a.Pin.Out(l)
	a.writes <- l
	return err
}

// BenchmarkPressToAcknowledge measures, in real time, how long the LED
// takes to change after the button's press edge reaches the pin: the edge
// is woken from WaitForEdge, debounced, and the flicker written. DESIGN
// wants under 20 ms; the p50, p99 and max are reported, and the benchmark
// fails if the p99 is above. An op is a whole press and release; the fake
// clock only moves the debounce and flicker windows on between presses.
func BenchmarkPressToAcknowledge(b *testing.B) {
	clock := clockwork.NewFakeClockAt(t0)
	button := &gpiotest.Pin{N: "GPIO27", Clock: clockwork.NewRealClock(), EdgesChan: make(chan gpio.Level)}
	led := &ackPin{Pin: &gpiotest.Pin{N: "GPIO17"}, writes: make(chan gpio.Level, 4)}
	p, err := New(Pins{Button: button, LED: led}, Options{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	<-led.writes // off at New
	<-led.writes // ready at Start
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		button.EdgesChan <- gpio.Low
		if l := <-led.writes; l != gpio.Low {
			b.Fatalf("LED went %v on a press, want the ready LED off", l)
		}
		lat = append(lat, time.Since(start))

		<-p.inputs[0].handled
		clock.Advance(time.Second) // past the debounce and the flicker
		p.Pattern()
		<-led.writes // ready again
		button.EdgesChan <- gpio.High
		<-p.inputs[0].handled
		clock.Advance(time.Second)
		<-p.Gestures()
	}
	b.StopTimer()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	if p99 >= 20*time.Millisecond {
		b.Errorf("p99 press-to-acknowledge %v, want < 20 ms", p99)
	}
}
