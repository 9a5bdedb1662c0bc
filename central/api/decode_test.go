package api

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Canonical payloads the negative cases derive from; each is accepted as is
// (TestDecodeBases).
const (
	baseEvent   = `{"seq":1,"id":"0195a3c2-5e00-7000-8000-000000000001","ts":"2026-03-02T09:30:00Z","type":"print.completed","pages":4,"sheets":2,"source":"pc"}`
	baseStatus  = `{"online":true,"ts":"2026-03-02T09:30:00Z","version":"0.4.1","health":"fault","faults":[{"code":"media-empty","device":"printer","severity":"fault","since":"2026-03-02T08:30:00Z"}]}`
	baseMetrics = `{"ts":"2026-03-02T09:30:00Z","printer":{"state":"idle","reasons":["media-low"],"markers":[{"name":"Black","kind":"toner","level":50}]},"queue":{"pending":0,"held":0,"processing":0,"completed_today":3},"wifi":{"up":true,"ssid":"Relais","channel":6,"clients":2},"host":{"disk_free_bytes":10,"disk_total_bytes":20,"mem_available_bytes":10,"mem_total_bytes":20,"uptime_s":5,"load1":0.5,"clock_synced":true}}`
	baseResult  = `{"req":"r-1","ok":false,"error":"printer unreachable"}`
)

type decodeFunc func([]byte) error

var (
	events   decodeFunc = func(b []byte) error { _, err := DecodeEvents(b); return err }
	status   decodeFunc = func(b []byte) error { _, err := DecodeStatus(b); return err }
	metrics  decodeFunc = func(b []byte) error { _, err := DecodeMetrics(b); return err }
	ack      decodeFunc = func(b []byte) error { _, err := DecodeAck(b); return err }
	result   decodeFunc = func(b []byte) error { _, err := DecodeCommandResult(b); return err }
	identify decodeFunc = func(b []byte) error { _, err := DecodeCommand(CommandIdentify, b); return err }
	testPage decodeFunc = func(b []byte) error { _, err := DecodeCommand(CommandTestPage, b); return err }
)

// edit returns base with old replaced by new, and fails the test if old is
// not in base, so that a case cannot silently test the base payload.
func edit(t *testing.T, base, old, new string) []byte {
	t.Helper()
	if !strings.Contains(base, old) {
		t.Fatalf("%q not in %s", old, base)
	}
	return []byte(strings.Replace(base, old, new, 1))
}

func batchOf(n int) []byte {
	return []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(baseEvent+",", n), ",") + `]}`)
}

func TestDecodeBases(t *testing.T) {
	for name, c := range map[string]struct {
		decode  decodeFunc
		payload []byte
	}{
		"event":                      {events, []byte(baseEvent)},
		"event with trailing space":  {events, []byte(" \t" + baseEvent + "\r\n")},
		"status":                     {status, []byte(baseStatus)},
		"metrics":                    {metrics, []byte(baseMetrics)},
		"result":                     {result, []byte(baseResult)},
		"batch of MaxBatchEvents":    {events, batchOf(MaxBatchEvents)},
		"escaped key and value":      {events, []byte(strings.Replace(baseEvent, `"type":"print.completed"`, `"t\u0079pe":"print\u002ecompleted"`, 1))},
		"exactly MaxPayloadBytes":    {ack, append([]byte(`{"upto":1}`), bytes.Repeat([]byte(" "), MaxPayloadBytes-10)...)},
		"offline with last known ts": {status, []byte(`{"online":false,"ts":"2026-03-02T09:30:00Z"}`)},
	} {
		if err := c.decode(c.payload); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	fault := `{"code":"media-empty","device":"printer","severity":"fault","since":"2026-03-02T08:30:00Z"}`
	cases := []struct {
		name    string
		decode  decodeFunc
		payload []byte
		want    error  // sentinel
		field   string // ValidationError.Field, for ErrInvalid
	}{
		// size, encoding, syntax
		{"oversize", ack, append([]byte(`{"upto":1}`), bytes.Repeat([]byte(" "), MaxPayloadBytes)...), ErrTooLarge, ""},
		{"oversize events", events, bytes.Repeat([]byte("x"), MaxPayloadBytes+1), ErrTooLarge, ""},
		{"batch too big", events, batchOf(MaxBatchEvents + 1), ErrTooLarge, ""},
		{"invalid UTF-8", events, edit(t, baseEvent, `"pc"`, "\"p\xffc\""), ErrMalformed, ""},
		{"trailing garbage", events, []byte(baseEvent + "x"), ErrMalformed, ""},
		{"two objects", events, []byte(baseEvent + baseEvent), ErrMalformed, ""},
		{"truncated", events, []byte(baseEvent[:40]), ErrMalformed, ""},
		{"empty", events, nil, ErrMalformed, ""},
		{"syntax error", status, []byte(`{"online" false}`), ErrMalformed, ""},
		// shape
		{"top-level array", events, []byte(`[` + baseEvent + `]`), ErrInvalid, ""},
		{"top-level null", status, []byte(`null`), ErrInvalid, ""},
		{"unknown field", events, edit(t, baseEvent, `"source":"pc"`, `"source":"pc","job_name":"CV.pdf"`), ErrInvalid, ""},
		{"unknown nested field", events, edit(t, baseEvent, `"type":"print.completed","pages":4,"sheets":2,"source":"pc"`, `"type":"fault.raised","fault":{"code":"x","device":"printer","severity":"warn","since":"2026-03-02T08:30:00Z","mac":"aa:bb"}`), ErrInvalid, "fault"},
		{"differently cased field", events, edit(t, baseEvent, `"seq"`, `"Seq"`), ErrInvalid, ""},
		{"duplicate field", events, edit(t, baseEvent, `"pages":4`, `"pages":4,"pages":5`), ErrInvalid, "pages"},
		{"wrong type string for int", events, edit(t, baseEvent, `"pages":4`, `"pages":"4"`), ErrInvalid, "pages"},
		{"wrong type number for bool", status, edit(t, baseStatus, `"online":true`, `"online":1`), ErrInvalid, "online"},
		{"wrong type object for string", events, edit(t, baseEvent, `"pc"`, `{}`), ErrInvalid, "source"},
		{"fractional int", events, edit(t, baseEvent, `"seq":1`, `"seq":1.5`), ErrInvalid, "seq"},
		{"negative seq", events, edit(t, baseEvent, `"seq":1`, `"seq":-1`), ErrInvalid, "seq"},
		{"seq overflow", events, edit(t, baseEvent, `"seq":1`, `"seq":18446744073709551616`), ErrInvalid, "seq"},
		{"null field", events, edit(t, baseEvent, `"pages":4`, `"pages":null`), ErrInvalid, "pages"},
		{"missing seq", events, edit(t, baseEvent, `"seq":1,`, ``), ErrInvalid, "seq"},
		{"missing online", status, []byte(`{}`), ErrInvalid, "online"},
		{"empty optional string", status, []byte(`{"online":false,"version":""}`), ErrInvalid, "version"},
		{"empty optional array", status, edit(t, baseStatus, `"faults":[`+fault+`]`, `"faults":[]`), ErrInvalid, "faults"},
		{"zero optional int", identify, []byte(`{"req":"r-1","seconds":0}`), ErrInvalid, "seconds"},
		// events
		{"seq 0", events, edit(t, baseEvent, `"seq":1`, `"seq":0`), ErrInvalid, "seq"},
		{"uuid version 4", events, edit(t, baseEvent, `-7000-8000-`, `-4000-8000-`), ErrInvalid, "id"},
		{"uuid bad variant", events, edit(t, baseEvent, `-7000-8000-`, `-7000-c000-`), ErrInvalid, "id"},
		{"uuid uppercase", events, edit(t, baseEvent, `0195a3c2`, `0195A3C2`), ErrInvalid, "id"},
		{"uuid braces", events, edit(t, baseEvent, `"0195a3c2-5e00-7000-8000-000000000001"`, `"{0195a3c2-5e00-7000-8000-000000000001}"`), ErrInvalid, "id"},
		{"bad event type", events, edit(t, baseEvent, `print.completed`, `print.started`), ErrInvalid, "type"},
		{"print with gesture", events, edit(t, baseEvent, `"source":"pc"`, `"source":"pc","gesture":"short"`), ErrInvalid, "gesture"},
		{"print with visitors", events, edit(t, baseEvent, `"source":"pc"`, `"source":"pc","visitors":3`), ErrInvalid, "visitors"},
		{"print without pages", events, edit(t, baseEvent, `"pages":4,"sheets":2,`, ``), ErrInvalid, "pages"},
		{"print without source", events, edit(t, baseEvent, `,"source":"pc"`, ``), ErrInvalid, "source"},
		{"negative pages", events, edit(t, baseEvent, `"pages":4`, `"pages":-1`), ErrInvalid, "pages"},
		{"sheets above pages", events, edit(t, baseEvent, `"sheets":2`, `"sheets":5`), ErrInvalid, "sheets"},
		{"bad source", events, edit(t, baseEvent, `"pc"`, `"usb"`), ErrInvalid, "source"},
		{"format with parameter", events, edit(t, baseEvent, `"source":"pc"`, `"source":"pc","format":"application/pdf;name=CV.pdf"`), ErrInvalid, "format"},
		{"reason with spaces", events, edit(t, baseEvent, `print.completed`, `print.failed","reason":"jam in tray 2`), ErrInvalid, "reason"},
		{"ts not UTC", events, edit(t, baseEvent, `09:30:00Z`, `09:30:00+02:00`), ErrInvalid, "ts"},
		{"ts before 2020", events, edit(t, baseEvent, `2026-03-02T`, `2019-12-31T`), ErrInvalid, "ts"},
		{"ts comma fraction", events, edit(t, baseEvent, `09:30:00Z`, `09:30:00,5Z`), ErrInvalid, "ts"},
		{"ts impossible day", events, edit(t, baseEvent, `2026-03-02T`, `2026-02-30T`), ErrInvalid, "ts"},
		{"ts as number", events, edit(t, baseEvent, `"2026-03-02T09:30:00Z"`, `1772443800`), ErrInvalid, "ts"},
		{"wifi.daily impossible day", events, edit(t, baseEvent, `"type":"print.completed","pages":4,"sheets":2,"source":"pc"`, `"type":"wifi.daily","day":"2026-02-30","visitors":3`), ErrInvalid, "day"},
		{"wifi.daily without visitors", events, edit(t, baseEvent, `"type":"print.completed","pages":4,"sheets":2,"source":"pc"`, `"type":"wifi.daily","day":"2026-03-01"`), ErrInvalid, "visitors"},
		{"button without gesture", events, edit(t, baseEvent, `"type":"print.completed","pages":4,"sheets":2,"source":"pc"`, `"type":"button.pressed"`), ErrInvalid, "gesture"},
		{"fault event with bad device", events, edit(t, baseEvent, `"type":"print.completed","pages":4,"sheets":2,"source":"pc"`, `"type":"fault.raised","fault":`+strings.Replace(fault, "printer", "fax", 1)), ErrInvalid, "fault.device"},
		{"empty batch", events, []byte(`{"events":[]}`), ErrInvalid, "events"},
		{"batch with extra field", events, []byte(`{"events":[` + baseEvent + `],"seq":1}`), ErrInvalid, ""},
		{"bad event in batch", events, []byte(`{"events":[` + baseEvent + `,` + strings.Replace(baseEvent, `"pages":4`, `"pages":-4`, 1) + `]}`), ErrInvalid, "events[1].pages"},
		// status
		{"online without version", status, edit(t, baseStatus, `"version":"0.4.1",`, ``), ErrInvalid, "version"},
		{"health ok with a fault", status, edit(t, baseStatus, `"health":"fault"`, `"health":"ok"`), ErrInvalid, "health"},
		{"duplicate fault", status, edit(t, baseStatus, fault, fault+","+fault), ErrInvalid, "faults[1]"},
		{"bad fault code", status, edit(t, baseStatus, `media-empty`, `Media Empty`), ErrInvalid, "faults[0].code"},
		// metrics
		{"marker level too high", metrics, edit(t, baseMetrics, `"level":50`, `"level":101`), ErrInvalid, "printer.markers[0].level"},
		{"marker level too low", metrics, edit(t, baseMetrics, `"level":50`, `"level":-4`), ErrInvalid, "printer.markers[0].level"},
		{"marker name control char", metrics, edit(t, baseMetrics, `"Black"`, `"Bl\u0007ack"`), ErrInvalid, "printer.markers[0].name"},
		{"reason suffix not stripped", metrics, edit(t, baseMetrics, `"media-low"`, `"media-low-warning"`), ErrInvalid, "printer.reasons[0]"},
		{"bad printer state", metrics, edit(t, baseMetrics, `"idle"`, `"printing"`), ErrInvalid, "printer.state"},
		{"queue field missing", metrics, edit(t, baseMetrics, `"held":0,`, ``), ErrInvalid, "queue.held"},
		{"ssid too long", metrics, edit(t, baseMetrics, `"Relais"`, `"`+strings.Repeat("é", 17)+`"`), ErrInvalid, "wifi.ssid"},
		{"disk free above total", metrics, edit(t, baseMetrics, `"disk_free_bytes":10`, `"disk_free_bytes":30`), ErrInvalid, "host.disk_free_bytes"},
		// ack and commands
		{"ack 0", ack, []byte(`{"upto":0}`), ErrInvalid, "upto"},
		{"ack missing", ack, []byte(`{}`), ErrInvalid, "upto"},
		{"unknown command", func(b []byte) error { _, err := DecodeCommand("reboot", b); return err }, []byte(`{"req":"r-1"}`), ErrInvalid, ""},
		{"seconds on test-page", testPage, []byte(`{"req":"r-1","seconds":10}`), ErrInvalid, "seconds"},
		{"seconds too long", identify, []byte(`{"req":"r-1","seconds":3600}`), ErrInvalid, "seconds"},
		{"bad req", identify, []byte(`{"req":"r/1"}`), ErrInvalid, "req"},
		{"req too long", identify, []byte(`{"req":"` + strings.Repeat("a", 65) + `"}`), ErrInvalid, "req"},
		{"result ok with error", result, edit(t, baseResult, `"ok":false`, `"ok":true`), ErrInvalid, "error"},
		{"result failed without error", result, edit(t, baseResult, `,"error":"printer unreachable"`, ``), ErrInvalid, "error"},
		{"result error with newline", result, edit(t, baseResult, `unreachable`, `unreachable\nFAKE LOG LINE`), ErrInvalid, "error"},
		{"result error too long", result, edit(t, baseResult, `printer unreachable`, strings.Repeat("x", 257)), ErrInvalid, "error"},
	}
	sentinels := []error{ErrTooLarge, ErrMalformed, ErrInvalid}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.payload)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			for _, s := range sentinels {
				if s != c.want && errors.Is(err, s) {
					t.Errorf("err = %v also matches %v", err, s)
				}
			}
			var ve *ValidationError
			if errors.As(err, &ve) != (c.want == ErrInvalid) {
				t.Fatalf("err = %v (%T): ValidationError iff ErrInvalid", err, err)
			}
			if ve != nil && ve.Field != c.field {
				t.Errorf("err = %v: field %q, want %q", err, ve.Field, c.field)
			}
		})
	}
}

func TestDecodeEventsForms(t *testing.T) {
	one, err := DecodeEvents([]byte(baseEvent))
	if err != nil || len(one) != 1 {
		t.Fatalf("single: %v, %v", one, err)
	}
	batch, err := DecodeEvents(batchOf(3))
	if err != nil || len(batch) != 3 {
		t.Fatalf("batch: %d events, %v", len(batch), err)
	}
	for _, e := range batch {
		if !reflect.DeepEqual(e, one[0]) {
			t.Fatalf("batch event %+v differs from %+v", e, one[0])
		}
	}
	// EncodeEvents picks the form by count; both decode back.
	for _, n := range []int{1, 2} {
		b, err := EncodeEvents(goldenEvents[:n]...)
		if err != nil {
			t.Fatal(err)
		}
		if batchForm := bytes.HasPrefix(b, []byte(`{"events":`)); batchForm != (n > 1) {
			t.Errorf("EncodeEvents of %d events: %s", n, b)
		}
		got, err := DecodeEvents(b)
		if err != nil || len(got) != n {
			t.Fatalf("DecodeEvents(EncodeEvents(%d)) = %d, %v", n, len(got), err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := EncodeEvents(); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeEvents() = %v, want ErrInvalid", err)
	}
	many := make([]Event, MaxBatchEvents+1)
	if _, err := EncodeEvents(many...); !errors.Is(err, ErrTooLarge) {
		t.Errorf("EncodeEvents(%d) = %v, want ErrTooLarge", len(many), err)
	}
	e := goldenEvents[0]
	e.Time = e.Time.In(time.FixedZone("CET", 3600))
	if _, err := Encode(e); err == nil || err.Error() != "ts: must be in UTC" {
		t.Errorf("Encode with a local time: %v", err)
	}
	e = goldenEvents[0]
	e.Gesture = GestureShort
	if _, err := Encode(e); err == nil || err.Error() != "gesture: not allowed when type is print.completed" {
		t.Errorf("Encode print with gesture: %v", err)
	}
	big := fullMetrics
	big.Printer = &Printer{State: PrinterIdle}
	for range 16 {
		big.Printer.Markers = append(big.Printer.Markers, Marker{Name: strings.Repeat("é", 32), Kind: "toner", Level: 1})
	}
	if _, err := Encode(big); err != nil {
		t.Errorf("Encode of 16 long markers: %v", err)
	}
	big.Printer.Markers = append(big.Printer.Markers, big.Printer.Markers[0])
	if _, err := Encode(big); err == nil || err.Error() != "printer.markers: must hold at most 16 items" {
		t.Errorf("Encode of 17 markers: %v", err)
	}
	if _, err := Encode(Command{Req: "r-1"}); err == nil {
		t.Error("Encode of a command without name succeeded")
	}
}
