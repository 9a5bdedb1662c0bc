package api

import (
	"fmt"
	"time"
)

// Health is an agent's overall state, the worst of its devices.
type Health string

// Health values.
const (
	HealthOK    Health = "ok"
	HealthWarn  Health = "warn"
	HealthFault Health = "fault"
)

// Device is the part of a site a fault is about.
type Device string

// Device values.
const (
	DevicePrinter Device = "printer"
	DeviceScanner Device = "scanner"
	DeviceWiFi    Device = "wifi"
	DeviceHost    Device = "host"
	DeviceAgent   Device = "agent"
)

// Severity is how bad a fault is: SeverityFault needs staff, SeverityWarn
// does not yet (toner low, clock not synced).
type Severity string

// Severity values.
const (
	SeverityWarn  Severity = "warn"
	SeverityFault Severity = "fault"
)

// Status is the retained payload of the status topic. An online agent sets
// Online, Time, Version and Health; the MQTT will (see OfflineWill) holds only
// "online": false. Health is at least as severe as every listed fault, and a
// fault (device and code) is listed once.
type Status struct {
	Online  bool      `json:"online"`
	Time    time.Time `json:"ts,omitzero"`
	Version string    `json:"version,omitempty"`
	Health  Health    `json:"health,omitempty"`
	Faults  []Fault   `json:"faults,omitempty"`
}

// Fault is one open problem of a device. It is raised once, cleared once, and
// keeps the time it started.
type Fault struct {
	// Code names the problem, such as "media-empty" or "scanner-unreachable".
	Code     string    `json:"code"`
	Device   Device    `json:"device"`
	Severity Severity  `json:"severity"`
	Since    time.Time `json:"since"`
}

// offlineWill is the exact payload of the MQTT will; a test checks that it is
// the encoding of Status{Online: false}.
const offlineWill = `{"online":false}`

// OfflineWill returns the payload an agent registers as its MQTT will on the
// status topic (QoS 1, retained): {"online":false}.
func OfflineWill() []byte { return []byte(offlineWill) }

// Validate reports whether s satisfies the contract.
func (s Status) Validate() error { return s.validate("") }

func (s Status) validate(path string) error {
	if err := checkStruct(path, s); err != nil {
		return err
	}
	if s.Health != "" {
		for i, f := range s.Faults {
			if rank(f.Severity) > rank(s.Health) {
				return invalid(join(path, "health"), fmt.Sprintf("must not be less severe than faults[%d].severity", i))
			}
		}
	}
	for i, f := range s.Faults {
		for j := range i {
			if s.Faults[j].Device == f.Device && s.Faults[j].Code == f.Code {
				return invalid(fmt.Sprintf("%s[%d]", join(path, "faults"), i), fmt.Sprintf("duplicates faults[%d]", j))
			}
		}
	}
	return nil
}

// rank orders health and severity values from ok (0) to fault (2).
func rank[T ~string](v T) int {
	switch string(v) {
	case "warn":
		return 1
	case "fault":
		return 2
	}
	return 0
}

// Validate reports whether f satisfies the contract.
func (f Fault) Validate() error { return f.validate("") }

func (f Fault) validate(path string) error { return checkStruct(path, f) }
