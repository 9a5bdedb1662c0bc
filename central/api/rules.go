package api

import (
	"reflect"
	"regexp"
	"time"
)

// Limits of the contract.
const (
	// MaxPayloadBytes is the largest payload a decoder accepts, on every topic.
	MaxPayloadBytes = 64 << 10
	// MaxBatchEvents is the most events one EventBatch may hold.
	MaxBatchEvents = 256
)

// Patterns of the contract. Each is anchored and uses only syntax that Go's
// RE2 and ECMA-262 read the same way, so that the schema publishes it as is.
const (
	// idPattern: site and agent ids, fault codes.
	idPattern = `^[a-z0-9-]{1,63}$`
	// keywordPattern: IPP-style keywords (printer reasons, marker kinds,
	// failure reasons, throttling flags).
	keywordPattern = `^[a-z][a-z0-9._-]{0,62}$`
	// reqPattern: command request ids.
	reqPattern = `^[A-Za-z0-9-]{1,64}$`
	// uuidv7Pattern: canonical lowercase UUID, version 7, RFC 9562 variant.
	uuidv7Pattern = `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`
	// versionPattern: software versions, such as "1.4.2" or "0.3.0-12-gabc1234".
	versionPattern = `^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`
	// mimePattern: a lowercase MIME type without parameters.
	mimePattern = `^[a-z]{1,32}/[a-z0-9][a-z0-9.+_-]{0,63}$`
	// colorPattern: "#rrggbb" (up to four for multi-colour supplies) or a keyword.
	colorPattern = `^(?:(?:#[0-9a-f]{6}){1,4}|[a-z][a-z0-9-]{0,31})$`
	// datePattern: a calendar day from 2020 to 2099.
	datePattern = `^20[2-9][0-9]-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$`
	// timePattern: an RFC 3339 date-time in UTC ("Z"), from 2020 to 2099.
	// Decoders check it on the raw string; Validate checks the same bounds
	// (minTime, maxTime, UTC) on time.Time values.
	timePattern = `^20[2-9][0-9]-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?Z$`
	// reportSuffixPattern: the IPP reason suffixes that must be stripped.
	reportSuffixPattern = `-(?:report|warning|error)$`
)

// Time bounds of every timestamp: [minTime, maxTime).
var (
	minTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	idRe   = regexp.MustCompile(idPattern)
	timeRe = regexp.MustCompile(timePattern)
)

// A rule constrains one JSON value. The zero rule accepts any value of the
// field's Go type (used for booleans and nested objects).
type rule struct {
	enum     []string       // strings: one of these
	re       *regexp.Regexp // strings: must match
	notRe    *regexp.Regexp // strings: must not match
	text     bool           // strings: printable UTF-8 text (unicode.IsPrint)
	maxBytes int            // strings: at most this many bytes
	format   string         // strings: "date-time" or "date", also checked
	min, max *float64       // numbers: inclusive bounds
	minItems int            // arrays
	maxItems int            // arrays
	items    *rule          // arrays of strings: rule of each item
	desc     string         // published in the schema
}

func pattern(p string) rule { return rule{re: regexp.MustCompile(p)} }

func oneOf[T ~string](vs ...T) rule {
	r := rule{enum: make([]string, len(vs))}
	for i, v := range vs {
		r.enum[i] = string(v)
	}
	return r
}

func text(maxBytes int) rule { return rule{text: true, maxBytes: maxBytes} }

func between(lo, hi float64) rule { return rule{min: &lo, max: &hi} }

func atLeast(lo float64) rule { return rule{min: &lo} }

func list(minItems, maxItems int, item *rule) rule {
	return rule{minItems: minItems, maxItems: maxItems, items: item}
}

func (r rule) describe(d string) rule { r.desc = d; return r }

// Shared rules.
var (
	timeRule    = rule{re: timeRe, format: "date-time"}
	idRule      = pattern(idPattern)
	keywordRule = pattern(keywordPattern)
	versionRule = pattern(versionPattern).describe("agent software version")
	countRule   = between(0, 1e6)
	bytesRule   = between(0, 1<<50)
	noRule      = rule{}
)

// fieldRules gives the rule of every JSON field of every payload type, by
// JSON name. Validate enforces it and the schema generator publishes it; a
// test checks that it covers every field and nothing else.
var fieldRules = map[reflect.Type]map[string]rule{
	reflect.TypeFor[Status](): {
		"online":  noRule,
		"ts":      timeRule,
		"version": versionRule,
		"health":  oneOf(HealthOK, HealthWarn, HealthFault),
		"faults":  list(1, 32, nil).describe("open faults"),
	},
	reflect.TypeFor[Fault](): {
		"code":     idRule.describe(`what is wrong, such as "media-empty" or "scanner-unreachable"`),
		"device":   oneOf(DevicePrinter, DeviceScanner, DeviceWiFi, DeviceHost, DeviceAgent),
		"severity": oneOf(SeverityWarn, SeverityFault),
		"since":    timeRule.describe("when the fault started"),
	},
	reflect.TypeFor[Event](): {
		"seq":      atLeast(1).describe("the agent's monotonic outbox sequence number"),
		"id":       pattern(uuidv7Pattern).describe("UUIDv7, canonical lowercase"),
		"ts":       timeRule,
		"type":     oneOf(EventTypes()...),
		"pages":    between(0, 100000).describe("impressions printed, or pages scanned"),
		"sheets":   between(0, 100000).describe("sheets of paper, at most pages"),
		"color":    noRule,
		"duplex":   noRule,
		"bytes":    bytesRule.describe("document size"),
		"format":   pattern(mimePattern).describe("MIME type, such as application/pdf or image/pwg-raster"),
		"source":   oneOf(SourcePC, SourcePhone, SourceCopy, SourceCentral),
		"reason":   keywordRule.describe(`failure keyword, such as "media-jam"`),
		"gesture":  oneOf(GestureShort, GestureLong, GestureVeryLong),
		"fault":    noRule,
		"day":      rule{re: regexp.MustCompile(datePattern), format: "date", desc: "local day of the site"},
		"visitors": between(0, 100000).describe("distinct Wi-Fi stations that day"),
		"version":  versionRule,
	},
	reflect.TypeFor[EventBatch](): {
		"events": list(1, MaxBatchEvents, nil),
	},
	reflect.TypeFor[Metrics](): {
		"ts":      timeRule,
		"printer": noRule,
		"queue":   noRule,
		"scanner": noRule,
		"wifi":    noRule,
		"host":    noRule,
	},
	reflect.TypeFor[Printer](): {
		"state": oneOf(PrinterIdle, PrinterProcessing, PrinterStopped, PrinterUnknown),
		"reasons": list(1, 32, &rule{
			re:    keywordRule.re,
			notRe: regexp.MustCompile(reportSuffixPattern),
			desc:  "IPP printer-state-reasons keyword, -report/-warning/-error stripped",
		}),
		"markers": list(1, 16, nil),
	},
	reflect.TypeFor[Marker](): {
		"name":  text(64).describe("supply name as the printer reports it"),
		"kind":  keywordRule.describe("IPP marker-types keyword, such as toner-cartridge"),
		"color": pattern(colorPattern),
		"level": between(MarkerLevelSome, 100).describe("percent left; -1 unavailable, -2 unknown, -3 some remaining (IPP marker-levels)"),
	},
	reflect.TypeFor[Queue](): {
		"pending":         countRule,
		"held":            countRule,
		"processing":      countRule,
		"completed_today": countRule,
	},
	reflect.TypeFor[Scanner](): {
		"state":      oneOf(ScannerIdle, ScannerProcessing, ScannerTesting, ScannerStopped, ScannerDown, ScannerUnknown),
		"adf_loaded": noRule,
	},
	reflect.TypeFor[WiFi](): {
		"up":      noRule,
		"ssid":    text(32),
		"channel": between(1, 233),
		"clients": between(0, 10000),
	},
	reflect.TypeFor[Host](): {
		"cpu_temp_c":          between(-50, 150),
		"throttled":           list(1, 16, &idRule),
		"disk_free_bytes":     bytesRule,
		"disk_total_bytes":    bytesRule,
		"mem_available_bytes": bytesRule,
		"mem_total_bytes":     bytesRule,
		"uptime_s":            between(0, 1<<40),
		"load1":               between(0, 1000),
		"clock_synced":        noRule,
	},
	reflect.TypeFor[Ack](): {
		"upto": atLeast(1).describe("highest seq committed"),
	},
	reflect.TypeFor[Command](): {
		"req":     pattern(reqPattern),
		"seconds": between(1, 600).describe("identify only"),
	},
	reflect.TypeFor[CommandResult](): {
		"req":   pattern(reqPattern),
		"ok":    noRule,
		"error": text(256),
	},
}

// A condition makes optional fields required or forbidden when the field
// named by field (a JSON name) equals value.
type condition struct {
	field     string
	value     any
	required  []string
	forbidden []string
}

// conditions gives the conditional rules of each payload type. The Event
// conditions derive from eventTypeRules.
var conditions = map[reflect.Type][]condition{
	reflect.TypeFor[Status](): {
		{field: "online", value: true, required: []string{"ts", "version", "health"}},
	},
	reflect.TypeFor[CommandResult](): {
		{field: "ok", value: true, forbidden: []string{"error"}},
		{field: "ok", value: false, required: []string{"error"}},
	},
	reflect.TypeFor[Event](): eventConditions(),
}

func eventConditions() []condition {
	var optional []string
	for _, f := range fieldsOf(reflect.TypeFor[Event]()) {
		if f.omit {
			optional = append(optional, f.name)
		}
	}
	cs := make([]condition, len(eventTypeRules))
	for i, r := range eventTypeRules {
		c := condition{field: "type", value: r.typ, required: r.required}
		for _, name := range optional {
			if !contains(r.required, name) && !contains(r.allowed, name) {
				c.forbidden = append(c.forbidden, name)
			}
		}
		cs[i] = c
	}
	return cs
}
