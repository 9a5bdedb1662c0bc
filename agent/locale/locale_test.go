package locale

import (
	"testing"

	"golang.org/x/text/language"
)

func TestMatch(t *testing.T) {
	for in, want := range map[string]language.Tag{
		"":                        language.French,
		"en-GB,en;q=0.9":          language.English,
		"fr-FR,fr;q=0.9,en;q=0.8": language.French,
		"de-DE":                   language.French,
		"de-DE,en;q=0.5":          language.English,
		"not a tag at all;;;":     language.French,
	} {
		if got := Match(in); got != want {
			t.Errorf("Match(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		lcAll, lang string
		want        language.Tag
	}{
		{"", "", language.French},
		{"", "C.UTF-8", language.French},
		{"", "en_US.UTF-8", language.English},
		{"fr_FR.UTF-8", "en_US.UTF-8", language.French},
		{"", "fr_BE@euro", language.French},
	} {
		t.Setenv("LC_ALL", tc.lcAll)
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", tc.lang)
		if got := FromEnv(); got != tc.want {
			t.Errorf("LC_ALL=%q LANG=%q: %v, want %v", tc.lcAll, tc.lang, got, tc.want)
		}
	}
}

func TestFrenchTranslations(t *testing.T) {
	p := Printer(language.French)
	if got := p.Sprintf("%d problem(s) found.", 2); got != "2 problème(s) trouvé(s)." {
		t.Errorf("got %q", got)
	}
	if got := Printer(language.English).Sprintf("%d problem(s) found.", 2); got != "2 problem(s) found." {
		t.Errorf("got %q", got)
	}
	for en, fr := range french {
		if fr == "" {
			t.Errorf("%q has an empty translation", en)
		}
	}
}
