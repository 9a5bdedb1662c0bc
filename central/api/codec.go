package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Payload is implemented by every payload type.
type Payload interface {
	// Validate reports whether the value satisfies the contract. Its errors
	// are *ValidationError values naming the offending field.
	Validate() error
}

// Encode validates p and returns its JSON encoding as sent on the wire. It
// fails with a *ValidationError, or with ErrTooLarge when the encoding is
// larger than MaxPayloadBytes.
func Encode(p Payload) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxPayloadBytes)
	}
	return b, nil
}

// EncodeEvents encodes events for the events topic: one event as a single
// object, several as an EventBatch. It fails like Encode, and with ErrTooLarge
// for more than MaxBatchEvents events.
func EncodeEvents(events ...Event) ([]byte, error) {
	switch {
	case len(events) == 0:
		return nil, invalid("events", "must hold at least 1 event")
	case len(events) == 1:
		return Encode(events[0])
	case len(events) > MaxBatchEvents:
		return nil, fmt.Errorf("%w: %d events, limit %d", ErrTooLarge, len(events), MaxBatchEvents)
	}
	return Encode(EventBatch{Events: events})
}

// DecodeStatus decodes and validates a status payload, including the will
// {"online":false}. See DecodeEvents for the checks every decoder makes.
func DecodeStatus(payload []byte) (Status, error) { return decode[Status](payload) }

// DecodeEvents decodes and validates an events payload, in either form: one
// event object, or a batch {"events":[...]} of 1 to MaxBatchEvents events.
//
// Like every decoder of this package it is strict: it refuses a payload
// larger than MaxPayloadBytes (ErrTooLarge), one that is not a single
// well-formed UTF-8 JSON value (ErrMalformed), and one that breaks the
// contract (ErrInvalid, as a *ValidationError): not an object, unknown,
// duplicate or differently-cased field names, null, wrong JSON types,
// missing always-present fields, then anything Validate refuses.
func DecodeEvents(payload []byte) ([]Event, error) {
	if err := precheck(payload); err != nil {
		return nil, err
	}
	// A batch is an object with an "events" field, which Event lacks.
	var probe struct {
		Events json.RawMessage `json:"events"`
	}
	if json.NewDecoder(bytes.NewReader(payload)).Decode(&probe) != nil || probe.Events == nil {
		e, err := decode[Event](payload)
		if err != nil {
			return nil, err
		}
		return []Event{e}, nil
	}
	b, err := decode[EventBatch](payload)
	if err != nil {
		return nil, err
	}
	return b.Events, nil
}

// DecodeMetrics decodes and validates a metrics payload. See DecodeEvents for
// the checks every decoder makes.
func DecodeMetrics(payload []byte) (Metrics, error) { return decode[Metrics](payload) }

// DecodeAck decodes and validates an ack payload. See DecodeEvents for the
// checks every decoder makes.
func DecodeAck(payload []byte) (Ack, error) { return decode[Ack](payload) }

// DecodeCommand decodes and validates the payload of command name (the last
// level of its cmd/{name} topic) and sets the result's Name. See DecodeEvents
// for the checks every decoder makes.
func DecodeCommand(name string, payload []byte) (Command, error) {
	return decode(payload, func(c *Command) { c.Name = name })
}

// DecodeCommandResult decodes and validates a cmd-result payload. See
// DecodeEvents for the checks every decoder makes.
func DecodeCommandResult(payload []byte) (CommandResult, error) {
	return decode[CommandResult](payload)
}

// decode is the strict decoder behind every Decode function. The setters
// complete the value (with what the topic carries) before validation.
func decode[T Payload](payload []byte, setters ...func(*T)) (T, error) {
	var zero T
	if err := precheck(payload); err != nil {
		return zero, err
	}
	// First pass: the shape of the JSON against the Go type, which
	// encoding/json alone does not check strictly enough.
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := checkShape(dec, reflect.TypeFor[T](), "", false); err != nil {
		return zero, err
	}
	if err := checkEOF(dec); err != nil {
		return zero, err
	}
	// Second pass: the decoding proper.
	var v T
	dec = json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return zero, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkEOF(dec); err != nil {
		return zero, err
	}
	for _, set := range setters {
		set(&v)
	}
	if b, ok := any(v).(EventBatch); ok && len(b.Events) > MaxBatchEvents {
		return zero, fmt.Errorf("%w: %d events, limit %d", ErrTooLarge, len(b.Events), MaxBatchEvents)
	}
	if err := v.Validate(); err != nil {
		return zero, err
	}
	return v, nil
}

// precheck refuses payloads that are too large or not UTF-8.
func precheck(payload []byte) error {
	if len(payload) > MaxPayloadBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), MaxPayloadBytes)
	}
	if !utf8.Valid(payload) {
		return fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	return nil
}

// checkEOF fails unless dec has nothing left but white space.
func checkEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrMalformed)
	}
	return nil
}

// checkShape reads the next JSON value from dec (which must use UseNumber)
// and checks it against Go type t: objects hold only t's JSON field names,
// exactly cased and at most once each, and every field that is always
// encoded (no omitempty or omitzero); no value is null; every JSON type
// matches, integers fit, timestamps match timePattern. When omitZero is set
// the value is one the encoder leaves out when zero, so a zero ("", 0,
// false, []) is refused: what is absent is left out, as Encode does.
func checkShape(dec *json.Decoder, t reflect.Type, path string, omitZero bool) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	if tok == nil {
		return invalid(path, "must not be null")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		s, ok := tok.(string)
		if !ok || !timeRe.MatchString(s) {
			return invalid(path, "must be an RFC 3339 date-time in UTC, such as 2026-03-01T09:30:00Z")
		}
		var tm time.Time
		if tm.UnmarshalText([]byte(s)) != nil {
			return invalid(path, "must be a valid date-time")
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return invalid(path, "must be an object")
		}
		fs := fieldsOf(t)
		seen := make([]bool, len(fs))
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return syntaxError(err)
			}
			key := tok.(string) // object keys are strings
			i := -1
			for j, f := range fs {
				if f.name == key {
					i = j
				}
			}
			if i < 0 {
				return invalid(path, "unknown field "+quoteClipped(key))
			}
			if seen[i] {
				return invalid(join(path, key), "duplicate field")
			}
			seen[i] = true
			omitZero := fs[i].omit && fs[i].typ.Kind() != reflect.Pointer
			if err := checkShape(dec, fs[i].typ, join(path, key), omitZero); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // '}'
			return syntaxError(err)
		}
		for i, f := range fs {
			if !f.omit && !seen[i] {
				return invalid(join(path, f.name), "required")
			}
		}
		return nil
	case reflect.Slice:
		if tok != json.Delim('[') {
			return invalid(path, "must be an array")
		}
		i := 0
		for ; dec.More(); i++ {
			if err := checkShape(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false); err != nil {
				return err
			}
		}
		if omitZero && i == 0 {
			return invalid(path, "must not be empty (leave the field out)")
		}
		if _, err := dec.Token(); err != nil { // ']'
			return syntaxError(err)
		}
		return nil
	case reflect.String:
		if s, ok := tok.(string); !ok {
			return invalid(path, "must be a string")
		} else if omitZero && s == "" {
			return invalid(path, "must not be empty (leave the field out)")
		}
		return nil
	case reflect.Bool:
		if b, ok := tok.(bool); !ok {
			return invalid(path, "must be a boolean")
		} else if omitZero && !b {
			return invalid(path, "must not be false (leave the field out)")
		}
		return nil
	}
	n, ok := tok.(json.Number)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !ok {
			return invalid(path, "must be an integer")
		}
		if x, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return invalid(path, intReason(n))
		} else if omitZero && x == 0 {
			return invalid(path, "must not be 0 (leave the field out)")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !ok {
			return invalid(path, "must be an integer")
		}
		if x, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			if strings.HasPrefix(string(n), "-") {
				return invalid(path, "must be >= 0")
			}
			return invalid(path, intReason(n))
		} else if omitZero && x == 0 {
			return invalid(path, "must not be 0 (leave the field out)")
		}
	case reflect.Float32, reflect.Float64:
		if !ok {
			return invalid(path, "must be a number")
		}
		if x, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return invalid(path, "number out of range")
		} else if omitZero && x == 0 {
			return invalid(path, "must not be 0 (leave the field out)")
		}
	default:
		panic("api: checkShape: unsupported type " + t.String())
	}
	return nil
}

// intReason says why a JSON number does not fit an integer field.
func intReason(n json.Number) string {
	if strings.ContainsAny(string(n), ".eE") {
		return "must be an integer"
	}
	return "integer out of range"
}

// syntaxError wraps a json.Decoder error as ErrMalformed.
func syntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected end of JSON", ErrMalformed)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// quoteClipped quotes a received string for an error message, clipped to
// 32 bytes.
func quoteClipped(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strconv.Quote(s)
}
