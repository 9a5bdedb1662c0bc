package web

import (
	"slices"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

// Levels of a state line, worst last.
const (
	levelOff   = "off" // not configured
	levelOK    = "ok"
	levelWarn  = "warn"
	levelFault = "fault"
)

var levelRank = map[string]int{levelOff: 0, levelOK: 1, levelWarn: 2, levelFault: 3}

// line is one sentence about a device.
type line struct {
	Level string
	Text  string
}

// Icon is a sign of the line's level, beside the words that say it.
func (l line) Icon() string {
	return map[string]string{levelOff: "–", levelOK: "✔", levelWarn: "⚠", levelFault: "✖"}[l.Level]
}

// device is a device's state in plain words.
type device struct {
	Name  string
	Level string // the worst of its lines
	Lines []line
}

func newDevice(name string, lines []line) device {
	d := device{Name: name, Lines: lines, Level: levelOff}
	for _, l := range lines {
		if levelRank[l.Level] > levelRank[d.Level] {
			d.Level = l.Level
		}
	}
	// Worst first.
	slices.SortStableFunc(d.Lines, func(a, b line) int { return levelRank[b.Level] - levelRank[a.Level] })
	return d
}

// printerReason is what a printer-state-reasons keyword means to the aidant.
type printerReason struct {
	level string
	text  string
}

// printerReasons maps printer-state-reasons keywords (suffix stripped) to
// plain words. Reasons that say nothing to act on are left out; others not
// here are "a problem, see the technical details".
var printerReasons = map[string]printerReason{
	"media-empty":                {levelFault, "The printer is out of paper. Add paper."},
	"media-needed":               {levelFault, "The printer is out of paper. Add paper."},
	"media-jam":                  {levelFault, "Paper is stuck in the printer. Open it and gently pull the sheet out."},
	"door-open":                  {levelFault, "A door of the printer is open. Close it."},
	"cover-open":                 {levelFault, "A door of the printer is open. Close it."},
	"interlock-open":             {levelFault, "A door of the printer is open. Close it."},
	"toner-empty":                {levelFault, "The printer is out of ink or toner."},
	"marker-supply-empty":        {levelFault, "The printer is out of ink or toner."},
	"marker-ink-empty":           {levelFault, "The printer is out of ink or toner."},
	"toner-low":                  {levelWarn, "Ink or toner is running low."},
	"marker-supply-low":          {levelWarn, "Ink or toner is running low."},
	"marker-ink-almost-empty":    {levelWarn, "Ink or toner is running low."},
	"media-low":                  {levelWarn, "Paper is running low."},
	"input-tray-missing":         {levelFault, "A paper tray is out. Put it back."},
	"output-area-full":           {levelFault, "The output tray is full. Take the sheets away."},
	"output-tray-missing":        {levelFault, "The output tray is out. Put it back."},
	"offline":                    {levelFault, "The printer is offline."},
	"shutdown":                   {levelFault, "The printer is switched off."},
	"paused":                     {levelWarn, "The printer is paused."},
	"spool-area-full":            {levelWarn, "The printer's memory is full: printing may be slow."},
	"marker-waste-full":          {levelFault, "The printer's waste container is full."},
	"marker-waste-almost-full":   {levelWarn, "The printer's waste container is almost full."},
	"cleaner-life-almost-over":   {levelWarn, "A part of the printer will soon need replacing."},
	"fuser-over-temp":            {levelFault, "The printer is too hot. Let it cool down."},
	"developer-empty":            {levelFault, "The printer is out of ink or toner."},
	"developer-low":              {levelWarn, "Ink or toner is running low."},
	"opc-near-eol":               {levelWarn, "A part of the printer will soon need replacing."},
	"opc-life-over":              {levelFault, "A part of the printer must be replaced."},
	"none":                       {},
	"other":                      {levelWarn, "The printer reports a problem (see the technical details)."},
	"moving-to-paused":           {},
	"identify-printer-requested": {},
	"printer-restarted":          {},
	"connecting-to-device":       {},
	"processing-to-stop-point":   {},
	"printer-ready-to-print":     {},
}

// printerDevice says how the printer is.
func (b *base) printerDevice(ps printq.PrinterStatus, noPrinter bool) device {
	name := b.T("Printer")
	switch {
	case noPrinter:
		return newDevice(name, []line{{levelOff, b.T("No printer is set up.")}})
	case !ps.Reachable:
		return newDevice(name, []line{{levelFault, b.T("The printer does not answer. Check that it is switched on and plugged in.")}})
	}
	var lines []line
	seen := map[string]bool{}
	for _, r := range ps.Reasons {
		pr, known := printerReasons[r]
		if !known {
			pr = printerReason{levelWarn, "The printer reports a problem (see the technical details)."}
		}
		if pr.text == "" || seen[pr.text] {
			continue
		}
		seen[pr.text] = true
		lines = append(lines, line{pr.level, b.T(pr.text)})
	}
	stopped := ps.State == 5
	if !slices.ContainsFunc(lines, func(l line) bool { return l.Level == levelFault }) {
		switch {
		case stopped:
			lines = append(lines, line{levelFault, b.T("The printer is stopped.")})
		case ps.State == 4:
			lines = append(lines, line{levelOK, b.T("The printer is printing.")})
		default:
			lines = append(lines, line{levelOK, b.T("The printer is ready.")})
		}
	}
	return newDevice(name, lines)
}

// scannerFaults maps scanner fault codes to plain words.
var scannerFaults = map[string]string{
	"scanner-unreachable": "The scanner does not answer. Check that it is switched on and plugged in.",
	"media-jam":           "Paper is stuck in the scanner. Open the feeder and gently pull the sheet out.",
	"adf-jam":             "Paper is stuck in the scanner. Open the feeder and gently pull the sheet out.",
	"cover-open":          "The scanner's lid is open. Close it.",
	"door-open":           "The scanner's lid is open. Close it.",
	"adf-cover-open":      "The scanner's feeder is open. Close it.",
}

// scannerDevice says how the scanner is.
func (b *base) scannerDevice(s *api.Scanner, faults []api.Fault) device {
	name := b.T("Scanner")
	if s == nil {
		return newDevice(name, []line{{levelOff, b.T("No scanner is set up.")}})
	}
	var lines []line
	seen := map[string]bool{}
	for _, f := range faults {
		if f.Device != api.DeviceScanner {
			continue
		}
		text, ok := scannerFaults[f.Code]
		if !ok {
			text = "The scanner reports a problem (see the technical details)."
		}
		lvl := levelFault
		if f.Severity == api.SeverityWarn {
			lvl = levelWarn
		}
		if !seen[text] {
			seen[text] = true
			lines = append(lines, line{lvl, b.T(text)})
		}
	}
	if len(lines) == 0 {
		switch s.State {
		case api.ScannerIdle:
			lines = append(lines, line{levelOK, b.T("The scanner is ready.")})
		case api.ScannerProcessing:
			lines = append(lines, line{levelOK, b.T("The scanner is scanning.")})
		case api.ScannerTesting:
			lines = append(lines, line{levelOK, b.T("The scanner is getting ready.")})
		case api.ScannerStopped:
			lines = append(lines, line{levelFault, b.T("The scanner is stopped.")})
		case api.ScannerDown:
			lines = append(lines, line{levelFault, b.T("The scanner does not answer. Check that it is switched on and plugged in.")})
		default:
			lines = append(lines, line{levelWarn, b.T("The state of the scanner is not known yet.")})
		}
	}
	return newDevice(name, lines)
}

// wifiDevice says how the public Wi-Fi is.
func (b *base) wifiDevice(w *api.WiFi, faults []api.Fault) device {
	name := b.T("Public Wi-Fi")
	var lines []line
	switch {
	case !w.Up:
		lines = append(lines, line{levelFault, b.T("The public Wi-Fi is off.")})
	case w.Clients == 0:
		lines = append(lines, line{levelOK, b.T("The public Wi-Fi works. No device is connected.")})
	case w.Clients == 1:
		lines = append(lines, line{levelOK, b.T("The public Wi-Fi works. 1 device is connected.")})
	default:
		lines = append(lines, line{levelOK, b.T("The public Wi-Fi works. %d devices are connected.", w.Clients)})
	}
	for _, f := range faults {
		if f.Device == api.DeviceWiFi && w.Up {
			lines = append(lines, line{levelWarn, b.T("The Wi-Fi reports a problem (see the technical details).")})
			break
		}
	}
	return newDevice(name, lines)
}
