package printq

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/api"
)

// Printer monitoring timings.
const (
	// failRepoll is the poll interval after a failed poll, so that a second
	// failure, which raises printer-unreachable, comes soon.
	failRepoll = time.Second
	// unreachableAfter raises printer-unreachable on a failed poll when the
	// last successful one is older than this: with a 5 s poll, a 3 s poll
	// timeout and failRepoll, the fault is raised within 10 s of the
	// printer failing.
	unreachableAfter = 8 * time.Second
	pollTimeout      = 3 * time.Second
	fullTimeout      = 20 * time.Second
	maxReasons       = 32
	maxMarkers       = 16
)

// FaultUnreachable is the fault code raised when the printer does not
// answer.
const FaultUnreachable = "printer-unreachable"

// stateAttrs are the attributes of the frequent poll.
var stateAttrs = []string{
	"printer-state", "printer-state-reasons", "printer-is-accepting-jobs",
	"marker-names", "marker-types", "marker-colors", "marker-levels",
}

// health is the monitor's view of the printer, beyond PrinterStatus.
type health struct {
	polled    bool      // asked at least once in this Run
	accepting bool      // printer-is-accepting-jobs
	failures  int       // consecutive failed polls
	lastOK    time.Time // last successful poll, or the start of Run
	fullOK    bool      // the full attribute set was read in this Run
	lastFull  time.Time
	blocking  []string // fault reasons that keep jobs from being sent
	key       string   // readiness, to tell its changes
}

// monitor polls the printer and does the queue's timed work (hold expiry,
// incoming jobs' timeout, retrying events) every PollInterval.
func (q *Queue) monitor(ctx context.Context) {
	for {
		d := q.cfg.PollInterval
		if q.ipp != nil && !q.pollPrinter(ctx) {
			d = min(d, failRepoll)
		}
		if ctx.Err() != nil {
			return
		}
		q.housekeep()
		t := q.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// pollPrinter asks the printer for its state, or for all its attributes at
// the start of Run and every RefreshInterval, and raises or clears faults.
// It reports whether the printer answered.
func (q *Queue) pollPrinter(ctx context.Context) bool {
	q.mu.Lock()
	now := q.clock.Now()
	full := !q.health.fullOK || !now.Before(q.health.lastFull.Add(q.cfg.RefreshInterval))
	q.mu.Unlock()
	names, timeout := stateAttrs, pollTimeout
	if full {
		names, timeout = nil, fullTimeout
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	attrs, err := q.ipp.PrinterAttributes(opCtx, names...)
	cancel()
	if ctx.Err() != nil {
		return true
	}

	q.mu.Lock()
	now = q.clock.Now()
	h := &q.health
	var save goipp.Attributes
	var desired map[string]api.Severity
	if err != nil {
		h.failures++
		if h.failures == 1 {
			q.log.Warn("printer does not answer", "err", err)
		}
		q.printer.Reachable = false
		desired = maps.Clone(q.st.Faults)
		if desired == nil {
			desired = map[string]api.Severity{}
		}
		if h.failures >= 2 || now.Sub(h.lastOK) >= unreachableAfter {
			desired[FaultUnreachable] = api.SeverityFault
		}
	} else {
		if h.failures > 0 {
			q.log.Info("printer answers again")
		}
		h.failures, h.lastOK = 0, now
		q.printer.Reachable, q.printer.Updated = true, now
		desired = q.applyState(attrs)
		if full {
			h.fullOK, h.lastFull = true, now
			if !sameCapabilities(q.printer.Attrs, attrs) {
				save = attrs
			}
			q.printer.Attrs = attrs
		}
	}
	h.polled = true
	q.readinessChanged()
	q.mu.Unlock()

	if save != nil {
		if err := q.savePrinterAttrs(save); err != nil {
			q.log.Error("saving the printer's attributes", "err", err)
		}
	}
	q.syncFaults(desired)
	return err == nil
}

// applyState takes the printer's state, reasons and markers from attrs and
// returns the faults its reasons make. Callers hold q.mu.
func (q *Queue) applyState(attrs goipp.Attributes) map[string]api.Severity {
	p := &q.printer
	p.State = intAttr(attrs, "printer-state")
	p.Reasons = p.Reasons[:0:0]
	q.health.blocking = nil
	faults := map[string]api.Severity{}
	for _, v := range upstream.Find(attrs, "printer-state-reasons") {
		raw := strings.ToLower(v.V.String())
		if r := stripSeverity(raw); r != "none" && r != "" && !slices.Contains(p.Reasons, r) && len(p.Reasons) < maxReasons {
			p.Reasons = append(p.Reasons, r)
		}
		code, sev, ok := classifyReason(raw)
		if !ok {
			continue
		}
		if faults[code] != api.SeverityFault {
			faults[code] = sev
		}
		if sev == api.SeverityFault && blockingReasons[code] != "" && !slices.Contains(q.health.blocking, code) {
			q.health.blocking = append(q.health.blocking, code)
		}
	}
	q.health.accepting = true
	if v := upstream.Find(attrs, "printer-is-accepting-jobs"); len(v) > 0 {
		if b, ok := v[0].V.(goipp.Boolean); ok {
			q.health.accepting = bool(b)
		}
	}
	p.Markers = markers(attrs)
	return faults
}

// readinessChanged wakes a forwarder waiting for the printer when its
// readiness changed. Callers hold q.mu.
func (q *Queue) readinessChanged() {
	h := &q.health
	key := fmt.Sprint(h.polled, q.printer.Reachable, q.printer.State, h.accepting, h.blocking)
	if key == h.key {
		return
	}
	h.key = key
	close(q.pchange)
	q.pchange = make(chan struct{})
}

// notReady tells whether the printer is fit to be sent a job, and if not,
// the job-state-reasons and message of the job that waits. Callers hold q.mu.
func (q *Queue) notReady() (reasons []string, msg string, blocked bool) {
	h := &q.health
	switch {
	case !h.polled:
		return []string{"job-queued"}, "waiting for news of the printer", true
	case !q.printer.Reachable:
		return []string{"service-off-line"}, "the printer does not answer", true
	case q.printer.State == 5 || !h.accepting:
		return []string{"printer-stopped"}, "the printer is stopped", true
	case len(h.blocking) > 0:
		reason := "printer-stopped"
		for _, b := range h.blocking {
			if blockingReasons[b] == "resources-are-not-ready" {
				reason = "resources-are-not-ready"
			}
		}
		return []string{reason}, "waiting for the printer: " + strings.Join(h.blocking, ", "), true
	}
	return nil, "", false
}

// blockingReasons are the printer-state-reasons (at error level) that keep
// jobs in the queue rather than on a printer that cannot print them, with
// the job-state-reasons of the waiting job.
var blockingReasons = map[string]string{
	"media-empty": "resources-are-not-ready", "media-needed": "resources-are-not-ready",
	"toner-empty": "resources-are-not-ready", "marker-supply-empty": "resources-are-not-ready",
	"input-tray-missing": "resources-are-not-ready", "developer-empty": "resources-are-not-ready",
	"media-jam": "printer-stopped", "door-open": "printer-stopped", "cover-open": "printer-stopped",
	"interlock-open": "printer-stopped", "output-tray-missing": "printer-stopped",
	"output-area-full": "printer-stopped", "marker-waste-full": "printer-stopped",
	"offline": "printer-stopped", "paused": "printer-stopped", "shutdown": "printer-stopped",
	"spool-area-full": "printer-stopped", "fuser-over-temp": "printer-stopped",
}

// stripSeverity removes a -report, -warning or -error suffix.
func stripSeverity(r string) string {
	for _, s := range []string{"-report", "-warning", "-error"} {
		if b, ok := strings.CutSuffix(r, s); ok {
			return b
		}
	}
	return r
}

// informational are reasons without a suffix that are no fault.
var informational = map[string]bool{
	"none": true, "moving-to-paused": true, "identify-printer-requested": true,
	"printer-restarted": true, "printer-manual-reset": true, "printer-nms-reset": true,
	"printer-ready-to-print": true, "connecting-to-device": true, "processing-to-stop-point": true,
}

// warnSuffixes mark reasons without a suffix that are only warnings: a
// supply running low is no reason to call staff yet.
var warnSuffixes = []string{"-low", "-almost-empty", "-almost-full", "-near-end", "-near-limit", "-nearly-full", "-near-eol"}

// classifyReason turns a printer-state-reasons value into a fault code and
// severity. -report is information, no fault. -error is a fault. -warning
// is a warning, except for the conditions that need staff (blockingReasons:
// no paper, a jam, an open door...), which printers such as ippeveprinter
// report as warnings while a job waits on them: those are faults. Without a
// suffix RFC 8011 makes a reason an error, except that supplies running low
// are warnings here and informational keywords nothing. Reasons that cannot
// be fault codes (vendor keywords with dots) are left out.
func classifyReason(raw string) (code string, sev api.Severity, ok bool) {
	switch {
	case strings.HasSuffix(raw, "-report"):
		return "", "", false
	case strings.HasSuffix(raw, "-warning"):
		code, sev = strings.TrimSuffix(raw, "-warning"), api.SeverityWarn
		if blockingReasons[code] != "" {
			sev = api.SeverityFault
		}
	case strings.HasSuffix(raw, "-error"):
		code, sev = strings.TrimSuffix(raw, "-error"), api.SeverityFault
	default:
		if informational[raw] || strings.HasPrefix(raw, "cups-") {
			return "", "", false
		}
		code, sev = raw, api.SeverityFault
		for _, s := range warnSuffixes {
			if strings.HasSuffix(raw, s) {
				sev = api.SeverityWarn
			}
		}
	}
	if code == "none" || !faultCodeRe.MatchString(code) || code == FaultUnreachable {
		return "", "", false
	}
	return code, sev, true
}

// markers reads the marker-* attributes, aligned by index.
func markers(attrs goipp.Attributes) []Marker {
	names := upstream.Find(attrs, "marker-names")
	types := upstream.Find(attrs, "marker-types")
	colors := upstream.Find(attrs, "marker-colors")
	levels := upstream.Find(attrs, "marker-levels")
	n := min(max(len(names), len(levels)), maxMarkers)
	var ms []Marker
	for i := range n {
		m := Marker{Name: valueString(names, i), Kind: valueString(types, i), Color: valueString(colors, i), Level: -2}
		if i < len(levels) {
			if l, ok := levels[i].V.(goipp.Integer); ok {
				m.Level = int(l)
			}
		}
		ms = append(ms, m)
	}
	return ms
}

func valueString(vs goipp.Values, i int) string {
	if i < len(vs) {
		return vs[i].V.String()
	}
	return ""
}

// syncFaults raises and clears printer faults so that the open ones are
// desired. What the Faults refuses is tried again at the next poll. Only the
// monitor calls it.
func (q *Queue) syncFaults(desired map[string]api.Severity) {
	q.mu.Lock()
	open := maps.Clone(q.st.Faults)
	q.mu.Unlock()
	if open == nil {
		open = map[string]api.Severity{}
	}
	changed := false
	for _, code := range slices.Sorted(maps.Keys(desired)) {
		sev := desired[code]
		cur, isOpen := open[code]
		if isOpen && cur == sev {
			continue
		}
		if isOpen {
			if err := q.cfg.Faults.Clear(api.DevicePrinter, code); err != nil {
				q.log.Error("clearing a fault", "code", code, "err", err)
				continue
			}
			delete(open, code)
			changed = true
		}
		if err := q.cfg.Faults.Raise(api.DevicePrinter, code, sev); err != nil {
			q.log.Error("raising a fault", "code", code, "err", err)
			continue
		}
		open[code] = sev
		changed = true
	}
	for _, code := range slices.Sorted(maps.Keys(open)) {
		if _, want := desired[code]; want {
			continue
		}
		if err := q.cfg.Faults.Clear(api.DevicePrinter, code); err != nil {
			q.log.Error("clearing a fault", "code", code, "err", err)
			continue
		}
		delete(open, code)
		changed = true
	}
	if !changed {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.st.Faults = open
	if err := q.saveState(); err != nil {
		q.log.Error("saving open faults", "err", err)
	}
}

// volatile are printer attributes that change without the printer's
// capabilities changing; they do not make the saved attributes rewritten.
var volatile = map[string]bool{
	"printer-up-time": true, "printer-current-time": true, "printer-state": true,
	"printer-state-reasons": true, "printer-state-message": true,
	"printer-state-change-time": true, "printer-state-change-date-time": true,
	"printer-is-accepting-jobs": true, "queued-job-count": true, "marker-levels": true,
	"printer-alert": true, "printer-alert-description": true, "printer-supply": true,
	"printer-supply-description": true, "printer-impressions-completed": true,
	"printer-media-sheets-completed": true, "printer-pages-completed": true,
}

func sameCapabilities(a, b goipp.Attributes) bool {
	stable := func(as goipp.Attributes) goipp.Attributes {
		out := goipp.Attributes{}
		for _, x := range as {
			if !volatile[x.Name] {
				out = append(out, x)
			}
		}
		return out
	}
	return a != nil && stable(a).Equal(stable(b))
}

// savePrinterAttrs keeps the printer's attributes in the spool, as a
// Get-Printer-Attributes response, for the IPP server to mirror when the
// printer is off at boot.
func (q *Queue) savePrinterAttrs(attrs goipp.Attributes) error {
	m := goipp.NewResponse(goipp.DefaultVersion, goipp.StatusOk, 0)
	m.Printer = attrs
	b, err := m.EncodeBytes()
	if err != nil {
		return err
	}
	return writeAtomic(q.cfg.Dir, printerName, b)
}

// housekeep expires held jobs, ends jobs whose document never came, and
// retries the recording of events.
func (q *Queue) housekeep() {
	q.mu.Lock()
	now := q.clock.Now()
	for _, id := range q.sortedIDs() {
		e := q.jobs[id]
		switch {
		case e.State == Held && e.incoming.IsZero() && !e.HoldUntil.IsZero() && !now.Before(e.HoldUntil):
			q.log.Info("held job expired", "job", id)
			q.finish(e, Canceled, []string{"job-canceled-after-timeout"}, "hold-expired", "not released in time")
		case !e.incoming.IsZero() && !e.receiving && now.Sub(e.incoming) >= MultipleOperationTimeout:
			if !e.HasDoc {
				q.finish(e, Aborted, []string{"aborted-by-system"}, "", "the document never came")
				continue
			}
			q.enqueue(e)
			if err := q.saveJob(e); err != nil {
				q.log.Error("saving a job", "job", id, "err", err)
			}
			notify(q.wake)
		}
	}
	q.mu.Unlock()
	notify(q.evKick)
}
