package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSimulatorsNotYetFail(t *testing.T) {
	for _, name := range []string{"printer", "scanner", "fleet"} {
		var out, errb bytes.Buffer
		if code := Main([]string{name}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not available in this version") {
			t.Errorf("%s: exit %d, %q", name, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"printr"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "printer") {
		t.Errorf("unknown simulator: exit %d, %q", code, errb.String())
	}
}
