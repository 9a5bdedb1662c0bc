package api

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// addGoldens seeds f with the golden files whose names start with prefix.
func addGoldens(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files %s*: %v", prefix, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkRejection asserts that err matches exactly one sentinel.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range []error{ErrTooLarge, ErrMalformed, ErrInvalid} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v (%T) matches %d sentinels, want 1", err, err, n)
	}
}

// FuzzDecodeEvents checks that DecodeEvents never panics, that every
// rejection has exactly one reason, and that whatever it accepts is valid,
// re-encodes, and decodes back to an equal value.
func FuzzDecodeEvents(f *testing.F) {
	addGoldens(f, "event-")
	f.Fuzz(func(t *testing.T, payload []byte) {
		evs, err := DecodeEvents(payload)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatchEvents {
			t.Fatalf("accepted %d events", len(evs))
		}
		for i, e := range evs {
			if err := e.Validate(); err != nil {
				t.Fatalf("accepted event %d is invalid: %v", i, err)
			}
		}
		b, err := EncodeEvents(evs...)
		if err != nil {
			t.Fatalf("accepted events do not re-encode: %v", err)
		}
		again, err := DecodeEvents(b)
		if err != nil {
			t.Fatalf("re-encoded events are refused: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(evs, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v", evs, again)
		}
	})
}

// FuzzDecode does the same for the other payloads, each decoder in turn.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"status-", "metrics-", "ack", "cmd-"} {
		addGoldens(f, p)
	}
	codecs := []func([]byte) (Payload, error){
		func(b []byte) (Payload, error) { return DecodeStatus(b) },
		func(b []byte) (Payload, error) { return DecodeMetrics(b) },
		func(b []byte) (Payload, error) { return DecodeAck(b) },
		func(b []byte) (Payload, error) { return DecodeCommand(CommandIdentify, b) },
		func(b []byte) (Payload, error) { return DecodeCommandResult(b) },
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, decode := range codecs {
			v, err := decode(payload)
			if err != nil {
				checkRejection(t, err)
				continue
			}
			if err := v.Validate(); err != nil {
				t.Fatalf("accepted %T is invalid: %v", v, err)
			}
			b, err := Encode(v)
			if err != nil {
				t.Fatalf("accepted %T does not re-encode: %v", v, err)
			}
			again, err := decode(b)
			if err != nil {
				t.Fatalf("re-encoded %T is refused: %v\n%s", v, err, b)
			}
			if !reflect.DeepEqual(v, again) {
				t.Fatalf("round trip differs:\n%+v\n%+v", v, again)
			}
		}
	})
}

// FuzzParseTopic checks that ParseTopic never panics and that what it
// accepts is exactly the topic String rebuilds, with no wildcard.
func FuzzParseTopic(f *testing.F) {
	f.Add(StatusTopic("s", "a"))
	f.Add(CommandTopic("site-1", "pi-2", CommandRefresh))
	f.Add(SharedFilter(KindEvents))
	f.Fuzz(func(t *testing.T, s string) {
		top, err := ParseTopic(s)
		if err != nil {
			if !errors.Is(err, ErrBadTopic) {
				t.Fatalf("error %v does not match ErrBadTopic", err)
			}
			return
		}
		if top.String() != s {
			t.Fatalf("ParseTopic(%q).String() = %q", s, top.String())
		}
		if err := top.Validate(); err != nil {
			t.Fatalf("accepted topic is invalid: %v", err)
		}
		if strings.ContainsAny(s, "+#$") {
			t.Fatalf("accepted a wildcard or system topic %q", s)
		}
	})
}

func BenchmarkDecodeEvents(b *testing.B) {
	batch, err := EncodeEvents(goldenEvents...)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := DecodeEvents(batch); err != nil {
			b.Fatal(err)
		}
	}
}
