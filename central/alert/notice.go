package alert

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Kinds of incident.
const (
	KindOffline = "offline" // an agent is offline
	KindFault   = "fault"   // a fault of an agent's device is open
)

// States of a notice.
const (
	StateOpen     = "open"     // the alert
	StateResolved = "resolved" // the recovery notice
)

// Notice is one alert (State "open") or recovery notice (State
// "resolved"). Its JSON encoding is the body POSTed to the webhook, a
// stable shape where every key is always present:
//
//	{
//	  "kind": "fault",                  // "offline" or "fault"
//	  "state": "open",                  // "open" or "resolved"
//	  "site": "mediatheque-nord",
//	  "agent": "pi-accueil",
//	  "device": "printer",              // faults: printer, scanner, wifi, host or agent; "" for offline
//	  "code": "media-empty",            // faults: the fault code; "" for offline
//	  "severity": "fault",              // faults: "fault" or "warn", "" when unknown; "" for offline
//	  "since": "2026-11-23T13:05:00Z",  // when the agent went offline or the fault was raised (UTC)
//	  "resolved_at": null,              // when it ended (UTC); null while open
//	  "message": "Site mediatheque-nord, agent pi-accueil : plus de papier dans l'imprimante (media-empty) depuis le 23/11/2026 à 14 h 05 CET (35 min).",
//	  "dashboard_url": "https://central.example.org/sites/mediatheque-nord/pi-accueil"  // "" without a dashboard
//	}
//
// Message is one sentence in plain words, in the Alerter's language. Times
// are whole seconds. A receiver pairs an alert with its recovery notice by
// kind, site, agent, device, code and since.
type Notice struct {
	Kind         string     `json:"kind"`
	State        string     `json:"state"`
	Site         string     `json:"site"`
	Agent        string     `json:"agent"`
	Device       string     `json:"device"`
	Code         string     `json:"code"`
	Severity     string     `json:"severity"`
	Since        time.Time  `json:"since"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	Message      string     `json:"message"`
	DashboardURL string     `json:"dashboard_url"`
}

// subject is what an incident is about: an offline agent, or one open
// fault of one of its devices.
type subject struct {
	kind        string
	site, agent string
	device      api.Device // fault only
	code        string     // fault only
	severity    api.Severity
	since       time.Time
}

// key is the incident key: offline/{site}/{agent} or
// fault/{site}/{agent}/{device}/{code}.
func (s subject) key() string {
	if s.kind == KindOffline {
		return KindOffline + "/" + s.site + "/" + s.agent
	}
	return KindFault + "/" + s.site + "/" + s.agent + "/" + string(s.device) + "/" + s.code
}

// subjectOf returns the subject of an incident recorded in the store, or
// false when the incident is not one of the Alerter's.
func subjectOf(kind, key string, since time.Time) (subject, bool) {
	parts := strings.Split(key, "/")
	switch {
	case kind == KindOffline && len(parts) == 3 && parts[0] == KindOffline:
		return subject{kind: kind, site: parts[1], agent: parts[2], since: since}, true
	case kind == KindFault && len(parts) == 5 && parts[0] == KindFault:
		return subject{kind: kind, site: parts[1], agent: parts[2], device: api.Device(parts[3]), code: parts[4], since: since}, true
	}
	return subject{}, false
}

// text is a notice in words: the sentence of Notice.Message, the e-mail
// subject and the e-mail body.
type text struct {
	message, subject, body string
}

// text writes the notice n about s in language l, with times in loc. now
// is the time of the round, for the duration of an open incident.
func (s subject) text(l Language, loc *time.Location, n *Notice, now time.Time) text {
	var t text
	since := formatTime(l, s.since, loc)
	end := now
	if n.ResolvedAt != nil {
		end = *n.ResolvedAt
	}
	dur := formatDuration(l, end.Sub(s.since))
	at := ""
	if n.ResolvedAt != nil {
		at = formatTime(l, *n.ResolvedAt, loc)
	}
	where := s.site + "/" + s.agent
	fr := l != English
	switch {
	case s.kind == KindOffline && n.State == StateOpen:
		if fr {
			t.message = fmt.Sprintf("L'agent %s du site %s est hors ligne depuis le %s (%s).", s.agent, s.site, since, dur)
			t.subject = fmt.Sprintf("[Relais] %s : hors ligne", where)
		} else {
			t.message = fmt.Sprintf("Agent %s of site %s has been offline since %s (%s).", s.agent, s.site, since, dur)
			t.subject = fmt.Sprintf("[Relais] %s: offline", where)
		}
	case s.kind == KindOffline:
		if fr {
			t.message = fmt.Sprintf("L'agent %s du site %s est de nouveau en ligne depuis le %s, après %s hors ligne.", s.agent, s.site, at, dur)
			t.subject = fmt.Sprintf("[Relais] %s : de nouveau en ligne", where)
		} else {
			t.message = fmt.Sprintf("Agent %s of site %s is back online since %s, after %s offline.", s.agent, s.site, at, dur)
			t.subject = fmt.Sprintf("[Relais] %s: back online", where)
		}
	default:
		what, known := describeFault(l, s.device, s.code)
		code := ""
		if known {
			code = " (" + s.code + ")"
		}
		switch {
		case n.State == StateOpen && fr:
			t.message = fmt.Sprintf("Site %s, agent %s : %s%s depuis le %s (%s).", s.site, s.agent, what, code, since, dur)
			t.subject = fmt.Sprintf("[Relais] %s : %s", where, what)
		case n.State == StateOpen:
			t.message = fmt.Sprintf("Site %s, agent %s: %s%s since %s (%s).", s.site, s.agent, what, code, since, dur)
			t.subject = fmt.Sprintf("[Relais] %s: %s", where, what)
		case fr:
			t.message = fmt.Sprintf("Site %s, agent %s : résolu le %s après %s — %s%s.", s.site, s.agent, at, dur, what, code)
			t.subject = fmt.Sprintf("[Relais] %s : résolu — %s", where, what)
		default:
			t.message = fmt.Sprintf("Site %s, agent %s: resolved at %s after %s — %s%s.", s.site, s.agent, at, dur, what, code)
			t.subject = fmt.Sprintf("[Relais] %s: resolved — %s", where, what)
		}
	}

	var b strings.Builder
	b.WriteString(t.message)
	b.WriteString("\n\n")
	field := func(fr, en, value string) {
		if value == "" {
			return
		}
		if l == English {
			fmt.Fprintf(&b, "%s: %s\n", en, value)
		} else {
			fmt.Fprintf(&b, "%s : %s\n", fr, value)
		}
	}
	field("Site", "Site", s.site)
	field("Agent", "Agent", s.agent)
	if s.kind == KindFault {
		field("Appareil", "Device", deviceName(l, s.device))
		field("Code", "Code", s.code)
		field("Gravité", "Severity", severityName(l, s.severity))
	}
	field("Depuis", "Since", since)
	field("Résolu", "Resolved", at)
	field("Tableau de bord", "Dashboard", n.DashboardURL)
	b.WriteString("\n-- \n")
	b.WriteString(words{"Message automatique de relais-central.", "Automatic message from relais-central."}.in(l))
	b.WriteString("\n")
	t.body = b.String()
	return t
}

// agentURL is the dashboard page of an agent, or "" without a dashboard.
func agentURL(base *url.URL, site, agent string) string {
	if base == nil {
		return ""
	}
	return base.JoinPath("sites", site, agent).String()
}
