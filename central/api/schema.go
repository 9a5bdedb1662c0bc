package api

import (
	"bytes"
	_ "embed"
)

// schemaJSON is generated from the rule tables by TestSchema
// (go test ./central/api -run TestSchema -update).
//
//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of every payload, generated
// from the same rule tables as Validate. Its $defs are named after the Go
// types; the decoders are stricter than the schema only where it cannot
// express a rule (cross-field comparisons, calendar dates, command names).
func Schema() []byte { return bytes.Clone(schemaJSON) }
