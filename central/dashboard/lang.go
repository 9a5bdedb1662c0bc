package dashboard

import (
	"fmt"
	"net/http"
	"time"

	"golang.org/x/text/language"
)

// langCookie names the cookie that keeps the reader's choice of language.
const langCookie = "lang"

// langs are the dashboard's languages, the default first.
var langs = []language.Tag{language.French, language.English}

var langMatcher = language.NewMatcher(langs)

// catalogues maps a language code to its texts.
var catalogues = map[string]map[string]string{"fr": french, "en": english}

// pickLang returns "fr" or "en": the lang cookie if it names one, else the
// best match of Accept-Language, else French.
func pickLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := catalogues[c.Value]; ok {
			return c.Value
		}
	}
	al := r.Header.Get("Accept-Language")
	if len(al) > 512 {
		al = al[:512]
	}
	tag, _ := language.MatchStrings(langMatcher, al)
	base, _ := tag.Base()
	if base.String() == "en" {
		return "en"
	}
	return "fr"
}

// words formats the catalogue's texts in one language.
type words struct {
	lang string
	loc  *time.Location
}

// Lang is the language's code, for the lang attribute.
func (w words) Lang() string { return w.lang }

// T returns the text of key formatted with args; a missing key shows as
// itself, so it is noticed without breaking the page.
func (w words) T(key string, args ...any) string {
	f, ok := catalogues[w.lang][key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return f
	}
	return fmt.Sprintf(f, args...)
}

// Fault names a fault code in plain words, or returns the code when the
// catalogue does not know it.
func (w words) Fault(code string) string {
	if s, ok := catalogues[w.lang]["fault."+code]; ok {
		return s
	}
	return code
}

// Device names a device.
func (w words) Device(d string) string {
	if s, ok := catalogues[w.lang]["device."+d]; ok {
		return s
	}
	return w.T("device.unknown")
}

// Dur says a duration in words: "moins d'une minute", "45 min", "2 h 10",
// "3 j 4 h". Negative durations (clock skew) count as zero.
func (w words) Dur(d time.Duration) string {
	if d < time.Minute {
		return w.T("dur.lt1m")
	}
	m := int(d / time.Minute)
	switch h, days := m/60, m/(60*24); {
	case h == 0:
		return w.T("dur.m", m)
	case days == 0 && m%60 == 0:
		return w.T("dur.h", h)
	case days == 0:
		return w.T("dur.hm", h, m%60)
	case days >= 7 || h%24 == 0:
		return w.T("dur.d", days)
	default:
		return w.T("dur.dh", days, h%24)
	}
}

// When formats an instant in the dashboard's time zone, "jamais" when zero.
func (w words) When(t time.Time) string {
	if t.IsZero() {
		return w.T("time.never")
	}
	return t.In(w.loc).Format(w.T("fmt.datetime"))
}

// Clock formats the time of day of an instant, to the second.
func (w words) Clock(t time.Time) string {
	return t.In(w.loc).Format(time.TimeOnly)
}

// Date formats a calendar day (the time of day is ignored).
func (w words) Date(t time.Time) string {
	return t.Format(w.T("fmt.date"))
}

// Role names a role.
func (w words) Role(r string) string {
	return w.T("role." + r)
}

// Command names a command.
func (w words) Command(name string) string {
	return w.T("cmd." + name)
}

// Bytes says a size in megabytes or gigabytes.
func (w words) Bytes(n int64) string {
	if n >= 1<<30 {
		return w.T("unit.bytes.gb", float64(n)/(1<<30))
	}
	return w.T("unit.bytes.mb", float64(n)/(1<<20))
}

// Percent formats a whole percentage, such as "40 %".
func (w words) Percent(p int) string {
	return w.T("fmt.percent", p)
}

// otherLang is the language the switch link offers.
func otherLang(l string) string {
	if l == "en" {
		return "fr"
	}
	return "en"
}

// periodLabel names the period starting on start for chart axes and tables.
func (w words) periodLabel(period string, start time.Time) string {
	switch period {
	case "month":
		return fmt.Sprintf("%s %d", w.T(fmt.Sprintf("month.%d", int(start.Month()))), start.Year())
	case "week":
		return w.T("fmt.week", start.Format(w.T("fmt.day")))
	default:
		return start.Format(w.T("fmt.day"))
	}
}
