// Package configs holds the configuration of relais-agent and relais-central:
// the settings with their defaults and validation, the TOML loader that rejects
// unknown keys and reports every bad value with its file, line and what would
// be accepted, the RELAIS_* environment and --set flag overrides, and the
// documented example files agent.example.toml and central.example.toml, which
// are embedded so that the binaries can print them.
package configs
