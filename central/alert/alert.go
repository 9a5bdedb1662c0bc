// Package alert tells technicians when an agent has been offline, or a
// fault of one of its devices open, for longer than the configured time:
// once per incident, by a JSON POST to a webhook and by e-mail (SMTP with
// STARTTLS when the server offers it), in French or English, followed by a
// recovery notice when the incident ends. Incidents live in the store, so a
// restart of central neither forgets nor repeats them. An Alerter checks
// the fleet at a fixed interval on an injected clock; a delivery that fails
// is retried a few times within the round and then at the next round, so an
// alert is sent at least once to every channel and, as long as the process
// runs, exactly once. An incident is recorded once every channel took its
// alert: run one Alerter per store, since replicas of central sharing a
// database would each send what neither has recorded yet.
package alert

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// Defaults and bounds.
const (
	// DefaultInterval is how often the fleet is checked.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds one delivery attempt (one POST, one SMTP
	// session).
	DefaultTimeout = 10 * time.Second
	// attempts is how many times a delivery is tried within a round,
	// waiting backoff, then twice as long, between attempts.
	attempts = 3
	backoff  = 2 * time.Second
	// maxNotices bounds the notices sent in one round; the others wait
	// for the next rounds.
	maxNotices = 100
	// maxFaults bounds the open faults read in one round.
	maxFaults = 10000
	// maxPasswordBytes bounds the SMTP password file.
	maxPasswordBytes = 4096
)

// Options configure an Alerter. Store, OfflineAfter and FaultAfter are
// required; without a webhook and without SMTP, incidents are still
// recorded in the store (for the dashboard) but sent nowhere.
type Options struct {
	Store store.Store
	// Clock drives the rounds and the waits between attempts; the real
	// clock when nil.
	Clock clockwork.Clock
	// OfflineAfter: an agent offline or silent for this long is an
	// incident. FaultAfter: a fault open for this long is one.
	OfflineAfter, FaultAfter time.Duration
	// Interval between rounds; DefaultInterval when 0.
	Interval time.Duration
	// Timeout bounds one delivery attempt; DefaultTimeout when 0.
	Timeout time.Duration

	// WebhookURL receives notices as JSON POSTs (see Notice); none when
	// empty. HTTPClient sends them; when nil, a client that does not
	// follow redirects.
	WebhookURL string
	HTTPClient *http.Client

	// SMTP sends notices by e-mail; none when SMTP.Addr is empty.
	SMTP SMTP

	// DashboardURL is the base address of the dashboard, such as
	// https://central.example.org; notices then link to the agent's page,
	// DashboardURL/sites/{site}/{agent}. None when empty.
	DashboardURL string
	// Language of the messages: "fr" (the default) or "en".
	Language Language
	// Location is the time zone of the times in messages; time.Local when
	// nil.
	Location *time.Location
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// SMTP is how notices are sent by e-mail.
type SMTP struct {
	// Addr is the server, host:port. The session upgrades to TLS with
	// STARTTLS when the server offers it; port 465 is TLS from the start.
	Addr string
	// From is the sender and To the recipients, RFC 5322 addresses such
	// as "Relais <relais@example.org>".
	From string
	To   []string
	// Username and the password in PasswordFile (read by New; a final
	// newline is ignored) authenticate with AUTH PLAIN, which is sent
	// only over TLS or to localhost. No authentication when Username is
	// empty.
	Username     string
	PasswordFile string
	// TLSConfig verifies the server's certificate; when nil, the system
	// roots with the host of Addr as server name.
	TLSConfig *tls.Config
}

// Alerter checks the fleet and sends alerts. Its methods are safe for
// concurrent use; rounds do not overlap.
type Alerter struct {
	store        store.Store
	clock        clockwork.Clock
	offlineAfter time.Duration
	faultAfter   time.Duration
	interval     time.Duration
	timeout      time.Duration
	dashboard    *url.URL
	lang         Language
	loc          *time.Location
	log          *slog.Logger
	channels     []channel

	mu sync.Mutex // held during a round
	// pending holds the jobs left incomplete by a round, by id.
	pending map[string]*pending
}

// channel is a way to send notices.
type channel interface {
	// name identifies the channel in logs and errors.
	name() string
	// send makes one attempt; a *permanentError is not retried within the
	// round.
	send(ctx context.Context, n Notice, t text) error
}

// permanentError is a delivery failure that an immediate retry would not
// cure (the server refused the request); it is retried at the next round.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// New returns an Alerter, after checking the options and reading the SMTP
// password file.
func New(o Options) (*Alerter, error) {
	if o.Store == nil {
		return nil, errors.New("alert: no store")
	}
	if o.OfflineAfter <= 0 || o.FaultAfter <= 0 {
		return nil, fmt.Errorf("alert: offline after %v, fault after %v: want durations above zero", o.OfflineAfter, o.FaultAfter)
	}
	if o.Interval < 0 || o.Timeout < 0 {
		return nil, errors.New("alert: negative interval or timeout")
	}
	a := &Alerter{
		store:        o.Store,
		clock:        o.Clock,
		offlineAfter: o.OfflineAfter,
		faultAfter:   o.FaultAfter,
		interval:     cmp.Or(o.Interval, DefaultInterval),
		timeout:      cmp.Or(o.Timeout, DefaultTimeout),
		lang:         cmp.Or(o.Language, French),
		loc:          o.Location,
		log:          o.Logger,
		pending:      map[string]*pending{},
	}
	if a.clock == nil {
		a.clock = clockwork.NewRealClock()
	}
	if a.loc == nil {
		a.loc = time.Local
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.lang != French && a.lang != English {
		return nil, fmt.Errorf("alert: language %q: want fr or en", o.Language)
	}
	if o.DashboardURL != "" {
		u, err := parseHTTPURL(o.DashboardURL)
		if err != nil {
			return nil, fmt.Errorf("alert: dashboard URL: %w", err)
		}
		a.dashboard = u
	}
	if o.WebhookURL != "" {
		u, err := parseHTTPURL(o.WebhookURL)
		if err != nil {
			return nil, fmt.Errorf("alert: webhook URL: %w", err)
		}
		client := o.HTTPClient
		if client == nil {
			client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		a.channels = append(a.channels, &webhook{url: u.String(), client: client})
	}
	if o.SMTP.Addr != "" {
		m, err := newMailer(o.SMTP, a.clock, a.loc)
		if err != nil {
			return nil, fmt.Errorf("alert: %w", err)
		}
		a.channels = append(a.channels, m)
	} else if o.SMTP.From != "" || len(o.SMTP.To) > 0 || o.SMTP.Username != "" || o.SMTP.PasswordFile != "" {
		return nil, errors.New("alert: SMTP sender, recipients or credentials without a server address")
	}
	return a, nil
}

// parseHTTPURL parses an absolute http or https URL.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// address", s)
	}
	return u, nil
}

// readPassword reads a password file: at most maxPasswordBytes, a final
// newline ignored, not empty.
func readPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxPasswordBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxPasswordBytes)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return pw, nil
}

// Run checks the fleet at once, then every interval of the clock, until ctx
// ends; it then returns nil. A round that fails is logged and its work
// retried at the next one.
func (a *Alerter) Run(ctx context.Context) error {
	tick := a.clock.NewTicker(a.interval)
	defer tick.Stop()
	for {
		if err := a.Check(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("alert: round incomplete, retrying at the next one", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.Chan():
		}
	}
}

// job is one notice to deliver in a round, to some channels, and what to
// record in the store once all of them took it.
type job struct {
	id       string // incident key and state
	notice   Notice
	text     text
	subj     subject
	channels []channel
	record   func(context.Context) error // nil: nothing to record
}

// pending is a job that some channels took and others not yet, or whose
// record failed: it is carried to the next round with what it said.
type pending struct {
	job
	done map[string]bool // channel names that took it
}

// Check makes one round: it reads the fleet, its open faults and the open
// incidents from the store, sends the alerts of new incidents and the
// recovery notices of those that ended, and records both in the store once
// every channel took them. It returns what failed, joined; the rest of the
// round is done all the same, and what failed is tried again at the next
// round.
//
// An agent is offline when its latest status says so (the will), since
// that status, or when nothing came from it for OfflineAfter, since its
// last message; an agent that never reported is not. A fault is an
// incident when open for FaultAfter; the faults of an offline agent are
// unknown: they neither raise a new alert nor end an incident.
func (a *Alerter) Check(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now().UTC()

	fleet, err := a.store.Fleet(ctx)
	if err != nil {
		return fmt.Errorf("alert: reading the fleet: %w", err)
	}
	openOnly := true
	faults, err := a.store.Faults(ctx, store.FaultQuery{Open: &openOnly, Limit: maxFaults})
	if err != nil {
		return fmt.Errorf("alert: reading the open faults: %w", err)
	}
	// Beyond maxFaults, some open faults are not seen: their incidents
	// must not be taken as ended.
	allFaults := len(faults) < maxFaults
	if !allFaults {
		a.log.Warn("alert: too many open faults, some are not checked", "limit", maxFaults)
	}
	incidents, err := a.store.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("alert: reading the open incidents: %w", err)
	}

	// What holds now, by incident key, and whether it lasted long enough
	// to be told.
	type held struct {
		subj subject
		due  bool
	}
	holds := map[string]held{}
	agents := map[[2]string]store.AgentState{}
	offline := map[[2]string]bool{}
	for _, st := range fleet {
		id := [2]string{st.Site, st.Agent}
		agents[id] = st
		since, off := a.offlineSince(st, now)
		if !off {
			continue
		}
		offline[id] = true
		s := subject{kind: KindOffline, site: st.Site, agent: st.Agent, since: since}
		holds[s.key()] = held{s, now.Sub(since) >= a.offlineAfter}
	}
	for _, f := range faults {
		if !f.Open() {
			continue
		}
		s := subject{kind: KindFault, site: f.Site, agent: f.Agent, device: f.Device, code: f.Code, severity: f.Severity, since: f.Since}
		if h, ok := holds[s.key()]; ok && !h.subj.since.After(s.since) {
			continue // the same fault twice: keep the first
		}
		due := now.Sub(f.Since) >= a.faultAfter && !offline[[2]string{f.Site, f.Agent}]
		holds[s.key()] = held{s, due}
	}
	open := map[string]bool{}
	for _, inc := range incidents {
		open[inc.Key] = true
	}

	var jobs []job
	// Alerts: what lasted too long and was not told yet, or is being told.
	for _, key := range slices.Sorted(maps.Keys(holds)) {
		h := holds[key]
		if open[key] || !h.due && a.pending[key+" "+StateOpen] == nil {
			continue
		}
		inc := store.Incident{Key: key, Site: h.subj.site, Agent: h.subj.agent, Kind: h.subj.kind, Opened: h.subj.since}
		if h.subj.kind == KindFault {
			inc.Detail = h.subj.code
		}
		jobs = append(jobs, a.newJob(h.subj, StateOpen, time.Time{}, now, a.channels, func(ctx context.Context) error {
			if _, err := a.store.OpenIncident(ctx, inc); err != nil {
				return fmt.Errorf("alert: recording incident %s: %w", key, err)
			}
			return nil
		}))
	}
	// Recovery notices: the incidents whose subject no longer holds.
	slices.SortFunc(incidents, func(x, y store.Incident) int { return strings.Compare(x.Key, y.Key) })
	for _, inc := range incidents {
		if _, ok := holds[inc.Key]; ok {
			continue
		}
		s, ok := subjectOf(inc.Kind, inc.Key, inc.Opened)
		if !ok || s.kind == KindFault && !allFaults {
			continue // not one of ours, or not known to have ended
		}
		var at time.Time
		switch s.kind {
		case KindOffline:
			st, known := agents[[2]string{s.site, s.agent}]
			if !known {
				continue // the agent is gone: nothing is known of it
			}
			at = st.LastSeen
			if st.StatusAt.After(s.since) {
				at = st.StatusAt // its new status, sent when it came back
			}
		case KindFault:
			if at, s.severity, err = a.faultCleared(ctx, s); err != nil {
				return err
			}
		}
		if at.Before(s.since) || at.After(now) {
			at = now
		}
		key := inc.Key
		jobs = append(jobs, a.newJob(s, StateResolved, at, now, a.channels, func(ctx context.Context) error {
			if _, _, err := a.store.CloseIncident(ctx, key, at); err != nil {
				return fmt.Errorf("alert: closing incident %s: %w", key, err)
			}
			return nil
		}))
	}
	// What was under way and is no longer wanted: an alert that some
	// channels took, about something that ended before the others did,
	// ends with a recovery notice to those that took it.
	wanted := map[string]bool{}
	for _, j := range jobs {
		wanted[j.id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(a.pending)) {
		p := a.pending[id]
		switch {
		case wanted[id]:
			continue
		case p.record == nil: // a recovery notice that is not in the store
			jobs = append(jobs, p.job)
			continue
		}
		delete(a.pending, id)
		key := p.subj.key()
		if p.notice.State != StateOpen || open[key] || len(p.done) == 0 {
			continue // told in full, or recorded meanwhile by another central
		}
		var told []channel
		for _, ch := range p.channels {
			if p.done[ch.name()] {
				told = append(told, ch)
			}
		}
		jobs = append(jobs, a.newJob(p.subj, StateResolved, now, now, told, nil))
	}

	if len(jobs) > maxNotices {
		a.log.Warn("alert: too many notices for one round, the others wait for the next", "notices", len(jobs), "limit", maxNotices)
		jobs = jobs[:maxNotices]
	}
	var errs []error
	down := map[string]bool{} // channels that failed in this round
	for _, j := range jobs {
		if err := a.run(ctx, j, down); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
	}
	return errors.Join(errs...)
}

// newJob builds the job that tells the channels about s; resolved is when
// the incident ended, for StateResolved.
func (a *Alerter) newJob(s subject, state string, resolved, now time.Time, channels []channel, record func(context.Context) error) job {
	n := Notice{
		Kind:         s.kind,
		State:        state,
		Site:         s.site,
		Agent:        s.agent,
		Device:       string(s.device),
		Code:         s.code,
		Severity:     string(s.severity),
		Since:        s.since.UTC().Truncate(time.Second),
		DashboardURL: agentURL(a.dashboard, s.site, s.agent),
	}
	if state == StateResolved {
		r := resolved.UTC().Truncate(time.Second)
		n.ResolvedAt = &r
	}
	t := s.text(a.lang, a.loc, &n, now)
	n.Message = t.message
	return job{id: s.key() + " " + state, notice: n, text: t, subj: s, channels: channels, record: record}
}

// run delivers a job to the channels that have not taken it yet (skipping
// those that failed earlier in the round) and, once all have, records it.
// A job left incomplete stays pending, as it was first built.
func (a *Alerter) run(ctx context.Context, j job, down map[string]bool) error {
	p := a.pending[j.id]
	if p == nil {
		p = &pending{job: j, done: map[string]bool{}}
	}
	var errs []error
	complete := true
	for _, ch := range p.channels {
		name := ch.name()
		if p.done[name] {
			continue
		}
		if down[name] {
			complete = false
			continue
		}
		if err := a.deliver(ctx, ch, p.notice, p.text); err != nil {
			down[name] = true
			complete = false
			errs = append(errs, fmt.Errorf("alert: %s %s by %s: %w", p.subj.key(), p.notice.State, name, err))
			continue
		}
		p.done[name] = true
		a.log.Info("alert: notice sent", "incident", p.subj.key(), "state", p.notice.State, "channel", name)
	}
	if complete && p.record != nil {
		if err := p.record(ctx); err != nil {
			complete = false
			errs = append(errs, err)
		}
	}
	if complete {
		delete(a.pending, j.id)
	} else {
		a.pending[j.id] = p
	}
	return errors.Join(errs...)
}

// deliver sends a notice on one channel, trying again after a failure
// that is not permanent, up to attempts times, waiting on the clock.
func (a *Alerter) deliver(ctx context.Context, ch channel, n Notice, t text) error {
	wait := backoff
	var err error
	for i := range attempts {
		if i > 0 {
			timer := a.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return errors.Join(err, ctx.Err())
			case <-timer.Chan():
			}
			wait *= 2
		}
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		err = ch.send(actx, n, t)
		cancel()
		var perm *permanentError
		if err == nil || errors.As(err, &perm) {
			return err
		}
	}
	return err
}

// offlineSince says whether an agent is offline, and since when.
func (a *Alerter) offlineSince(st store.AgentState, now time.Time) (time.Time, bool) {
	switch {
	case st.LastSeen.IsZero() && st.StatusAt.IsZero():
		return time.Time{}, false // never reported
	case !st.Status.Online:
		if st.StatusAt.IsZero() {
			return st.LastSeen, true
		}
		return st.StatusAt, true
	case now.Sub(st.LastSeen) >= a.offlineAfter:
		return st.LastSeen, true
	}
	return time.Time{}, false
}

// faultCleared finds when the fault of an incident was cleared, and its
// severity; now when the store does not say.
func (a *Alerter) faultCleared(ctx context.Context, s subject) (time.Time, api.Severity, error) {
	closed := false
	recs, err := a.store.Faults(ctx, store.FaultQuery{Site: s.site, Agent: s.agent, Open: &closed, Since: s.since})
	if err != nil {
		return time.Time{}, "", fmt.Errorf("alert: reading the faults of %s/%s: %w", s.site, s.agent, err)
	}
	var at time.Time
	var sev api.Severity
	for _, f := range recs {
		if f.Device == s.device && f.Code == s.code && f.Cleared.After(at) {
			at, sev = f.Cleared, f.Severity
		}
	}
	if at.IsZero() {
		at = a.clock.Now().UTC()
	}
	return at, sev, nil
}
