package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The JSON Schema is generated from the Go types and the rule tables
// (fieldRules, conditions), the same tables Validate uses.

// schemaTypes lists the $defs, in document order, with their descriptions.
var schemaTypes = []struct {
	t    reflect.Type
	top  bool // a whole payload, listed in the top-level anyOf
	desc string
}{
	{reflect.TypeFor[Status](), true, "Payload of relais/v1/{site}/{agent}/status (agent to central, QoS 1, retained). The MQTT will is {\"online\":false}."},
	{reflect.TypeFor[Fault](), false, "An open problem of a device, raised once and cleared once."},
	{reflect.TypeFor[Event](), true, "One event on relais/v1/{site}/{agent}/events (agent to central, QoS 1). Fields beyond seq, id, ts and type are required, allowed or forbidden by type. Usage fields are counts only."},
	{reflect.TypeFor[EventBatch](), true, "A batch of events on relais/v1/{site}/{agent}/events."},
	{reflect.TypeFor[Metrics](), true, "Periodic snapshot on relais/v1/{site}/{agent}/metrics (agent to central, QoS 0). Parts the site lacks are left out."},
	{reflect.TypeFor[Printer](), false, "State of the site printer."},
	{reflect.TypeFor[Marker](), false, "One supply of the printer."},
	{reflect.TypeFor[Queue](), false, "Print jobs held by the agent."},
	{reflect.TypeFor[Scanner](), false, "State of the site scanner."},
	{reflect.TypeFor[WiFi](), false, "State of the site access point."},
	{reflect.TypeFor[Host](), false, "State of the agent's computer."},
	{reflect.TypeFor[Ack](), true, "Payload of relais/v1/{site}/{agent}/ack (central to agent, QoS 1): events up to seq upto are committed."},
	{reflect.TypeFor[Command](), true, "Payload of relais/v1/{site}/{agent}/cmd/{name} (central to agent, QoS 1), name one of " + strings.Join(Commands(), ", ") + "; seconds is for identify only."},
	{reflect.TypeFor[CommandResult](), true, "Payload of relais/v1/{site}/{agent}/cmd-result (agent to central, QoS 1): the reply to the command req."},
}

// printablePattern is the schema's approximation of rule.text: no control
// characters (Validate also refuses the other non-printable characters).
const printablePattern = `^[^\x00-\x1f\x7f-\x9f]+$`

func generateSchema() ([]byte, error) {
	var defs, top obj
	for _, st := range schemaTypes {
		defs = append(defs, kv{st.t.Name(), objectSchema(st.t, st.desc)})
		if st.top {
			top = append(top, kv{"$ref", "#/$defs/" + st.t.Name()})
		}
	}
	var anyOf []any
	for _, ref := range top {
		anyOf = append(anyOf, obj{ref})
	}
	doc := obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$comment", "Generated from github.com/relais-fr/relais/central/api by `go test ./central/api -run TestSchema -update`. Do not edit."},
		{"title", "Relais wire contract " + Root},
		{"description", fmt.Sprintf("Payloads of the MQTT topics %s/{site}/{agent}/{%s}, where site and agent match %s. "+
			"JSON in UTF-8, at most %d bytes each; an events batch holds at most %d events. Timestamps are RFC 3339 in UTC.",
			Root, strings.Replace(strings.Join(kinds, ","), KindCommand, KindCommand+"/{name}", 1), idPattern, MaxPayloadBytes, MaxBatchEvents)},
		{"anyOf", anyOf},
		{"$defs", defs},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func objectSchema(t reflect.Type, desc string) obj {
	var props obj
	var required []string
	for _, f := range fieldsOf(t) {
		props = append(props, kv{f.name, valueSchema(f.typ, fieldRules[t][f.name])})
		if !f.omit {
			required = append(required, f.name)
		}
	}
	s := obj{{"description", desc}, {"type", "object"}, {"properties", props}}
	if required != nil {
		s = append(s, kv{"required", required})
	}
	s = append(s, kv{"additionalProperties", false})
	var allOf []any
	for _, c := range conditions[t] {
		then := obj{}
		if c.required != nil {
			then = append(then, kv{"required", c.required})
		}
		if c.forbidden != nil {
			var forbid obj
			for _, name := range c.forbidden {
				forbid = append(forbid, kv{name, false})
			}
			then = append(then, kv{"properties", forbid})
		}
		allOf = append(allOf, obj{
			{"if", obj{{"properties", obj{{c.field, obj{{"const", c.value}}}}}, {"required", []string{c.field}}}},
			{"then", then},
		})
	}
	if allOf != nil {
		s = append(s, kv{"allOf", allOf})
	}
	return s
}

func valueSchema(t reflect.Type, r rule) obj {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var s obj
	if desc := r.desc; desc != "" || r.text {
		if r.text {
			desc = strings.TrimPrefix(fmt.Sprintf("%s; printable UTF-8 text of at most %d bytes", desc, r.maxBytes), "; ")
		}
		s = append(s, kv{"description", desc})
	}
	if t == timeType {
		return append(s, kv{"type", "string"}, kv{"format", "date-time"}, kv{"pattern", timePattern})
	}
	switch t.Kind() {
	case reflect.Struct:
		return append(s, kv{"$ref", "#/$defs/" + t.Name()})
	case reflect.Slice:
		item := noRule
		if r.items != nil {
			item = *r.items
		}
		s = append(s, kv{"type", "array"}, kv{"items", valueSchema(t.Elem(), item)})
		if r.minItems > 0 {
			s = append(s, kv{"minItems", r.minItems})
		}
		return append(s, kv{"maxItems", r.maxItems})
	case reflect.String:
		s = append(s, kv{"type", "string"})
		if r.enum != nil {
			return append(s, kv{"enum", r.enum})
		}
		if r.text {
			s = append(s, kv{"minLength", 1}, kv{"pattern", printablePattern})
		}
		if r.maxBytes > 0 {
			s = append(s, kv{"maxLength", r.maxBytes})
		}
		if r.format != "" {
			s = append(s, kv{"format", r.format})
		}
		if r.re != nil {
			s = append(s, kv{"pattern", r.re.String()})
		}
		if r.notRe != nil {
			s = append(s, kv{"not", obj{{"pattern", r.notRe.String()}}})
		}
		return s
	case reflect.Bool:
		return append(s, kv{"type", "boolean"})
	case reflect.Float32, reflect.Float64:
		s = append(s, kv{"type", "number"})
	default:
		s = append(s, kv{"type", "integer"})
	}
	if r.min != nil {
		s = append(s, kv{"minimum", *r.min})
	}
	if r.max != nil {
		s = append(s, kv{"maximum", *r.max})
	}
	return s
}

// obj is a JSON object that keeps its keys in order.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(e.k); err != nil {
			return nil, err
		}
		buf.WriteByte(':')
		if err := enc.Encode(e.v); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func TestSchema(t *testing.T) {
	got, err := generateSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("schema.json is out of date: run go test ./central/api -run TestSchema -update")
	}
	if !*update && !bytes.Equal(Schema(), want) {
		t.Fatal("Schema() differs from schema.json: rebuild")
	}
	if !json.Valid(Schema()) {
		t.Fatal("Schema() is not valid JSON")
	}
}

// TestRuleTables checks that the rule tables cover every field of every
// payload type and nothing else, and that they leave no room for free text.
func TestRuleTables(t *testing.T) {
	// Fields that may hold printable text (names reported by devices, and
	// error messages for the technician). Anything else is an enum or a
	// tight pattern; in particular no usage event field is free text.
	textFields := []string{"Marker.name", "WiFi.ssid", "CommandResult.error"}
	seen := map[reflect.Type]bool{}
	for _, st := range schemaTypes {
		seen[st.t] = true
		rules := fieldRules[st.t]
		if rules == nil {
			t.Errorf("%s: no fieldRules", st.t.Name())
			continue
		}
		names := map[string]bool{}
		for _, f := range fieldsOf(st.t) {
			names[f.name] = true
			id := st.t.Name() + "." + f.name
			r, ok := rules[f.name]
			if !ok {
				t.Errorf("%s: no rule", id)
				continue
			}
			checkRule(t, id, f.typ, r, slices.Contains(textFields, id))
		}
		for name := range rules {
			if !names[name] {
				t.Errorf("%s.%s: rule for no field", st.t.Name(), name)
			}
		}
		for _, c := range conditions[st.t] {
			for _, name := range append(append([]string{c.field}, c.required...), c.forbidden...) {
				if !names[name] {
					t.Errorf("%s: condition on unknown field %s", st.t.Name(), name)
				}
			}
		}
	}
	for typ := range fieldRules {
		if !seen[typ] {
			t.Errorf("fieldRules has %s, missing from schemaTypes", typ)
		}
	}
	for _, f := range fieldsOf(reflect.TypeFor[Event]()) {
		if r := fieldRules[reflect.TypeFor[Event]()][f.name]; r.text {
			t.Errorf("Event.%s is free text", f.name)
		}
	}
}

func checkRule(t *testing.T, id string, typ reflect.Type, r rule, textOK bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == timeType:
		if r.re != timeRe {
			t.Errorf("%s: timestamps must use timeRule", id)
		}
	case typ.Kind() == reflect.Slice:
		if r.maxItems == 0 {
			t.Errorf("%s: array without maxItems", id)
		}
		if typ.Elem().Kind() == reflect.String {
			if r.items == nil {
				t.Errorf("%s: array of strings without an item rule", id)
			} else {
				checkRule(t, id+"[]", typ.Elem(), *r.items, textOK)
			}
		}
	case typ.Kind() == reflect.String:
		switch {
		case r.text && !textOK:
			t.Errorf("%s: free text is not allowed here", id)
		case r.text && r.maxBytes == 0:
			t.Errorf("%s: text without a byte limit", id)
		case !r.text && r.enum == nil && r.re == nil:
			t.Errorf("%s: string without enum or pattern", id)
		}
	case typ.Kind() == reflect.Bool, typ.Kind() == reflect.Struct:
	default: // numbers
		if r.min == nil {
			t.Errorf("%s: number without minimum", id)
		}
		if r.max == nil && typ.Kind() != reflect.Uint64 {
			t.Errorf("%s: number without maximum", id)
		}
	}
}

// TestTimePatternMatchesCheckTime checks that timePattern, which decoders
// apply to received strings, and checkTime, which Validate applies to
// time.Time values, agree.
func TestTimePatternMatchesCheckTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2019, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 28, 12, 0, 0, 500, time.UTC),
		time.Date(2099, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
	} {
		s := tm.Format(time.RFC3339Nano)
		if matched, valid := timeRe.MatchString(s), checkTime("ts", tm) == nil; matched != valid {
			t.Errorf("%s: timePattern matches %v, checkTime accepts %v", s, matched, valid)
		}
	}
}

// TestEventDocTable checks that the table in Event's doc comment says what
// eventTypeRules says.
func TestEventDocTable(t *testing.T) {
	src, err := os.ReadFile("event.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range eventTypeRules {
		want := fmt.Sprintf("//\t%s %s; %s", r.typ, strings.Join(r.required, ", "), strings.Join(r.allowed, ", "))
		found := false
		for line := range strings.Lines(string(src)) {
			if strings.Join(strings.Fields(line), " ") == strings.Join(strings.Fields(want), " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("Event doc lacks the line %q", want)
		}
	}
}
