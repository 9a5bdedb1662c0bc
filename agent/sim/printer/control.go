package printer

import (
	"github.com/relais-fr/relais/agent/sim/control"

	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxControlBytes bounds a request to the control endpoint.
const MaxControlBytes = control.MaxBytes

// MaxSlow bounds the time a slow printer takes per job.
const MaxSlow = time.Hour

// ControlHelp describes the control language, for --help.
const ControlHelp = `Control commands (one per line; POST them to the control address,
e.g. curl -d 'media-empty on' http://127.0.0.1:8632/ ; GET it for the state):
  media-empty [on|off]   out of paper: jobs wait, printer stopped (media-empty-error)
  refill                 same as media-empty off
  media-jam [on|off]     paper jam: jobs wait, printer stopped (media-jam-error)
  offline [on|off]       stop listening: connections are refused
  online                 same as offline off
  busy [on|off]          job submissions answer server-error-busy
  slow DURATION          each job takes DURATION (5, 5s, 1m30s; 0 for none)
  clear                  no fault
  status                 the state, as JSON
`

// Command applies one line of the control language (see ControlHelp) and
// returns the printer's status after it.
func (p *Printer) Command(line string) (Status, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return p.Status(), errors.New("empty command")
	}
	faults := p.Faults()
	on := func() (bool, error) { return control.Switch(f) }
	var err error
	switch f[0] {
	case "media-empty":
		faults.MediaEmpty, err = on()
	case "refill":
		faults.MediaEmpty = false
	case "media-jam":
		faults.MediaJam, err = on()
	case "offline":
		faults.Offline, err = on()
	case "online":
		faults.Offline = false
	case "busy":
		faults.Busy, err = on()
	case "slow":
		if len(f) != 2 {
			return p.Status(), errors.New("slow: want a duration, such as 5s")
		}
		faults.Slow, err = parseSlow(f[1])
	case "clear":
		faults = Faults{}
	case "status":
		return p.Status(), nil
	default:
		return p.Status(), fmt.Errorf("unknown command %q (want media-empty, refill, media-jam, offline, online, busy, slow, clear or status)", f[0])
	}
	if err == nil {
		err = p.SetFaults(faults)
	}
	return p.Status(), err
}

// parseSlow accepts whole seconds or a Go duration, up to MaxSlow.
func parseSlow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.Atoi(s); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("slow: %q is not a duration such as 5s", s)
	case d < 0 || d > MaxSlow:
		return 0, fmt.Errorf("slow: %v is not between 0 and %v", d, MaxSlow)
	}
	return d, nil
}

// ControlHandler returns the control endpoint (see package control): GET
// answers the status as JSON; POST applies the commands of its body, one
// per line.
func (p *Printer) ControlHandler() http.Handler {
	return control.Handler(p.Status, p.Command)
}
