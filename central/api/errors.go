package api

import "errors"

// Sentinel errors. Every error returned by a Decode function matches exactly
// one of ErrTooLarge, ErrMalformed and ErrInvalid under errors.Is, so that a
// receiver can count rejections by reason; ParseTopic errors match ErrBadTopic.
var (
	// ErrTooLarge: the payload exceeds MaxPayloadBytes, or a batch holds more
	// than MaxBatchEvents events.
	ErrTooLarge = errors.New("api: payload too large")
	// ErrMalformed: the payload is not one well-formed UTF-8 JSON value
	// (syntax error, invalid UTF-8, trailing data).
	ErrMalformed = errors.New("api: malformed JSON")
	// ErrInvalid: the payload is well-formed JSON but breaks the contract
	// (unknown or duplicate field, wrong type, missing or forbidden field,
	// value out of its rule). The error is a *ValidationError.
	ErrInvalid = errors.New("api: invalid payload")
	// ErrBadTopic: a topic is not one of the contract's topics.
	ErrBadTopic = errors.New("api: bad topic")
)

// ValidationError reports the first value of a payload that breaks the
// contract. It matches ErrInvalid under errors.Is. Neither Field nor Reason
// echoes a received value, except the name of an unknown field or command,
// quoted and clipped.
type ValidationError struct {
	// Field is the JSON path of the offending value, such as "events[3].pages"
	// or "printer.markers[0].level"; it is empty for the payload as a whole.
	Field string
	// Reason says what is wrong, such as "must be >= 0" or "required".
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason}
}
