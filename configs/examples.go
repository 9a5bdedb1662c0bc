package configs

import _ "embed"

// AgentExample is agent.example.toml: every agent key, documented.
//
//go:embed agent.example.toml
var AgentExample string

// CentralExample is central.example.toml: every central key, documented.
//
//go:embed central.example.toml
var CentralExample string
