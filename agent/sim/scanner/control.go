package scanner

import (
	"github.com/relais-fr/relais/agent/sim/control"

	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// MaxControlBytes bounds a request to the control endpoint.
const MaxControlBytes = control.MaxBytes

// MaxCount bounds the counts of jam N and not-ready N.
const MaxCount = 1000

// ControlHelp describes the control language, for --help.
const ControlHelp = `Control commands (one per line; POST them to the control address,
e.g. curl -d 'adf 3' http://127.0.0.1:8634/ ; GET it for the state):
  adf N                load N sheets in the feeder (0: empty)
  jam [on|off|N]       feeder jammed now (ScannerAdfJam; feeder jobs are aborted),
                       cleared, or jamming at the Nth next sheet fed
  open [on|off]        the feeder's door is open (ScannerAdfDoorOpen)
  busy [on|off]        another user holds the scanner: ScanJobs answers 503
  down [on|off]        scanner down: State Down, ScanJobs and NextDocument answer 503
  offline [on|off]     stop listening: connections are refused
  online               same as offline off
  not-ready N          the next N NextDocument requests answer 503
  clear                no fault
  status               the state, as JSON
`

// Command applies one line of the control language (see ControlHelp) and
// returns the scanner's status after it.
func (s *Scanner) Command(line string) (Status, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return s.Status(), errors.New("empty command")
	}
	faults := s.Faults()
	on := func() (bool, error) { return control.Switch(f) }
	count := func() (int, error) {
		if len(f) != 2 {
			return 0, fmt.Errorf("%s: want a number", f[0])
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 || n > MaxCount {
			return 0, fmt.Errorf("%s: %q is not a number from 0 to %d", f[0], f[1], MaxCount)
		}
		return n, nil
	}
	var err error
	switch f[0] {
	case "adf":
		var n int
		if n, err = count(); err == nil {
			err = s.LoadADF(n)
		}
		return s.Status(), err
	case "jam":
		if len(f) == 2 && f[1] != "on" && f[1] != "off" {
			var n int
			if n, err = count(); err == nil {
				faults.JamAt = n
			}
			break
		}
		faults.Jam, err = on()
		if !faults.Jam {
			faults.JamAt = 0
		}
	case "open":
		faults.Open, err = on()
	case "busy":
		faults.Busy, err = on()
	case "down":
		faults.Down, err = on()
	case "offline":
		faults.Offline, err = on()
	case "online":
		faults.Offline = false
	case "not-ready":
		faults.NotReady, err = count()
	case "clear":
		faults = Faults{}
	case "status":
		return s.Status(), nil
	default:
		return s.Status(), fmt.Errorf("unknown command %q (want adf, jam, open, busy, down, offline, online, not-ready, clear or status)", f[0])
	}
	if err == nil {
		err = s.SetFaults(faults)
	}
	return s.Status(), err
}

// ControlHandler returns the control endpoint (see package control): GET
// answers the status as JSON; POST applies the commands of its body, one
// per line.
func (s *Scanner) ControlHandler() http.Handler {
	return control.Handler(s.Status, s.Command)
}
