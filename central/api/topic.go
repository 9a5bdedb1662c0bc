package api

import (
	"fmt"
	"strings"
)

// Root is the first two levels of every topic. The version changes only with
// an incompatible contract.
const Root = "relais/v1"

// ShareGroup is the shared-subscription group of central replicas.
const ShareGroup = "relais-central"

// Topic kinds, the level after {site}/{agent}.
const (
	KindStatus        = "status"     // agent→central, QoS 1, retained
	KindEvents        = "events"     // agent→central, QoS 1
	KindMetrics       = "metrics"    // agent→central, QoS 0
	KindAck           = "ack"        // central→agent, QoS 1
	KindCommand       = "cmd"        // central→agent, QoS 1, followed by /{name}
	KindCommandResult = "cmd-result" // agent→central, QoS 1
)

var kinds = []string{KindStatus, KindEvents, KindMetrics, KindAck, KindCommand, KindCommandResult}

// Topic is one topic of the contract:
// relais/v1/{Site}/{Agent}/{Kind}, or relais/v1/{Site}/{Agent}/cmd/{Command}.
type Topic struct {
	Site    string // site id, see ValidID
	Agent   string // agent id within the site, see ValidID
	Kind    string // one of the Kind constants
	Command string // command name when Kind is KindCommand, else empty
}

// ValidID reports whether s is a valid site or agent id: 1 to 63 characters
// among a-z, 0-9 and '-'.
func ValidID(s string) bool { return idRe.MatchString(s) }

// String returns the topic name. It does not validate t; see Validate.
func (t Topic) String() string {
	s := Root + "/" + t.Site + "/" + t.Agent + "/" + t.Kind
	if t.Kind == KindCommand {
		s += "/" + t.Command
	}
	return s
}

// Validate reports whether t names a topic of the contract. Errors match
// ErrBadTopic.
func (t Topic) Validate() error {
	switch {
	case !ValidID(t.Site):
		return badTopic("site must match " + idPattern)
	case !ValidID(t.Agent):
		return badTopic("agent must match " + idPattern)
	case !contains(kinds, t.Kind):
		return badTopic("unknown kind")
	case t.Kind == KindCommand && !ValidCommand(t.Command):
		return badTopic("unknown command")
	case t.Kind != KindCommand && t.Command != "":
		return badTopic("command set for kind " + t.Kind)
	}
	return nil
}

func badTopic(reason string) error { return fmt.Errorf("%w: %s", ErrBadTopic, reason) }

// ParseTopic parses and validates a topic name. It rejects anything else
// than the contract's topics: another root or version, a bad id, an unknown
// kind or command, wildcards, empty or extra levels. Errors match ErrBadTopic.
func ParseTopic(s string) (Topic, error) {
	rest, ok := strings.CutPrefix(s, Root+"/")
	if !ok {
		return Topic{}, badTopic("must start with " + Root + "/")
	}
	levels := strings.SplitN(rest, "/", 5)
	var t Topic
	switch {
	case len(levels) < 3:
		return Topic{}, badTopic("too few levels")
	case len(levels) == 3:
		t = Topic{Site: levels[0], Agent: levels[1], Kind: levels[2]}
		if t.Kind == KindCommand {
			return Topic{}, badTopic("command name missing")
		}
	case len(levels) == 4 && levels[2] == KindCommand:
		t = Topic{Site: levels[0], Agent: levels[1], Kind: levels[2], Command: levels[3]}
	default:
		return Topic{}, badTopic("too many levels")
	}
	if err := t.Validate(); err != nil {
		return Topic{}, err
	}
	return t, nil
}

// StatusTopic returns relais/v1/{site}/{agent}/status.
func StatusTopic(site, agent string) string { return Topic{site, agent, KindStatus, ""}.String() }

// EventsTopic returns relais/v1/{site}/{agent}/events.
func EventsTopic(site, agent string) string { return Topic{site, agent, KindEvents, ""}.String() }

// MetricsTopic returns relais/v1/{site}/{agent}/metrics.
func MetricsTopic(site, agent string) string { return Topic{site, agent, KindMetrics, ""}.String() }

// AckTopic returns relais/v1/{site}/{agent}/ack.
func AckTopic(site, agent string) string { return Topic{site, agent, KindAck, ""}.String() }

// CommandTopic returns relais/v1/{site}/{agent}/cmd/{name}.
func CommandTopic(site, agent, name string) string {
	return Topic{site, agent, KindCommand, name}.String()
}

// CommandResultTopic returns relais/v1/{site}/{agent}/cmd-result.
func CommandResultTopic(site, agent string) string {
	return Topic{site, agent, KindCommandResult, ""}.String()
}

// AgentFilter returns the subscription filter that matches the topics of
// kind for every agent of every site, such as relais/v1/+/+/events; for
// KindCommand it matches every command: relais/v1/+/+/cmd/+. It panics if
// kind is not a Kind constant.
func AgentFilter(kind string) string {
	if !contains(kinds, kind) {
		panic("api: AgentFilter: unknown kind " + kind)
	}
	return Topic{"+", "+", kind, "+"}.String()
}

// SharedFilter returns AgentFilter(kind) as a shared subscription of
// ShareGroup, such as $share/relais-central/relais/v1/+/+/events, so that
// replicas of central share the messages. It panics like AgentFilter.
func SharedFilter(kind string) string {
	return "$share/" + ShareGroup + "/" + AgentFilter(kind)
}

// CommandFilter returns the filter an agent subscribes to for its commands:
// relais/v1/{site}/{agent}/cmd/+.
func CommandFilter(site, agent string) string {
	return Topic{site, agent, KindCommand, "+"}.String()
}
