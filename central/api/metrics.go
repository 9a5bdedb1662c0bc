package api

import "time"

// PrinterState is the IPP printer-state of the site printer.
type PrinterState string

// PrinterState values.
const (
	PrinterIdle       PrinterState = "idle"
	PrinterProcessing PrinterState = "processing"
	PrinterStopped    PrinterState = "stopped"
	PrinterUnknown    PrinterState = "unknown" // unreachable or not reported
)

// ScannerState is the scanner's state (eSCL pwg:State, or the SANE driver's view).
type ScannerState string

// ScannerState values.
const (
	ScannerIdle       ScannerState = "idle"
	ScannerProcessing ScannerState = "processing"
	ScannerTesting    ScannerState = "testing"
	ScannerStopped    ScannerState = "stopped"
	ScannerDown       ScannerState = "down"
	ScannerUnknown    ScannerState = "unknown"
)

// Marker levels with a special meaning, as in IPP marker-levels.
const (
	MarkerLevelUnavailable = -1 // the printer cannot report the level
	MarkerLevelUnknown     = -2 // the level is unknown
	MarkerLevelSome        = -3 // some remains, the amount is unknown
)

// Metrics is the periodic snapshot on the metrics topic (QoS 0). Only Time is
// required: a site may have no scanner or no Wi-Fi, and a part that could not
// be read is left out.
type Metrics struct {
	Time    time.Time `json:"ts"`
	Printer *Printer  `json:"printer,omitempty"`
	Queue   *Queue    `json:"queue,omitempty"`
	Scanner *Scanner  `json:"scanner,omitempty"`
	WiFi    *WiFi     `json:"wifi,omitempty"`
	Host    *Host     `json:"host,omitempty"`
}

// Printer is the state of the site printer.
type Printer struct {
	State PrinterState `json:"state"`
	// Reasons are IPP printer-state-reasons keywords with any -report,
	// -warning or -error suffix stripped, such as "media-empty".
	Reasons []string `json:"reasons,omitempty"`
	Markers []Marker `json:"markers,omitempty"`
}

// Marker is one supply (toner, ink, drum) of the printer.
type Marker struct {
	Name  string `json:"name"`            // as the printer names it, such as "Black Toner"
	Kind  string `json:"kind"`            // IPP marker-types keyword, such as "toner-cartridge"
	Color string `json:"color,omitempty"` // "#rrggbb" (repeated for multi-colour) or a keyword
	// Level is the percentage left, 0-100, or MarkerLevelUnavailable,
	// MarkerLevelUnknown or MarkerLevelSome.
	Level int `json:"level"`
}

// Queue counts the agent's print jobs.
type Queue struct {
	Pending        int `json:"pending"`         // accepted, waiting for the printer
	Held           int `json:"held"`            // waiting for release
	Processing     int `json:"processing"`      // being sent to the printer
	CompletedToday int `json:"completed_today"` // completed since local midnight
}

// Scanner is the state of the site scanner.
type Scanner struct {
	State     ScannerState `json:"state"`
	ADFLoaded bool         `json:"adf_loaded"`
}

// WiFi is the state of the site's access point.
type WiFi struct {
	Up      bool   `json:"up"`
	SSID    string `json:"ssid,omitempty"`
	Channel int    `json:"channel,omitempty"`
	Clients int    `json:"clients"` // stations associated now
}

// Host is the state of the agent's computer.
type Host struct {
	CPUTempC *float64 `json:"cpu_temp_c,omitempty"`
	// Throttled lists the active or past throttling conditions, such as
	// "under-voltage" or "soft-temp-limit-occurred"; empty when none.
	Throttled         []string `json:"throttled,omitempty"`
	DiskFreeBytes     int64    `json:"disk_free_bytes"`
	DiskTotalBytes    int64    `json:"disk_total_bytes"`
	MemAvailableBytes int64    `json:"mem_available_bytes"`
	MemTotalBytes     int64    `json:"mem_total_bytes"`
	UptimeS           int64    `json:"uptime_s"`
	Load1             float64  `json:"load1"`
	ClockSynced       bool     `json:"clock_synced"`
}

// Validate reports whether m satisfies the contract.
func (m Metrics) Validate() error { return m.validate("") }

func (m Metrics) validate(path string) error { return checkStruct(path, m) }

// Validate reports whether p satisfies the contract.
func (p Printer) Validate() error { return p.validate("") }

func (p Printer) validate(path string) error { return checkStruct(path, p) }

// Validate reports whether m satisfies the contract.
func (m Marker) Validate() error { return m.validate("") }

func (m Marker) validate(path string) error { return checkStruct(path, m) }

// Validate reports whether q satisfies the contract.
func (q Queue) Validate() error { return q.validate("") }

func (q Queue) validate(path string) error { return checkStruct(path, q) }

// Validate reports whether s satisfies the contract.
func (s Scanner) Validate() error { return s.validate("") }

func (s Scanner) validate(path string) error { return checkStruct(path, s) }

// Validate reports whether w satisfies the contract.
func (w WiFi) Validate() error { return w.validate("") }

func (w WiFi) validate(path string) error { return checkStruct(path, w) }

// Validate reports whether h satisfies the contract.
func (h Host) Validate() error { return h.validate("") }

func (h Host) validate(path string) error {
	if err := checkStruct(path, h); err != nil {
		return err
	}
	if h.DiskFreeBytes > h.DiskTotalBytes {
		return invalid(join(path, "disk_free_bytes"), "must be <= disk_total_bytes")
	}
	if h.MemAvailableBytes > h.MemTotalBytes {
		return invalid(join(path, "mem_available_bytes"), "must be <= mem_total_bytes")
	}
	return nil
}
