// Package api is the wire contract between relais-agent and relais-central:
// the MQTT topic layout (relais/v1/{site}/{agent}/...), the JSON payload of
// every topic kind (Status, Event and EventBatch, Metrics, Ack, Command,
// CommandResult), the rules each payload must satisfy, and strict decoders
// that enforce them on untrusted input. The rule tables in this package are
// the single source of the contract: Validate enforces them and the JSON
// Schema returned by Schema is generated from them. Usage events carry counts
// only: no event field is free text that could hold a job name, a file name,
// a user name or a MAC address. Timestamps are time.Time values in UTC
// (call UTC()) from 2020 to 2099, sent as RFC 3339 with a "Z". The package
// depends on the standard library only, so both sides can import it.
package api
