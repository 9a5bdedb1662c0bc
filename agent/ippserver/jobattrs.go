package ippserver

import (
	"math"
	"strconv"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// selection is what requested-attributes asks for.
type selection struct {
	all, template, description bool
	names                      map[string]bool
}

func newSelection(req []string) selection {
	s := selection{names: map[string]bool{}}
	for _, n := range req {
		switch n {
		case "all":
			s.all = true
		case "job-template":
			s.template = true
		case "job-description", "printer-description":
			s.description = true
		default:
			s.names[n] = true
		}
	}
	return s
}

// job tells whether a job attribute is selected.
func (s selection) job(name string) bool {
	if s.all || s.names[name] {
		return true
	}
	if isJobTemplate(name) {
		return s.template
	}
	return s.description
}

// printer tells whether a printer attribute is selected. media-col-database
// is large and returned only when named.
func (s selection) printer(name string) bool {
	switch {
	case s.names[name]:
		return true
	case name == "media-col-database":
		return false
	case s.all:
		return true
	case isPrinterTemplate(name):
		return s.template
	}
	return s.description
}

// isJobTemplate tells whether a job attribute is a job template attribute.
func isJobTemplate(name string) bool {
	_, ok := templateSyntax[name]
	return ok || name == "job-hold-until"
}

// isPrinterTemplate tells whether a printer attribute describes a job
// template attribute (its -default, -supported, -ready or -database).
func isPrinterTemplate(name string) bool {
	base, suffix := splitSuffix(name)
	if suffix == "" {
		return false
	}
	_, ok := templateSyntax[base]
	return ok || base == "job-hold-until" || base == "finishing-template" ||
		(len(base) > 6 && base[:6] == "media-")
}

// jobAttrs returns the selected attributes of a job. all is every job of
// the queue, for number-of-intervening-jobs. The job's and its user's
// names are shown to the job's owner only.
func (c *call) jobAttrs(j printq.Job, all []printq.Job, sel selection) goipp.Attributes {
	var out goipp.Attributes
	add := func(name string, tag goipp.Tag, vals ...goipp.Value) {
		if sel.job(name) && len(vals) > 0 {
			out.Add(goipp.MakeAttr(name, tag, vals[0], vals[1:]...))
		}
	}
	addTime := func(name string, t time.Time) {
		if t.IsZero() {
			add(name, goipp.TagNoValue, goipp.Void{})
		} else {
			add(name, goipp.TagInteger, goipp.Integer(upTime(t)))
		}
	}
	addDate := func(name string, t time.Time) {
		if t.IsZero() {
			add(name, goipp.TagNoValue, goipp.Void{})
		} else {
			add(name, goipp.TagDateTime, goipp.Time{Time: t})
		}
	}
	name, user := j.Name, j.User
	if !c.owns(j) {
		name, user = "", ""
	}
	add("job-id", goipp.TagInteger, goipp.Integer(j.ID))
	add("job-uri", goipp.TagURI, goipp.String(c.uri+"/"+strconv.Itoa(j.ID)))
	if j.UUID != "" {
		add("job-uuid", goipp.TagURI, goipp.String(j.UUID))
	}
	add("job-printer-uri", goipp.TagURI, goipp.String(c.uri))
	add("job-more-info", goipp.TagURI, goipp.String(c.s.adminURL(c.r)))
	add("job-name", goipp.TagName, goipp.String(truncate(name, 255)))
	add("job-originating-user-name", goipp.TagName, goipp.String(truncate(user, 255)))
	add("job-state", goipp.TagEnum, goipp.Integer(j.State))
	add("job-state-reasons", goipp.TagKeyword, keywordValues(jobReasons(j))...)
	add("job-state-message", goipp.TagText, goipp.String(truncate(jobMessage(j), 1023)))
	add("number-of-documents", goipp.TagInteger, goipp.Integer(boolInt(j.HasDoc)))
	add("number-of-intervening-jobs", goipp.TagInteger, goipp.Integer(intervening(j, all)))
	addTime("time-at-creation", j.Created)
	addTime("time-at-processing", j.Started)
	addTime("time-at-completed", j.Finished)
	add("job-printer-up-time", goipp.TagInteger, goipp.Integer(upTime(c.s.now())))
	addDate("date-time-at-creation", j.Created)
	addDate("date-time-at-processing", j.Started)
	addDate("date-time-at-completed", j.Finished)
	add("job-k-octets", goipp.TagInteger, goipp.Integer(min((j.Size+1023)/1024, math.MaxInt32)))
	add("job-impressions-completed", goipp.TagInteger, goipp.Integer(j.Impressions))
	add("job-media-sheets-completed", goipp.TagInteger, goipp.Integer(j.Sheets))
	if j.Format != "" {
		add("document-format-supplied", goipp.TagMimeType, goipp.String(j.Format))
	}
	hold := "no-hold"
	if j.Hold {
		hold = "indefinite"
	}
	add("job-hold-until", goipp.TagKeyword, goipp.String(hold))
	for _, a := range j.Template {
		if sel.job(a.Name) && len(values(out, a.Name)) == 0 && len(a.Values) > 0 {
			out.Add(a)
		}
	}
	return out
}

// upTime is a time in printer-up-time units: seconds since the Unix epoch,
// so that the times of jobs kept across restarts stay consistent.
func upTime(t time.Time) int {
	return int(max(min(t.Unix(), math.MaxInt32), 1))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// intervening counts the jobs that will print before j.
func intervening(j printq.Job, all []printq.Job) int {
	if j.State != printq.Pending && j.State != printq.Held {
		return 0
	}
	n := 0
	for _, o := range all {
		if o.ID < j.ID && (o.State == printq.Pending || o.State == printq.Processing || o.State == printq.Stopped) {
			n++
		}
	}
	return n
}

// jobReasons returns job-state-reasons: the queue's, or those of the state.
func jobReasons(j printq.Job) []string {
	var out []string
	for _, r := range j.Reasons {
		if validKeyword(r) {
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		return out
	}
	switch j.State {
	case printq.Held:
		return []string{"job-hold-until-specified"}
	case printq.Processing:
		return []string{"job-printing"}
	case printq.Stopped:
		return []string{"printer-stopped"}
	case printq.Canceled:
		return []string{"job-canceled-by-user"}
	case printq.Aborted:
		return []string{"aborted-by-system"}
	case printq.Completed:
		return []string{"job-completed-successfully"}
	case printq.Pending:
		if !j.HasDoc {
			return []string{"job-incoming"}
		}
	}
	return []string{"none"}
}

// jobMessage returns job-state-message: the queue's, or that of the state.
func jobMessage(j printq.Job) string {
	if j.Message != "" {
		return j.Message
	}
	switch j.State {
	case printq.Pending:
		if !j.HasDoc {
			return "Waiting for the document."
		}
		return "Waiting to print."
	case printq.Held:
		return "Held: release it from the site's page or with the button."
	case printq.Processing:
		return "Printing."
	case printq.Stopped:
		return "Stopped: the printer needs attention."
	case printq.Canceled:
		return "Canceled."
	case printq.Aborted:
		return "Aborted."
	case printq.Completed:
		return "Printed."
	}
	return ""
}

// validKeyword checks the syntax of a keyword (RFC 8011 section 5.1.4).
func validKeyword(s string) bool {
	if s == "" || len(s) > 255 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return validChars(s, "abcdefghijklmnopqrstuvwxyz0123456789-_.")
}

func keywordValues(list []string) []goipp.Value {
	out := make([]goipp.Value, len(list))
	for i, s := range list {
		out[i] = goipp.String(s)
	}
	return out
}
