// Package locale holds the agent's texts in French, the default, and English,
// and picks the reader's language: from LC_ALL, LC_MESSAGES or LANG for the
// command line, from Accept-Language for the local page. Texts are written in
// English in the code and translated to French in the table of fr.go, through
// golang.org/x/text/message; a text missing from the table shows in English.
package locale

import (
	"os"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Supported lists the languages of the agent, the default first.
var Supported = []language.Tag{language.French, language.English}

var matcher = language.NewMatcher(Supported)

func init() {
	for en, fr := range french {
		if err := message.SetString(language.French, en, fr); err != nil {
			panic(err)
		}
	}
}

// Match returns the supported language that best fits the given preferences,
// each a BCP 47 tag or an Accept-Language header; French when none fits.
func Match(prefs ...string) language.Tag {
	tag, _ := language.MatchStrings(matcher, prefs...)
	base, _ := tag.Base()
	for _, s := range Supported {
		if b, _ := s.Base(); b == base {
			return s
		}
	}
	return Supported[0]
}

// FromEnv returns the language of the user running a command, from the POSIX
// locale variables; French unless they name English.
func FromEnv() language.Tag {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		s := os.Getenv(v)
		if s == "" {
			continue
		}
		s, _, _ = strings.Cut(s, ".")
		s, _, _ = strings.Cut(s, "@")
		if s == "C" || s == "POSIX" {
			return Supported[0]
		}
		return Match(strings.ReplaceAll(s, "_", "-"))
	}
	return Supported[0]
}

// Printer formats texts in a language.
func Printer(tag language.Tag) *message.Printer {
	return message.NewPrinter(tag)
}
