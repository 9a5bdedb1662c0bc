package hostinfo

import (
	"errors"

	"github.com/relais-fr/relais/central/api"
)

// Fault codes of device host.
const (
	FaultDiskFull             = "disk-full"              // fault: free < DiskFullBytes
	FaultDiskLow              = "disk-low"               // warn: free < DiskLowPercent of the disk
	FaultUnderVoltage         = "under-voltage"          // fault: the supply is too weak now
	FaultUnderVoltageOccurred = "under-voltage-occurred" // warn: it was, since boot
	FaultCPUHot               = "cpu-hot"                // warn: CPU ≥ HotC, until below CoolC
	FaultClockUnsynced        = "clock-unsynced"         // warn: not synchronised after ClockGraceS of uptime
)

// Thresholds of Check.
const (
	DiskFullBytes  = 200 << 20
	DiskLowPercent = 5
	HotC           = 80.0
	CoolC          = 75.0 // hysteresis: cpu-hot clears below this
	ClockGraceS    = 600  // NTP gets a few minutes after boot
)

// Faults opens and closes faults; *outbox.Outbox implements it.
type Faults interface {
	Raise(device api.Device, code string, severity api.Severity) error
	Clear(device api.Device, code string) error
}

// Checker turns host readings into faults of device host. Each fault is
// raised once when its condition starts and cleared once when it ends; the
// first Check settles every code (clearing faults a previous run left
// open). A Checker is used by one goroutine.
type Checker struct {
	faults Faults
	open   map[string]bool // code → raised (true) or cleared (false) by us
}

// NewChecker returns a Checker that reports through f.
func NewChecker(f Faults) *Checker {
	return &Checker{faults: f, open: map[string]bool{}}
}

// Check raises and clears the host faults for h. A part that was not read
// (disk total 0, no temperature) leaves its faults as they are. A failed
// Raise or Clear is returned and retried at the next Check.
func (c *Checker) Check(h api.Host) error {
	var errs []error
	set := func(code string, sev api.Severity, on bool) {
		if was, known := c.open[code]; known && was == on {
			return
		}
		var err error
		if on {
			err = c.faults.Raise(api.DeviceHost, code, sev)
		} else {
			err = c.faults.Clear(api.DeviceHost, code)
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		c.open[code] = on
	}

	if h.DiskTotalBytes > 0 {
		full := h.DiskFreeBytes < DiskFullBytes
		low := !full && h.DiskFreeBytes*100 < h.DiskTotalBytes*DiskLowPercent
		set(FaultDiskFull, api.SeverityFault, full)
		set(FaultDiskLow, api.SeverityWarn, low)
	}

	var uvNow, uvPast bool
	for _, f := range h.Throttled {
		switch f {
		case "under-voltage":
			uvNow = true
		case "under-voltage-occurred":
			uvPast = true
		}
	}
	set(FaultUnderVoltage, api.SeverityFault, uvNow)
	set(FaultUnderVoltageOccurred, api.SeverityWarn, uvPast && !uvNow)

	if t := h.CPUTempC; t != nil {
		hot := *t >= HotC || (c.open[FaultCPUHot] && *t >= CoolC)
		set(FaultCPUHot, api.SeverityWarn, hot)
	}

	if h.UptimeS >= ClockGraceS || h.ClockSynced {
		set(FaultClockUnsynced, api.SeverityWarn, !h.ClockSynced)
	}
	return errors.Join(errs...)
}
