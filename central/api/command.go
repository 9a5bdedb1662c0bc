package api

import (
	"fmt"
	"slices"
)

// Command names, the last level of a cmd/{name} topic.
const (
	CommandIdentify   = "identify"    // blink the LED (8 Hz), for Seconds or 10 s
	CommandTestPage   = "test-page"   // print a test page
	CommandCancelJobs = "cancel-jobs" // cancel every queued and held job
	CommandPurgeScans = "purge-scans" // delete every scan of the inbox
	CommandRefresh    = "refresh"     // publish status and metrics now
)

var commands = []string{CommandIdentify, CommandTestPage, CommandCancelJobs, CommandPurgeScans, CommandRefresh}

// ValidCommand reports whether name is one of the Command constants.
func ValidCommand(name string) bool { return slices.Contains(commands, name) }

// Commands returns every command name, in the contract's order.
func Commands() []string { return slices.Clone(commands) }

// Ack is the payload of the ack topic: central has committed every event of
// the agent up to and including sequence number Upto.
type Ack struct {
	Upto uint64 `json:"upto"`
}

// Validate reports whether a satisfies the contract.
func (a Ack) Validate() error { return a.validate("") }

func (a Ack) validate(path string) error { return checkStruct(path, a) }

// Command is a request from central to an agent, published on
// cmd/{Name}. Name is carried by the topic, not the payload.
type Command struct {
	Name string `json:"-"`
	// Req identifies the request; the agent echoes it in its CommandResult.
	Req string `json:"req"`
	// Seconds is how long to identify (CommandIdentify only); 0 means the
	// agent's default.
	Seconds int `json:"seconds,omitempty"`
}

// Validate reports whether c satisfies the contract.
func (c Command) Validate() error { return c.validate("") }

func (c Command) validate(path string) error {
	if !ValidCommand(c.Name) {
		return invalid(path, "unknown command "+quoteClipped(c.Name))
	}
	if err := checkStruct(path, c); err != nil {
		return err
	}
	if c.Seconds != 0 && c.Name != CommandIdentify {
		return invalid(join(path, "seconds"), fmt.Sprintf("not allowed for command %s", c.Name))
	}
	return nil
}

// CommandResult is an agent's reply on cmd-result. When OK is false, Error
// says why, in a short printable message for the technician.
type CommandResult struct {
	Req   string `json:"req"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Validate reports whether r satisfies the contract.
func (r CommandResult) Validate() error { return r.validate("") }

func (r CommandResult) validate(path string) error { return checkStruct(path, r) }
