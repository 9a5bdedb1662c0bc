package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/OpenPrinting/goipp"
)

// outcome is what a submission got from the agent.
type outcome int

const (
	accepted outcome = iota // successful-ok: the agent owes the print
	refused                 // an IPP error status: the agent owes nothing
	down                    // connection refused: the agent was not running
	unknown                 // no answer: the job may or may not be spooled
)

// ledger is what one site's traffic asked for and got, from the client's
// side.
type ledger struct {
	mu       sync.Mutex
	outcomes map[string]outcome   // by mark
	statuses map[goipp.Status]int // refusals by IPP status
	fullDisk map[string]string    // submissions made while the disk was full: mark → outcome
	presses  map[string]int       // gestures the agent took, by gesture
	pressErr int                  // presses that found the agent away
	next     int                  // next mark number
}

// newLedger returns an empty ledger.
func newLedger() *ledger {
	return &ledger{outcomes: map[string]outcome{}, statuses: map[goipp.Status]int{},
		fullDisk: map[string]string{}, presses: map[string]int{}}
}

// mark returns a new mark for a submission of the site.
func (l *ledger) mark(agentID, kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return fmt.Sprintf("%s-%s-%d", agentID, kind, l.next)
}

// record notes what the submission of mark got.
func (l *ledger) record(mark string, o outcome, st goipp.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes[mark] = o
	if o == refused {
		l.statuses[st]++
	}
}

// describe names an outcome for the report: its IPP status if refused.
func describe(o outcome, st goipp.Status) string {
	switch o {
	case accepted:
		return "accepted"
	case refused:
		return st.String()
	case down:
		return "agent down"
	}
	return "no answer"
}

// pace says how often each site prints, and presses the button.
type pace struct {
	print, press time.Duration
}

// printLoop submits marked PDFs to the site's agent, one every p.print,
// until ctx ends; a submission under way is finished first.
func (s *site) printLoop(ctx context.Context, p pace) {
	for ctx.Err() == nil {
		mark := s.ledger.mark(s.agentID, "job")
		o, st := submit(s.ippURI, markedPDF(mark))
		s.ledger.record(mark, o, st)
		select {
		case <-ctx.Done():
		case <-time.After(p.print): // the scenario's pace
		}
	}
}

// pressLoop makes copies (short press) and scans (long press) in turn, one
// sheet in the feeder each time, until ctx ends. After each press it waits,
// at most 15 s, until the scanner has taken the sheet and finished, so that
// the next press does not find the agent busy.
func (s *site) pressLoop(ctx context.Context, p pace) {
	for i := 0; ctx.Err() == nil; i++ {
		gesture := "short"
		if i%2 == 1 {
			gesture = "long"
		}
		if err := s.scanner.LoadADF(1); err != nil {
			panic(err) // the built-in scanner has a feeder
		}
		err := s.ctl("press", nil, gesture)
		s.ledger.mu.Lock()
		if err != nil {
			s.ledger.pressErr++
		} else {
			s.ledger.presses[gesture]++
		}
		s.ledger.mu.Unlock()
		if err == nil {
			pollUntil(15*time.Second, func() bool {
				st := s.scanner.Status()
				return ctx.Err() != nil || st.ADF == 0 && st.Active == 0
			}, nil)
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.press): // the scenario's pace
		}
	}
}
