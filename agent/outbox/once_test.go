package outbox_test

import (
	"strings"
	"testing"

	"github.com/relais-fr/relais/agent/outbox"
)

// RecordOnce records an event once per key, also across a reopen (a crash
// between the record and the caller's bookkeeping), and refuses bad keys.
func TestRecordOnce(t *testing.T) {
	c := newClock(t0)
	o, path := open(t, c, outbox.Options{})
	for range 2 {
		if err := o.RecordOnce("print-job/urn:uuid:1", printed(2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.RecordOnce("print-job/urn:uuid:2", printed(1)); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o = reopen(t, path, c, outbox.Options{})
	if err := o.RecordOnce("print-job/urn:uuid:1", printed(2)); err != nil {
		t.Fatal(err)
	}
	evs, err := o.Pending(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || *evs[0].Pages != 2 || *evs[1].Pages != 1 {
		t.Errorf("pending %+v, want the two jobs once each", evs)
	}
	for _, key := range []string{"", strings.Repeat("k", outbox.MaxKeyBytes+1)} {
		if err := o.RecordOnce(key, printed(1)); err == nil {
			t.Errorf("key of %d bytes accepted", len(key))
		}
	}
}
