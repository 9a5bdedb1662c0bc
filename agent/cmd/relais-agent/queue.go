package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/message"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

// queueCommands serves the print-queue commands of the control socket:
// queue, release and cancel.
type queueCommands struct {
	q      *printq.Queue
	events interface {
		Recent(n int) ([]api.Event, error)
	}
}

func (c queueCommands) register(s *ctl.Server) {
	s.Handle("queue", c.list)
	s.Handle("release", c.release)
	s.Handle("cancel", c.cancel)
}

// jobLine is one job as `ctl queue --json` shows it. The job's name and
// user stay on the site, and a technician on the Pi may see them.
type jobLine struct {
	ID          int       `json:"id"`
	State       string    `json:"state"`
	Reasons     []string  `json:"reasons,omitempty"`
	Name        string    `json:"name"`
	User        string    `json:"user"`
	Source      string    `json:"source"`
	Bytes       int64     `json:"bytes"`
	Created     time.Time `json:"created"`
	HoldUntil   time.Time `json:"hold_until,omitzero"`
	Impressions int       `json:"impressions,omitempty"`
}

var stateNames = map[printq.State]string{
	printq.Pending: "pending", printq.Held: "held", printq.Processing: "processing", printq.Stopped: "stopped",
	printq.Canceled: "canceled", printq.Aborted: "aborted", printq.Completed: "completed",
}

func (c queueCommands) list(ctx context.Context, req ctl.Request) (string, any, error) {
	p := locale.Printer(locale.Match(req.Lang))
	jobs := c.q.Jobs()
	lines := make([]jobLine, 0, len(jobs))
	var b strings.Builder
	st := c.q.Printer()
	fmt.Fprintln(&b, p.Sprintf("printer: %s", printerWords(p, st)))
	waiting := 0
	for _, j := range jobs {
		lines = append(lines, jobLine{
			ID: j.ID, State: stateNames[j.State], Reasons: j.Reasons, Name: j.Name, User: j.User,
			Source: string(j.Source), Bytes: j.Size, Created: j.Created, HoldUntil: j.HoldUntil, Impressions: j.Impressions,
		})
		if j.State.Terminal() {
			continue
		}
		waiting++
		fmt.Fprintf(&b, "  %5d  %-10s %-24.24q %-12.12s %s\n", j.ID, p.Sprintf(stateNames[j.State]), j.Name, j.User, strings.Join(j.Reasons, ","))
	}
	fmt.Fprintln(&b, p.Sprintf("%d job(s) waiting, %d finished job(s) kept", waiting, len(jobs)-waiting))
	// The events recorded for central: counts only, never a name.
	events, err := c.events.Recent(10)
	if err != nil {
		return "", nil, err
	}
	fmt.Fprint(&b, p.Sprintf("last events for central:"))
	for _, e := range events {
		data, _ := json.Marshal(e)
		fmt.Fprintf(&b, "\n  %s", data)
	}
	return b.String(), lines, nil
}

func printerWords(p *message.Printer, st printq.PrinterStatus) string {
	if !st.Reachable {
		return p.Sprintf("unreachable")
	}
	state := map[int]string{3: "idle", 4: "printing", 5: "stopped"}[st.State]
	if len(st.Reasons) > 0 {
		return p.Sprintf(state) + " (" + strings.Join(st.Reasons, ", ") + ")"
	}
	return p.Sprintf(state)
}

// release releases one held job, or every held job with no argument or
// "all".
func (c queueCommands) release(ctx context.Context, req ctl.Request) (string, any, error) {
	p := locale.Printer(locale.Match(req.Lang))
	if len(req.Args) == 0 || req.Args[0] == "all" {
		n, err := c.q.ReleaseAll()
		if err != nil {
			return "", nil, err
		}
		return p.Sprintf("%d job(s) released", n), map[string]int{"released": n}, nil
	}
	id, err := jobID(p, req.Args)
	if err != nil {
		return "", nil, err
	}
	if _, err := c.q.Release(id); err != nil {
		return "", nil, fmt.Errorf("%s %d: %w", p.Sprintf("job"), id, err)
	}
	return p.Sprintf("job %d released", id), map[string]int{"released": 1}, nil
}

func (c queueCommands) cancel(ctx context.Context, req ctl.Request) (string, any, error) {
	p := locale.Printer(locale.Match(req.Lang))
	id, err := jobID(p, req.Args)
	if err != nil {
		return "", nil, err
	}
	if _, err := c.q.Cancel(id); err != nil {
		return "", nil, fmt.Errorf("%s %d: %w", p.Sprintf("job"), id, err)
	}
	return p.Sprintf("job %d canceled", id), map[string]int{"canceled": 1}, nil
}

func jobID(p *message.Printer, args []string) (int, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("%s", p.Sprintf("want one job number"))
	}
	id, err := strconv.Atoi(args[0])
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s", p.Sprintf("%q is not a job number", args[0]))
	}
	return id, nil
}
