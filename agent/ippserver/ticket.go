package ippserver

import (
	"strings"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

// syntax is what a job template attribute may hold.
type syntax struct {
	tags  []goipp.Tag
	multi bool // 1setOf
}

var (
	synKeyword    = syntax{tags: []goipp.Tag{goipp.TagKeyword}}
	synKeywordStr = syntax{tags: []goipp.Tag{goipp.TagKeyword, goipp.TagName, goipp.TagNameLang}}
	synEnum       = syntax{tags: []goipp.Tag{goipp.TagEnum}}
	synInteger    = syntax{tags: []goipp.Tag{goipp.TagInteger}}
	synCollection = syntax{tags: []goipp.Tag{goipp.TagBeginCollection}}
)

// templateSyntax lists the job template attributes that the server accepts:
// each is checked against the site printer's -supported values and
// forwarded to it.
var templateSyntax = map[string]syntax{
	"copies":                           synInteger,
	"finishings":                       {tags: []goipp.Tag{goipp.TagEnum}, multi: true},
	"finishings-col":                   {tags: []goipp.Tag{goipp.TagBeginCollection}, multi: true},
	"media":                            synKeywordStr,
	"media-col":                        synCollection,
	"multiple-document-handling":       synKeyword,
	"number-up":                        synInteger,
	"orientation-requested":            synEnum,
	"output-bin":                       synKeywordStr,
	"overrides":                        {tags: []goipp.Tag{goipp.TagBeginCollection}, multi: true},
	"page-ranges":                      {tags: []goipp.Tag{goipp.TagRange}, multi: true},
	"presentation-direction-number-up": synKeyword,
	"print-color-mode":                 synKeyword,
	"print-content-optimize":           synKeyword,
	"print-quality":                    synEnum,
	"print-rendering-intent":           synKeyword,
	"print-scaling":                    synKeyword,
	"printer-resolution":               {tags: []goipp.Tag{goipp.TagResolution}},
	"sides":                            synKeyword,
	"feed-orientation":                 synKeyword,
}

// template checks the job attributes group against what the site's printer
// supports. It returns the attributes to forward, and whether the job is to
// be held (job-hold-until=indefinite). Unsupported attributes and values
// are recorded in the unsupported group and left out; with
// ipp-attribute-fidelity=true, or when job-mandatory-attributes names one,
// the request is refused.
func (c *call) template(caps *capabilities) (goipp.Attributes, bool, *response) {
	fidelity, resp := c.boolean("ipp-attribute-fidelity", false)
	if resp != nil {
		return nil, false, resp
	}
	mandatory, resp := c.keywords("job-mandatory-attributes")
	if resp != nil {
		return nil, false, resp
	}
	var (
		tmpl goipp.Attributes
		hold bool
		bad  []string
	)
	hasMediaCol := len(values(c.job, "media-col")) > 0
	for _, a := range c.job {
		switch {
		case a.Name == "job-hold-until":
			h, ok := holdUntil(a)
			if !ok {
				c.unsupportedValue(a)
				bad = append(bad, a.Name)
			}
			hold = h
		case a.Name == "media" && hasMediaCol:
			// media-col says more; media is ignored, or the two conflict
			// when nothing may be ignored.
			if fidelity {
				c.unsupportedValue(a)
				c.unsupportedValue(goipp.Attribute{Name: "media-col", Values: values(c.job, "media-col")})
				return nil, false, fail(goipp.StatusErrorConflicting, "media and media-col are both given")
			}
			c.unsupportedValue(a)
		default:
			keep, dropped, known := checkTemplate(caps, a)
			if keep.Name != "" && !caps.filled[a.Name+"-supported"] {
				tmpl.Add(keep)
			}
			switch {
			case !known:
				c.unsupportedAttr(a.Name)
				bad = append(bad, a.Name)
			case dropped.Name != "":
				c.unsupportedValue(dropped)
				bad = append(bad, a.Name)
			}
		}
	}
	for _, name := range bad {
		if fidelity || contains(mandatory, name) {
			return nil, false, fail(goipp.StatusErrorAttributesOrValues,
				"the printer does not support %s as requested", truncate(strings.Join(bad, ", "), 200))
		}
	}
	return tmpl, hold, nil
}

// keywords returns an operation attribute of syntax 1setOf keyword.
func (c *call) keywords(attr string) ([]string, *response) {
	a, found := c.attrs[attr]
	if !found {
		return nil, nil
	}
	var out []string
	for _, v := range a.Values {
		if v.T != goipp.TagKeyword {
			return nil, c.badSyntax(a)
		}
		out = append(out, v.V.String())
	}
	return out, nil
}

// holdUntil reads job-hold-until: no-hold, or indefinite (the job waits for
// release on the site).
func holdUntil(a goipp.Attribute) (hold, ok bool) {
	if len(a.Values) != 1 || !tagIn(a.Values[0].T, synKeywordStr.tags) {
		return false, false
	}
	switch stringOf(a.Values[0].V) {
	case "no-hold":
		return false, true
	case "indefinite":
		return true, true
	}
	return false, false
}

// checkTemplate checks one job template attribute. It returns what to
// forward (keep) and what is not supported (dropped); either may be empty
// (Name ""). known is false for an attribute the server does not accept.
func checkTemplate(caps *capabilities, a goipp.Attribute) (keep, dropped goipp.Attribute, known bool) {
	syn, known := templateSyntax[a.Name]
	sup := caps.get(a.Name + "-supported")
	switch {
	case !known:
		return goipp.Attribute{}, goipp.Attribute{}, false
	case sup == nil:
		return goipp.Attribute{}, a, true
	}
	if len(a.Values) == 0 || len(a.Values) > 100 || (!syn.multi && len(a.Values) > 1) {
		return goipp.Attribute{}, a, true
	}
	for _, v := range a.Values {
		if !tagIn(v.T, syn.tags) {
			return goipp.Attribute{}, a, true
		}
	}
	switch a.Name {
	case "media-col":
		kept, drop, ok := checkMediaCol(caps, a.Values[0].V.(goipp.Collection))
		switch {
		case !ok:
			return goipp.Attribute{}, a, true
		case len(drop) > 0:
			return goipp.MakeAttr(a.Name, goipp.TagBeginCollection, kept),
				goipp.MakeAttr(a.Name, goipp.TagBeginCollection, drop), true
		}
		return a, goipp.Attribute{}, true
	case "page-ranges":
		if !isTrue(sup) || !ascendingRanges(a.Values) {
			return goipp.Attribute{}, a, true
		}
		return a, goipp.Attribute{}, true
	case "finishings-col":
		for _, v := range a.Values {
			if !checkMembers(caps, v.V.(goipp.Collection), sup, false) {
				return goipp.Attribute{}, a, true
			}
		}
		return a, goipp.Attribute{}, true
	case "overrides":
		for _, v := range a.Values {
			if !checkMembers(caps, v.V.(goipp.Collection), sup, true) {
				return goipp.Attribute{}, a, true
			}
		}
		return a, goipp.Attribute{}, true
	}
	for _, v := range a.Values {
		if !inSupported(v.V, sup) {
			return goipp.Attribute{}, a, true
		}
	}
	return a, goipp.Attribute{}, true
}

// checkMediaCol checks the members of a media-col: media-size must be one
// the printer has; other members must be listed in media-col-supported
// (and their values in their -supported attribute, when there is one), or
// they are dropped.
func checkMediaCol(caps *capabilities, col goipp.Collection) (kept, dropped goipp.Collection, ok bool) {
	members := caps.get("media-col-supported")
	for _, m := range col {
		good := inSupported(goipp.String(m.Name), members) && len(m.Values) == 1
		switch {
		case !good:
		case m.Name == "media-size":
			if !checkSize(caps.get("media-size-supported"), m) {
				return nil, nil, false
			}
		case caps.get(m.Name+"-supported") != nil:
			good = m.Values[0].T != goipp.TagBeginCollection && inSupported(m.Values[0].V, caps.get(m.Name+"-supported"))
		}
		if good {
			kept = append(kept, m)
		} else {
			dropped = append(dropped, m)
		}
	}
	return kept, dropped, len(kept) > 0
}

// checkSize tells whether a media-size is among the supported sizes (each
// dimension an integer or a range).
func checkSize(sizes goipp.Values, m goipp.Attribute) bool {
	size, ok := m.Values[0].V.(goipp.Collection)
	if !ok {
		return false
	}
	x, y := values(goipp.Attributes(size), "x-dimension"), values(goipp.Attributes(size), "y-dimension")
	if len(size) != 2 || len(x) != 1 || len(y) != 1 || x[0].T != goipp.TagInteger || y[0].T != goipp.TagInteger {
		return false
	}
	for _, s := range sizes {
		sc, ok := s.V.(goipp.Collection)
		if !ok {
			continue
		}
		if inSupported(x[0].V, values(goipp.Attributes(sc), "x-dimension")) &&
			inSupported(y[0].V, values(goipp.Attributes(sc), "y-dimension")) {
			return true
		}
	}
	return false
}

// checkMembers checks a finishings-col or an overrides collection: every
// member must be listed in sup; finishing-template must be supported;
// overrides members other than the page and document ranges are checked as
// job template attributes.
func checkMembers(caps *capabilities, col goipp.Collection, sup goipp.Values, overrides bool) bool {
	if len(col) == 0 {
		return false
	}
	for _, m := range col {
		if !inSupported(goipp.String(m.Name), sup) || len(m.Values) == 0 {
			return false
		}
		switch {
		case m.Name == "finishing-template":
			if len(m.Values) != 1 || !inSupported(stringValue(m.Values[0].V), caps.get("finishing-template-supported")) {
				return false
			}
		case overrides && (m.Name == "pages" || m.Name == "document-numbers" || m.Name == "document-copies"):
			for _, v := range m.Values {
				if v.T != goipp.TagRange {
					return false
				}
			}
			if !ascendingRanges(m.Values) {
				return false
			}
		case overrides:
			if m.Name == "overrides" {
				return false
			}
			if _, dropped, known := checkTemplate(caps, m); !known || dropped.Name != "" {
				return false
			}
		}
	}
	return true
}

// inSupported tells whether v is among the supported values (a range
// supports the integers within it; keyword and name compare as strings).
func inSupported(v goipp.Value, sup goipp.Values) bool {
	v = stringValue(v)
	for _, s := range sup {
		if r, ok := s.V.(goipp.Range); ok {
			if i, ok := v.(goipp.Integer); ok && r.Within(int(i)) {
				return true
			}
			continue
		}
		if goipp.ValueEqual(stringValue(s.V), v) {
			return true
		}
	}
	return false
}

// stringValue turns a name or text with language into a plain string.
func stringValue(v goipp.Value) goipp.Value {
	if t, ok := v.(goipp.TextWithLang); ok {
		return goipp.String(t.Text)
	}
	return v
}

func stringOf(v goipp.Value) string {
	return stringValue(v).String()
}

func isTrue(v goipp.Values) bool {
	return len(v) == 1 && v[0].V == goipp.Boolean(true)
}

// ascendingRanges checks 1setOf rangeOfInteger page ranges: from 1, each
// well formed, ascending and not overlapping (RFC 8011 section 5.2.7).
func ascendingRanges(vals goipp.Values) bool {
	last := 0
	for _, v := range vals {
		r, ok := v.V.(goipp.Range)
		if !ok || r.Lower < 1 || r.Lower > r.Upper || r.Lower <= last {
			return false
		}
		last = r.Upper
	}
	return true
}

// source tells whether the job comes from a phone or tablet (iOS, Android,
// Mopria, AirPrint from the User-Agent or the document-format-details the
// client sent) or from a computer.
func (c *call) source() api.Source {
	if isPhone(c.r.UserAgent()) {
		return api.SourcePhone
	}
	if a, ok := c.attrs["document-format-details"]; ok {
		for _, v := range a.Values {
			col, ok := v.V.(goipp.Collection)
			if !ok {
				continue
			}
			for _, m := range col {
				if (m.Name == "document-source-os-name" || m.Name == "document-source-application-name") && len(m.Values) > 0 &&
					isPhone(stringOf(m.Values[0].V)) {
					return api.SourcePhone
				}
			}
		}
	}
	return api.SourcePC
}

func isPhone(s string) bool {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	for _, w := range words {
		switch w {
		case "iphone", "ipad", "ios", "ipados", "airprint", "android", "mopria":
			return true
		}
	}
	return false
}

// ticket returns the ticket of a new job.
func (c *call) ticket(format string, tmpl goipp.Attributes, hold bool) (printq.Ticket, *response) {
	name, resp := c.name("job-name")
	if resp != nil {
		return printq.Ticket{}, resp
	}
	if name == "" {
		if name, resp = c.name("document-name"); resp != nil {
			return printq.Ticket{}, resp
		}
	}
	if name == "" {
		name = "Untitled"
	}
	return printq.Ticket{
		Name: name, User: c.user, Client: c.client, Format: format,
		Source: c.source(), Template: tmpl, Hold: hold,
	}, nil
}
