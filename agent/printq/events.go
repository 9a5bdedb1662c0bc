package printq

import (
	"regexp"
	"strings"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
)

// Patterns of the wire contract (central/api) the queue's values must match.
var (
	keywordRe   = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,62}$`)
	faultCodeRe = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	mimeRe      = regexp.MustCompile(`^[a-z]{1,32}/[a-z0-9][a-z0-9.+_-]{0,63}$`)
)

// maxCount is the contract's bound of pages and sheets.
const maxCount = 100000

// usageEvent is the event that reports a terminal job: counts only, never
// a name. Callers hold q.mu.
func (q *Queue) usageEvent(e *entry) api.Event {
	pages := min(max(e.Impressions, 0), maxCount)
	ev := api.Event{Pages: &pages}
	if s := e.Sheets; s > 0 && s <= pages {
		ev.Sheets = &s
	}
	ev.Color, ev.Duplex = q.colorDuplex(e.Template)
	if e.State == Completed && e.Source == api.SourceCopy {
		ev.Type = api.EventCopyCompleted
		return ev
	}
	switch e.State {
	case Completed:
		ev.Type = api.EventPrintCompleted
	case Aborted:
		ev.Type = api.EventPrintFailed
		ev.Reason = "aborted-by-system"
	default:
		ev.Type = api.EventPrintCanceled
	}
	if keywordRe.MatchString(e.outcome) {
		ev.Reason = e.outcome
	}
	ev.Source = e.Source
	if ev.Source == "" {
		ev.Source = api.SourcePC
	}
	size := e.Size
	ev.Bytes = &size
	ev.Format = mimeType(e.Format)
	return ev
}

// mimeType is a document-format as the contract takes it (lowercase, no
// parameters), or "" when it cannot be.
func mimeType(f string) string {
	f, _, _ = strings.Cut(f, ";")
	f = strings.ToLower(strings.TrimSpace(f))
	if mimeRe.MatchString(f) {
		return f
	}
	return ""
}

// colorDuplex tells from a job template, or else from the printer's
// defaults, whether a job printed in colour and on both sides; nil when it
// cannot be told. Callers hold q.mu.
func (q *Queue) colorDuplex(tmpl goipp.Attributes) (color, duplex *bool) {
	mode := keyword(tmpl, "print-color-mode")
	if mode == "" || mode == "auto" {
		mode = keyword(q.printer.Attrs, "print-color-mode-default")
	}
	switch mode {
	case "color", "process-color":
		color = new(true)
	case "monochrome", "process-monochrome", "auto-monochrome", "bi-level", "process-bi-level":
		color = new(false)
	default:
		if v := upstream.Find(q.printer.Attrs, "color-supported"); len(v) > 0 {
			if b, ok := v[0].V.(goipp.Boolean); ok && !bool(b) {
				color = new(false)
			}
		}
	}
	sides := keyword(tmpl, "sides")
	if sides == "" {
		sides = keyword(q.printer.Attrs, "sides-default")
	}
	switch {
	case sides == "one-sided":
		duplex = new(false)
	case strings.HasPrefix(sides, "two-sided"):
		duplex = new(true)
	}
	return color, duplex
}

// keyword returns the first value of an attribute as a string, or "".
func keyword(attrs goipp.Attributes, name string) string {
	if v := upstream.Find(attrs, name); len(v) > 0 {
		return v[0].V.String()
	}
	return ""
}
