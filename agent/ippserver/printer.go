package ippserver

import (
	"sort"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// identifyActions are identify-actions-supported: the agent blinks its LED.
var identifyActions = []string{"flash"}

// getPrinterAttributes is Get-Printer-Attributes (RFC 8011 section 4.2.5).
func (s *Server) getPrinterAttributes(c *call) *response {
	req, resp := c.requested()
	if resp != nil {
		return resp
	}
	ps := s.q.Printer()
	caps := s.capsFor(ps)
	if _, resp := c.declaredFormat(caps); resp != nil {
		return resp
	}
	if req == nil {
		req = []string{"all"}
	}
	sel := newSelection(req)
	var out goipp.Attributes
	for _, a := range s.printerAttrs(c, ps, caps) {
		if sel.printer(a.Name) {
			out.Add(a)
		}
	}
	return ok(goipp.Group{Tag: goipp.TagPrinterGroup, Attrs: out})
}

// identifyPrinter is Identify-Printer (PWG 5100.13 section 6.3.1).
func (s *Server) identifyPrinter(c *call) *response {
	actions := identifyActions
	if a, found := c.attrs["identify-actions"]; found {
		var chosen, bad []goipp.Value
		for _, v := range a.Values {
			if v.T != goipp.TagKeyword {
				return c.badSyntax(a)
			}
			if contains(identifyActions, v.V.String()) {
				chosen = append(chosen, v.V)
			} else {
				bad = append(bad, v.V)
			}
		}
		if len(bad) > 0 {
			c.unsupportedValue(goipp.MakeAttr(a.Name, goipp.TagKeyword, bad[0], bad[1:]...))
		}
		if len(chosen) > 0 {
			actions = nil
			for _, v := range chosen {
				actions = append(actions, v.String())
			}
		}
	}
	msg, found, resp := c.single("message", goipp.TagText, goipp.TagTextLang)
	if resp != nil {
		return resp
	}
	text := ""
	if found {
		text = truncate(stringOf(msg), 127)
	}
	if s.cfg.Identify != nil {
		s.cfg.Identify(append([]string(nil), actions...), text)
	}
	return ok()
}

// printerAttrs returns every attribute of the printer: its own description
// and the capabilities mirrored from the site's printer.
func (s *Server) printerAttrs(c *call, ps printq.PrinterStatus, caps *capabilities) goipp.Attributes {
	var out goipp.Attributes
	seen := map[string]bool{}
	add := func(a goipp.Attribute) {
		if !seen[a.Name] && len(a.Values) > 0 {
			seen[a.Name] = true
			out.Add(a)
		}
	}
	str := func(name string, tag goipp.Tag, vals ...string) { add(strAttr(name, tag, vals...)) }
	integer := func(name string, tag goipp.Tag, v int) { add(goipp.MakeAttr(name, tag, goipp.Integer(v))) }
	boolean := func(name string, v bool) { add(goipp.MakeAttr(name, goipp.TagBoolean, goipp.Boolean(v))) }
	now := s.now()
	admin := s.adminURL(c.r)

	// Identity.
	str("printer-uri-supported", goipp.TagURI, c.uri)
	str("uri-security-supported", goipp.TagKeyword, "none")
	str("uri-authentication-supported", goipp.TagKeyword, "none")
	str("printer-name", goipp.TagName, truncate(s.cfg.Name, 127))
	str("printer-dns-sd-name", goipp.TagName, truncate(s.cfg.Name, 63))
	str("printer-info", goipp.TagText, truncate(s.cfg.Name, 127))
	str("printer-location", goipp.TagText, truncate(s.cfg.Location, 127))
	str("printer-make-and-model", goipp.TagText, s.makeAndModel(caps, ps.Attrs))
	str("printer-device-id", goipp.TagText, deviceID(ps.Attrs, caps))
	str("printer-uuid", goipp.TagURI, s.cfg.UUID)
	str("printer-more-info", goipp.TagURI, admin)
	str("printer-supply-info-uri", goipp.TagURI, admin)
	str("printer-icons", goipp.TagURI, httpBase(c.r)+iconSmall, httpBase(c.r)+iconMedium, httpBase(c.r)+iconLarge)
	add(goipp.MakeAttr("printer-geo-location", goipp.TagUnknown, goipp.Void{}))
	str("printer-organization", goipp.TagText, "")
	str("printer-organizational-unit", goipp.TagText, "")

	// State.
	state, reasons, message := s.state(ps)
	integer("printer-state", goipp.TagEnum, state)
	str("printer-state-reasons", goipp.TagKeyword, reasons...)
	str("printer-state-message", goipp.TagText, message)
	boolean("printer-is-accepting-jobs", true)
	queued := 0
	for _, j := range s.q.Jobs() {
		if !j.State.Terminal() {
			queued++
		}
	}
	integer("queued-job-count", goipp.TagInteger, queued)
	integer("printer-up-time", goipp.TagInteger, upTime(now))
	add(goipp.MakeAttr("printer-current-time", goipp.TagDateTime, goipp.Time{Time: now}))
	since := s.stateChanged(state, reasons)
	integer("printer-state-change-time", goipp.TagInteger, upTime(since))
	add(goipp.MakeAttr("printer-state-change-date-time", goipp.TagDateTime, goipp.Time{Time: since}))
	integer("printer-config-change-time", goipp.TagInteger, upTime(caps.changed))
	add(goipp.MakeAttr("printer-config-change-date-time", goipp.TagDateTime, goipp.Time{Time: caps.changed}))
	if len(ps.Markers) > 0 {
		for _, a := range markerAttrs(ps.Markers) {
			add(a)
		}
	}

	// Protocol.
	str("ipp-versions-supported", goipp.TagKeyword, "1.0", "1.1", "2.0")
	str("ipp-features-supported", goipp.TagKeyword, "ipp-everywhere")
	ops := goipp.Attribute{Name: "operations-supported"}
	for _, op := range operationsSupported {
		ops.Values.Add(goipp.TagEnum, goipp.Integer(op))
	}
	add(ops)
	str("charset-configured", goipp.TagCharset, "utf-8")
	str("charset-supported", goipp.TagCharset, "utf-8", "us-ascii")
	str("natural-language-configured", goipp.TagLanguage, "en")
	str("generated-natural-language-supported", goipp.TagLanguage, "en")
	str("compression-supported", goipp.TagKeyword, "none", "deflate", "gzip")
	boolean("job-ids-supported", true)
	boolean("multiple-document-jobs-supported", false)
	integer("multiple-operation-time-out", goipp.TagInteger, int(printq.MultipleOperationTimeout.Seconds()))
	// The queue processes a job that has its document when the time is up,
	// and aborts one that has none.
	str("multiple-operation-time-out-action", goipp.TagKeyword, "process-job")
	str("pdl-override-supported", goipp.TagKeyword, "attempted")
	str("which-jobs-supported", goipp.TagKeyword, whichJobsSupported...)
	str("identify-actions-default", goipp.TagKeyword, identifyActions...)
	str("identify-actions-supported", goipp.TagKeyword, identifyActions...)
	str("job-creation-attributes-supported", goipp.TagKeyword, creationAttributes(caps)...)
	str("printer-get-attributes-supported", goipp.TagKeyword, "document-format")
	add(goipp.MakeAttr("job-k-octets-supported", goipp.TagRange,
		goipp.Range{Lower: 0, Upper: int(min(s.cfg.MaxJobBytes>>10, 1<<31-1))}))
	str("job-hold-until-default", goipp.TagKeyword, "no-hold")
	str("job-hold-until-supported", goipp.TagKeyword, "no-hold", "indefinite")
	boolean("preferred-attributes-supported", false)

	// Capabilities of the site's printer.
	for _, a := range caps.attrs {
		add(a)
	}
	return out
}

// creationAttributes is job-creation-attributes-supported: the operation
// attributes of job creation and the job template attributes that the
// site's printer supports.
func creationAttributes(caps *capabilities) []string {
	out := []string{"ipp-attribute-fidelity", "job-name", "job-mandatory-attributes", "document-format", "compression", "job-hold-until"}
	for _, name := range sortedTemplate {
		if caps.get(name+"-supported") != nil {
			out = append(out, name)
		}
	}
	return out
}

// sortedTemplate are the names of templateSyntax in a stable order.
var sortedTemplate = func() []string {
	var names []string
	for n := range templateSyntax {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// makeAndModel is printer-make-and-model: the configured one, or the site
// printer's followed by " (Relais)".
func (s *Server) makeAndModel(caps *capabilities, up goipp.Attributes) string {
	if s.cfg.MakeAndModel != "" {
		return truncate(s.cfg.MakeAndModel, 127)
	}
	if v := values(up, "printer-make-and-model"); len(v) > 0 && caps.known {
		const suffix = " (Relais)"
		return truncate(stringOf(v[0].V), 127-len(suffix)) + suffix
	}
	return "Relais"
}

// deviceID is printer-device-id (IEEE 1284): the maker and model of the
// site's printer, with the command sets the agent accepts.
func deviceID(up goipp.Attributes, caps *capabilities) string {
	mfg, mdl := "Relais", "Relais"
	if v := values(up, "printer-device-id"); len(v) > 0 {
		for _, field := range strings.Split(stringOf(v[0].V), ";") {
			key, val, _ := strings.Cut(field, ":")
			val = strings.TrimSpace(val)
			switch strings.TrimSpace(key) {
			case "MFG", "MANUFACTURER":
				mfg = val
			case "MDL", "MODEL":
				mdl = val
			}
		}
	}
	var cmd []string
	for _, f := range caps.formats {
		switch f {
		case formatPDF:
			cmd = append(cmd, "PDF")
		case formatPWG:
			cmd = append(cmd, "PWGRaster")
		case formatURF:
			cmd = append(cmd, "URF")
		case formatJPEG:
			cmd = append(cmd, "JPEG")
		case formatPostScript:
			cmd = append(cmd, "POSTSCRIPT")
		case formatPCL:
			cmd = append(cmd, "PCL")
		case formatPCLm:
			cmd = append(cmd, "PCLM")
		}
	}
	clean := func(s string) string {
		s = strings.Map(func(r rune) rune {
			if r == ';' || r < ' ' {
				return -1
			}
			return r
		}, s)
		if s == "" {
			return "Relais"
		}
		return truncate(s, 64)
	}
	return "MFG:" + clean(mfg) + ";MDL:" + clean(mdl) + ";CMD:" + strings.Join(cmd, ",") + ";"
}

// state returns printer-state, printer-state-reasons and
// printer-state-message for the site's printer as the queue knows it. The
// queue strips the severity suffixes: reasons of a stopped printer are
// errors (no suffix), others warnings.
func (s *Server) state(ps printq.PrinterStatus) (int, []string, string) {
	if !ps.Reachable {
		return 5, []string{"offline-report"},
			"The printer cannot be reached: jobs are kept and will print when it is back."
	}
	state := ps.State
	if state < 3 || state > 5 {
		state = 3
	}
	var reasons []string
	for _, r := range ps.Reasons {
		if !validKeyword(r) || r == "none" || contains(reasons, r) {
			continue
		}
		if state != 5 {
			r += "-warning"
		}
		reasons = append(reasons, r)
	}
	message := map[int]string{3: "Ready.", 4: "Printing.", 5: "Stopped: the printer needs attention."}[state]
	if ps.Attrs == nil {
		reasons = append(reasons, "other-report")
		message += " Its capabilities are not known yet: a basic set is offered."
	}
	if len(reasons) == 0 {
		reasons = []string{"none"}
	}
	return state, reasons, message
}

// stateChanged returns when the reported state last changed.
func (s *Server) stateChanged(state int, reasons []string) time.Time {
	key := strings.Join(append([]string{string(rune('0' + state))}, reasons...), ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stateKey != "" && s.stateKey != key {
		s.stateChange = s.now()
	}
	s.stateKey = key
	return s.stateChange
}

// markerAttrs are the marker-* attributes of the supplies the queue polled.
func markerAttrs(markers []printq.Marker) goipp.Attributes {
	names := goipp.Attribute{Name: "marker-names"}
	kinds := goipp.Attribute{Name: "marker-types"}
	colors := goipp.Attribute{Name: "marker-colors"}
	levels := goipp.Attribute{Name: "marker-levels"}
	for _, m := range markers {
		names.Values.Add(goipp.TagName, goipp.String(truncate(m.Name, 255)))
		kind := m.Kind
		if !validKeyword(kind) {
			kind = "other"
		}
		kinds.Values.Add(goipp.TagKeyword, goipp.String(kind))
		colors.Values.Add(goipp.TagName, goipp.String(truncate(m.Color, 255)))
		levels.Values.Add(goipp.TagInteger, goipp.Integer(max(min(m.Level, 100), -3)))
	}
	return goipp.Attributes{names, kinds, colors, levels}
}
