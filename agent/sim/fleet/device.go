package fleet

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// faultKind is a fault the simulated devices raise and clear.
type faultKind struct {
	device   api.Device
	code     string
	severity api.Severity
}

// The faults of the simulated devices: the printer runs out of paper, the
// scanner's feeder jams. Each is raised, then cleared at the next draw of
// the same fault for the same agent.
var (
	faultMediaEmpty = faultKind{api.DevicePrinter, "media-empty", api.SeverityFault}
	faultScanJam    = faultKind{api.DeviceScanner, "scanner-jam", api.SeverityFault}
)

// action is one thing that happens at a simulated site: a usage event, a
// fault toggled, or the Wi-Fi count of the next simulated day.
type action struct {
	a     *simAgent
	event api.Event  // a usage event, when fault is nil and day is false
	fault *faultKind // raise it if closed, clear it if open
	day   bool       // record wifi.daily for the agent's next simulated day
}

// drawAction draws what the next arrival is: with probability faultShare a
// fault toggled (media-empty three times in five, else scanner-jam), else
// a usage event. The mix of usage follows what a public access point sees:
// prints from the public PCs and from phones, copies, scans and button
// presses; counts only, as the contract requires.
func drawAction(rng *rand.Rand, faultShare float64) action {
	if rng.Float64() < faultShare {
		if rng.IntN(5) < 3 {
			return action{fault: &faultMediaEmpty}
		}
		return action{fault: &faultScanJam}
	}
	switch u := rng.IntN(100); {
	case u < 45:
		return action{event: drawPrint(rng)}
	case u < 60:
		pages := drawPages(rng, 0.5, 10)
		return action{event: api.Event{Type: api.EventCopyCompleted, Pages: new(pages), Sheets: new(pages),
			Color: new(rng.IntN(10) == 0), Duplex: new(false)}}
	case u < 75:
		pages := drawPages(rng, 0.45, 20)
		return action{event: api.Event{Type: api.EventScanCompleted, Pages: new(pages), Format: "application/pdf",
			Bytes: new(int64(pages) * (120_000 + rng.Int64N(280_000))), Color: new(rng.IntN(5) < 2), Duplex: new(false)}}
	default:
		g := api.GestureShort
		switch v := rng.IntN(100); {
		case v >= 97:
			g = api.GestureVeryLong
		case v >= 80:
			g = api.GestureLong
		}
		return action{event: api.Event{Type: api.EventButtonPressed, Gesture: g}}
	}
}

// drawPrint draws a print job: two in three from the public PCs (PDF,
// sometimes duplex), the others from phones (PWG raster or URF, simplex).
func drawPrint(rng *rand.Rand) api.Event {
	e := api.Event{Type: api.EventPrintCompleted, Source: api.SourcePC, Format: "application/pdf"}
	pages := drawPages(rng, 0.35, 40)
	duplex := false
	if rng.IntN(3) == 0 {
		e.Source = api.SourcePhone
		e.Format = "image/pwg-raster"
		if rng.IntN(2) == 0 {
			e.Format = "image/urf"
		}
	} else {
		duplex = pages > 1 && rng.IntN(10) < 3
	}
	sheets := pages
	if duplex {
		sheets = (pages + 1) / 2
	}
	e.Pages, e.Sheets, e.Duplex = new(pages), new(sheets), new(duplex)
	e.Color = new(rng.IntN(4) == 0)
	e.Bytes = new(int64(pages) * (20_000 + rng.Int64N(180_000)))
	return e
}

// drawPages draws a page count from 1 to most, geometric with parameter p:
// mostly one or two pages, sometimes a long document.
func drawPages(rng *rand.Rand, p float64, most int) int {
	n := 1
	for n < most && rng.Float64() > p {
		n++
	}
	return n
}

// device is the state of one site's simulated equipment, behind the
// metrics snapshots: a laser printer with one toner cartridge, a scanner
// with a document feeder, a Wi-Fi access point and the Pi itself.
type device struct {
	rng      *rand.Rand // the agent's own, for the metrics' small changes
	size     float64    // how busy the site is, 0.5 to 2: Wi-Fi visitors
	tonerCap int        // pages a cartridge prints
	used     int        // pages printed on the current cartridge
	clients  int        // Wi-Fi stations associated now
	channel  int
	day      string // local day of completed
	done     int    // print jobs completed that day
	booted   time.Time
	adf      bool
	tempC    float64
}

func newDevice(rng *rand.Rand, now time.Time) device {
	d := device{
		rng:      rng,
		size:     0.5 + 1.5*rng.Float64(),
		tonerCap: 2000 + 1000*rng.IntN(5),
		channel:  []int{1, 6, 11, 36, 44}[rng.IntN(5)],
		booted:   now.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))),
		tempC:    45 + 10*rng.Float64(),
	}
	d.used = rng.IntN(d.tonerCap)
	d.clients = rng.IntN(1 + int(8*d.size))
	return d
}

// use accounts for a usage event: toner spent by prints and copies (a
// cartridge is replaced when empty), jobs completed today.
func (d *device) use(e api.Event, today string) {
	if e.Type != api.EventPrintCompleted && e.Type != api.EventCopyCompleted || e.Pages == nil {
		return
	}
	d.used += *e.Pages
	if d.used >= d.tonerCap {
		d.used = 0 // the technician put a new cartridge in
	}
	if e.Type == api.EventPrintCompleted {
		if d.day != today {
			d.day, d.done = today, 0
		}
		d.done++
	}
}

// tonerLevel is the percentage left in the cartridge.
func (d *device) tonerLevel() int {
	return 100 - (100*d.used+d.tonerCap-1)/d.tonerCap
}

// visitors draws the distinct Wi-Fi visitors of one day.
func (d *device) visitors() int {
	mean := 10 + 40*d.size
	return int(mean * (0.6 + 0.8*d.rng.Float64()))
}

// metrics returns a snapshot of the equipment; it moves the Wi-Fi clients
// and the temperatures a little, as time passes between snapshots.
func (d *device) metrics(now time.Time, today string, faults []api.Fault) api.Metrics {
	top := 1 + int(12*d.size)
	d.clients = min(max(d.clients+d.rng.IntN(5)-2, 0), top)
	d.tempC = min(max(d.tempC+d.rng.Float64()-0.5, 40), 70)
	if d.rng.IntN(10) == 0 {
		d.adf = !d.adf
	}
	p := &api.Printer{State: api.PrinterIdle, Markers: []api.Marker{{
		Name: "Black Toner Cartridge", Kind: "toner-cartridge", Color: "#000000", Level: d.tonerLevel(),
	}}}
	s := &api.Scanner{State: api.ScannerIdle, ADFLoaded: d.adf}
	for _, f := range faults {
		switch f.Code {
		case faultMediaEmpty.code:
			p.State = api.PrinterStopped
			p.Reasons = append(p.Reasons, f.Code)
		case faultScanJam.code:
			s.State = api.ScannerStopped
		}
	}
	done := d.done
	if d.day != today {
		done = 0
	}
	temp := float64(int(d.tempC*10)) / 10
	const gib = 1 << 30
	return api.Metrics{
		Printer: p,
		Queue:   &api.Queue{CompletedToday: done},
		Scanner: s,
		WiFi:    &api.WiFi{Up: true, SSID: "Relais-Public", Channel: d.channel, Clients: d.clients},
		Host: &api.Host{
			CPUTempC:          &temp,
			DiskFreeBytes:     20*gib + d.rng.Int64N(gib),
			DiskTotalBytes:    29 * gib,
			MemAvailableBytes: 1*gib + d.rng.Int64N(gib/2),
			MemTotalBytes:     2 * gib,
			UptimeS:           int64(now.Sub(d.booted) / time.Second),
			Load1:             float64(d.rng.IntN(150)) / 100,
			ClockSynced:       true,
		},
	}
}

// hasFault reports whether faults holds k.
func hasFault(faults []api.Fault, k faultKind) bool {
	return slices.ContainsFunc(faults, func(f api.Fault) bool { return f.Device == k.device && f.Code == k.code })
}
