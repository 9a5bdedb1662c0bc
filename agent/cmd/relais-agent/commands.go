package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/panel"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/agent/report"
	"github.com/relais-fr/relais/agent/statuspage"
	"github.com/relais-fr/relais/central/api"
)

// agentCommands runs the commands of central (refresh is the reporter's).
type agentCommands struct{ a *agent }

func (c agentCommands) Run(ctx context.Context, cmd api.Command) error {
	a := c.a
	switch cmd.Name {
	case api.CommandIdentify:
		d := panel.IdentifyDuration
		if cmd.Seconds > 0 {
			d = time.Duration(cmd.Seconds) * time.Second
		}
		a.panel.Identify(d)
		return nil
	case api.CommandTestPage:
		var doc bytes.Buffer
		if err := statuspage.Render(&doc, a.statusPageInfo(), locale.Supported[0]); err != nil {
			return err
		}
		_, err := a.queue.Submit(printq.Ticket{Name: "Relais test page", User: "relais", Format: "application/pdf", Source: api.SourceCentral}, &doc)
		return err
	case api.CommandCancelJobs:
		n := 0
		for _, j := range a.queue.Jobs() {
			if j.State.Terminal() {
				continue
			}
			if _, err := a.queue.Cancel(j.ID); err != nil {
				slog.Warn("cancel-jobs: a job could not be canceled", "job", j.ID, "err", err)
				continue
			}
			n++
		}
		slog.Info("cancel-jobs from central", "canceled", n)
		return nil
	case api.CommandPurgeScans:
		slog.Info("purge-scans from central", "deleted", a.inbox.DeleteAll())
		return nil
	}
	return report.PublicError(fmt.Sprintf("%s is not supported by this agent", cmd.Name))
}
