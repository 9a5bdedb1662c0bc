package api

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	for _, c := range []struct {
		topic string
		want  Topic
	}{
		{StatusTopic("mediatheque-nord", "pi-1"), Topic{"mediatheque-nord", "pi-1", KindStatus, ""}},
		{EventsTopic("s", "a"), Topic{"s", "a", KindEvents, ""}},
		{MetricsTopic("s", "a"), Topic{"s", "a", KindMetrics, ""}},
		{AckTopic("s", "a"), Topic{"s", "a", KindAck, ""}},
		{CommandTopic("s", "a", CommandTestPage), Topic{"s", "a", KindCommand, CommandTestPage}},
		{CommandResultTopic("s", "a"), Topic{"s", "a", KindCommandResult, ""}},
		{"relais/v1/" + strings.Repeat("a", 63) + "/0-9/status", Topic{strings.Repeat("a", 63), "0-9", KindStatus, ""}},
	} {
		got, err := ParseTopic(c.topic)
		if err != nil || got != c.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", c.topic, got, err, c.want)
		}
		if got.String() != c.topic {
			t.Errorf("ParseTopic(%q).String() = %q", c.topic, got.String())
		}
	}
	if got := StatusTopic("mediatheque-nord", "pi-1"); got != "relais/v1/mediatheque-nord/pi-1/status" {
		t.Errorf("StatusTopic = %q", got)
	}
	if got := CommandTopic("s", "a", CommandIdentify); got != "relais/v1/s/a/cmd/identify" {
		t.Errorf("CommandTopic = %q", got)
	}
}

func TestParseTopicRejects(t *testing.T) {
	for _, topic := range []string{
		"",
		"relais/v1",
		"relais/v1/",
		"relais/v2/s/a/status",
		"Relais/v1/s/a/status",
		"/relais/v1/s/a/status",
		"x/relais/v1/s/a/status",
		"relais/v1/s/a",
		"relais/v1/s/a/status/",
		"relais/v1/s/a/status/extra",
		"relais/v1/s/a/events/x/y",
		"relais/v1//a/status",
		"relais/v1/s//status",
		"relais/v1/+/a/status",
		"relais/v1/s/+/events",
		"relais/v1/s/a/+",
		"relais/v1/s/a/#",
		"relais/v1/#",
		"relais/v1/S/a/status",
		"relais/v1/s/a_b/status",
		"relais/v1/s/a/Status",
		"relais/v1/s/a/cmd",
		"relais/v1/s/a/cmd/",
		"relais/v1/s/a/cmd/+",
		"relais/v1/s/a/cmd/reboot",
		"relais/v1/s/a/cmd/identify/now",
		"relais/v1/s/a/unknown",
		"relais/v1/" + strings.Repeat("a", 64) + "/a/status",
		"relais/v1/s/é/status",
		"$share/relais-central/relais/v1/s/a/events",
		AgentFilter(KindEvents),
		SharedFilter(KindStatus),
	} {
		if got, err := ParseTopic(topic); !errors.Is(err, ErrBadTopic) {
			t.Errorf("ParseTopic(%q) = %+v, %v; want ErrBadTopic", topic, got, err)
		}
	}
}

func TestTopicValidate(t *testing.T) {
	for _, top := range []Topic{
		{"s", "a", KindStatus, "identify"}, // command on a non-command kind
		{"s", "a", KindCommand, ""},
		{"s", "a", "", ""},
		{"s/x", "a", KindStatus, ""},
	} {
		if err := top.Validate(); !errors.Is(err, ErrBadTopic) {
			t.Errorf("%+v.Validate() = %v, want ErrBadTopic", top, err)
		}
	}
}

func TestFilters(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{AgentFilter(KindEvents), "relais/v1/+/+/events"},
		{AgentFilter(KindStatus), "relais/v1/+/+/status"},
		{AgentFilter(KindCommand), "relais/v1/+/+/cmd/+"},
		{SharedFilter(KindEvents), "$share/relais-central/relais/v1/+/+/events"},
		{SharedFilter(KindCommandResult), "$share/relais-central/relais/v1/+/+/cmd-result"},
		{CommandFilter("s", "a"), "relais/v1/s/a/cmd/+"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AgentFilter(\"bogus\") did not panic")
		}
	}()
	AgentFilter("bogus")
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "mediatheque-nord": true, "0": true, "-": true, strings.Repeat("z", 63): true,
		"": false, "A": false, "a_b": false, "a/b": false, "+": false, "#": false, "a b": false,
		strings.Repeat("z", 64): false, "é": false, "a\n": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestValidCommand(t *testing.T) {
	for _, name := range []string{"identify", "test-page", "cancel-jobs", "purge-scans", "refresh"} {
		if !ValidCommand(name) {
			t.Errorf("ValidCommand(%q) = false", name)
		}
	}
	for _, name := range []string{"", "reboot", "Identify", "test_page", "+"} {
		if ValidCommand(name) {
			t.Errorf("ValidCommand(%q) = true", name)
		}
	}
}
