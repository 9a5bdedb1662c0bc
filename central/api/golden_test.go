package api

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite schema.json and testdata/golden/*.json")

// t0 is the canonical time of the golden values.
var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

var mediaEmpty = Fault{Code: "media-empty", Device: DevicePrinter, Severity: SeverityFault, Since: t0.Add(-time.Hour)}

// goldenEvents holds one canonical event of each type, in eventTypeRules order.
var goldenEvents = []Event{
	{Seq: 1, ID: "0195a3c2-5e00-7000-8000-000000000001", Time: t0, Type: EventPrintCompleted,
		Pages: new(4), Sheets: new(2), Color: new(false), Duplex: new(true), Bytes: new(int64(182044)),
		Format: "application/pdf", Source: SourcePC},
	{Seq: 2, ID: "0195a3c2-5e00-7000-9000-000000000002", Time: t0, Type: EventPrintFailed,
		Pages: new(0), Bytes: new(int64(90112)), Format: "image/urf", Source: SourcePhone,
		Reason: "document-format-not-supported"},
	{Seq: 3, ID: "0195a3c2-5e00-7000-a000-000000000003", Time: t0, Type: EventPrintCanceled,
		Pages: new(1), Sheets: new(1), Format: "image/pwg-raster", Source: SourceCentral, Reason: "job-canceled-by-operator"},
	{Seq: 4, ID: "0195a3c2-5e00-7000-b000-000000000004", Time: t0, Type: EventCopyCompleted,
		Pages: new(2), Sheets: new(2), Color: new(false), Duplex: new(false)},
	{Seq: 5, ID: "0195a3c2-5e00-7001-8000-000000000005", Time: t0, Type: EventScanCompleted,
		Pages: new(3), Bytes: new(int64(512000)), Format: "application/pdf", Color: new(true)},
	{Seq: 6, ID: "0195a3c2-5e00-7001-8000-000000000006", Time: t0, Type: EventScanFailed,
		Pages: new(1), Reason: "media-jam"},
	{Seq: 7, ID: "0195a3c2-5e00-7001-8000-000000000007", Time: t0, Type: EventButtonPressed,
		Gesture: GestureLong},
	{Seq: 8, ID: "0195a3c2-5e00-7001-8000-000000000008", Time: t0, Type: EventFaultRaised,
		Fault: &mediaEmpty},
	{Seq: 9, ID: "0195a3c2-5e00-7001-8000-000000000009", Time: t0.Add(time.Minute), Type: EventFaultCleared,
		Fault: &mediaEmpty},
	{Seq: 10, ID: "0195a3c2-5e00-7001-8000-00000000000a", Time: t0, Type: EventWiFiDaily,
		Day: "2026-03-01", Visitors: new(37)},
	{Seq: 11, ID: "0195a3c2-5e00-7001-8000-00000000000b", Time: t0.Add(123456789 * time.Nanosecond), Type: EventAgentStarted,
		Version: "0.4.1"},
}

var fullMetrics = Metrics{
	Time: t0,
	Printer: &Printer{
		State:   PrinterProcessing,
		Reasons: []string{"media-low", "toner-low"},
		Markers: []Marker{
			{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 12},
			{Name: "Imaging Drum", Kind: "opc", Level: MarkerLevelSome},
		},
	},
	Queue:   &Queue{Pending: 2, Held: 1, Processing: 1, CompletedToday: 27},
	Scanner: &Scanner{State: ScannerIdle, ADFLoaded: true},
	WiFi:    &WiFi{Up: true, SSID: "Relais Médiathèque", Channel: 6, Clients: 4},
	Host: &Host{
		CPUTempC:          new(51.5),
		Throttled:         []string{"under-voltage-occurred"},
		DiskFreeBytes:     21474836480,
		DiskTotalBytes:    31268536320,
		MemAvailableBytes: 1288490188,
		MemTotalBytes:     1979711488,
		UptimeS:           356400,
		Load1:             0.42,
		ClockSynced:       true,
	},
}

// goldenCase is one canonical message: its value, and how to decode it
// back into something comparable to want.
type goldenCase struct {
	name   string
	value  Payload
	want   any // what decode returns
	decode func([]byte) (any, error)
}

func goldenCases() []goldenCase {
	cs := []goldenCase{
		{name: "status-online", value: Status{Online: true, Time: t0, Version: "0.4.1", Health: HealthFault,
			Faults: []Fault{mediaEmpty, {Code: "clock-unsynced", Device: DeviceHost, Severity: SeverityWarn, Since: t0.Add(-2 * time.Minute)}}}},
		{name: "status-offline", value: Status{Online: false}},
	}
	for _, e := range goldenEvents {
		cs = append(cs, goldenCase{name: "event-" + string(e.Type), value: e, want: []Event{e}})
	}
	cs = append(cs,
		goldenCase{name: "event-batch", value: EventBatch{Events: goldenEvents[:3]}, want: goldenEvents[:3]},
		goldenCase{name: "metrics-full", value: fullMetrics},
		goldenCase{name: "metrics-minimal", value: Metrics{Time: t0}},
		goldenCase{name: "ack", value: Ack{Upto: 11}},
	)
	for _, name := range Commands() {
		c := Command{Name: name, Req: "0195a3c2-req-" + name}
		if name == CommandIdentify {
			c.Seconds = 30
		}
		cs = append(cs, goldenCase{name: "cmd-" + name, value: c,
			decode: func(b []byte) (any, error) { return DecodeCommand(name, b) }})
	}
	cs = append(cs,
		goldenCase{name: "cmd-result-ok", value: CommandResult{Req: "0195a3c2-req-test-page", OK: true}},
		goldenCase{name: "cmd-result-error", value: CommandResult{Req: "0195a3c2-req-test-page", OK: false,
			Error: "printer unreachable: connection refused"}},
	)
	for i := range cs {
		c := &cs[i]
		if c.want == nil {
			c.want = c.value
		}
		if c.decode == nil {
			c.decode = decoderFor(c.value)
		}
	}
	return cs
}

func decoderFor(v Payload) func([]byte) (any, error) {
	switch v.(type) {
	case Status:
		return func(b []byte) (any, error) { return DecodeStatus(b) }
	case Event, EventBatch:
		return func(b []byte) (any, error) { return DecodeEvents(b) }
	case Metrics:
		return func(b []byte) (any, error) { return DecodeMetrics(b) }
	case Ack:
		return func(b []byte) (any, error) { return DecodeAck(b) }
	case CommandResult:
		return func(b []byte) (any, error) { return DecodeCommandResult(b) }
	}
	panic("no decoder for " + reflect.TypeOf(v).String())
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	var names []string
	for _, c := range goldenCases() {
		file := c.name + ".json"
		names = append(names, file)
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.value)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got = append(got, '\n')
			path := filepath.Join(dir, file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode differs from %s (run with -update if intended)\ngot:  %s\nwant: %s", path, got, want)
			}
			decoded, err := c.decode(want)
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if !reflect.DeepEqual(decoded, c.want) {
				t.Fatalf("round trip differs:\ngot:  %#v\nwant: %#v", decoded, c.want)
			}
		})
	}
	// Every golden file belongs to a case: none is left over.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("stray golden file %s", e.Name())
		}
	}
}

func TestGoldenCoversEveryKind(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases() {
		seen[c.name] = true
	}
	for _, typ := range EventTypes() {
		if !seen["event-"+string(typ)] {
			t.Errorf("no golden event of type %s", typ)
		}
	}
	for _, name := range Commands() {
		if !seen["cmd-"+name] {
			t.Errorf("no golden command %s", name)
		}
	}
}

func TestOfflineWill(t *testing.T) {
	b, err := Encode(Status{Online: false})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, OfflineWill()) {
		t.Fatalf("Encode(Status{}) = %s, OfflineWill() = %s", b, OfflineWill())
	}
	s, err := DecodeStatus(OfflineWill())
	if err != nil || s.Online {
		t.Fatalf("DecodeStatus(OfflineWill()) = %+v, %v", s, err)
	}
	OfflineWill()[0] = 'x' // callers own the slice
	if string(OfflineWill()) != `{"online":false}` {
		t.Fatal("OfflineWill shares its slice")
	}
}
