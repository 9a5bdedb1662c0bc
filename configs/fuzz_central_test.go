package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoadCentral loads arbitrary documents as central.toml, with one
// arbitrary --set override: the loader never panics; what it accepts is
// valid and lists every key in Settings; what it refuses it explains, each
// problem naming its key or where it came from, a file line within the
// document; and loading the same input twice accepts it twice, with the
// same result, or refuses it twice. (Not always with the same explanation:
// of several values of the wrong TOML type, the decoder reports the first
// it meets, and it walks tables in map order.)
//
// Its seeds are testdata/fuzz/FuzzLoadCentral: the deployments of
// central.example.toml (embedded broker with TLS, external broker and
// PostgreSQL, alerts by webhook and SMTP) and the mistakes the loader
// explains (unknown keys and sections, wrong types, bad durations and
// addresses, broken TOML, bad overrides).
func FuzzLoadCentral(f *testing.F) {
	f.Add(CentralExample, "")
	f.Add("[storage]\ndir = \"/srv/relais\"\n", "http.listen=127.0.0.1:8080")
	f.Fuzz(func(t *testing.T, doc, set string) {
		p := filepath.Join(t.TempDir(), "central.toml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		ov := Overrides{Env: noEnv}
		if set != "" {
			ov.Sets = []string{set}
		}
		c, err := LoadCentral(p, ov)
		again, err2 := LoadCentral(p, ov)
		switch {
		case (err == nil) != (err2 == nil):
			t.Fatalf("loaded twice: %v, then %v", err, err2)
		case err == nil && !reflect.DeepEqual(c, again):
			t.Fatalf("loaded twice, two configurations:\n%+v\n%+v", c, again)
		}
		if err == nil {
			if errs := c.validate(); errs != nil {
				t.Fatalf("accepted an invalid configuration: %v", errs)
			}
			if n, keys := len(c.Settings()), len(keysOf(reflect.TypeFor[Central](), "")); n != keys {
				t.Fatalf("%d settings for %d keys", n, keys)
			}
			return
		}
		checkExplained(t, err, doc)
	})
}

// checkExplained checks that a loading error says what is wrong and where:
// every problem has a message and a key or a source, and a source in the
// file names a line of the document. (The line is 0 for a key the loader
// cannot place, such as one inside an inline table.)
func checkExplained(t *testing.T, err error, doc string) {
	t.Helper()
	if err.Error() == "" {
		t.Fatal("empty error")
	}
	var problems Errors
	var one *Error
	switch {
	case errors.As(err, &problems):
	case errors.As(err, &one):
		problems = Errors{one}
	default:
		return // reading the file failed: the error is the system's
	}
	if len(problems) == 0 {
		t.Fatal("an empty list of problems")
	}
	lines := strings.Count(doc, "\n") + 1
	for _, e := range problems {
		if e.Msg == "" || (e.Key == "" && e.Source == "") {
			t.Fatalf("a problem that does not say what or where: %#v", e)
		}
		if rest, ok := strings.CutPrefix(e.Source, "central.toml:"); ok {
			if n, err := strconv.Atoi(rest); err != nil || n < 0 || n > lines {
				t.Fatalf("%s: not a line of the %d-line document", e.Source, lines)
			}
		}
	}
}
