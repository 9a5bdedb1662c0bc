// Package webapi is relais-central's JSON API under /api/v1/: the fleet's
// sites and agents with their health, one agent's live state, fault
// intervals, usage per site and period, and the remote actions of
// technicians (commands to an agent, fault acknowledgements). It uses the
// same authentication as the dashboard (central/auth: a session cookie, with
// its CSRF token on POST, or an API token as "Authorization: Bearer"). Every
// query parameter is validated strictly and every range is bounded; errors
// are JSON objects {"error":"..."}. The wire contract's JSON Schema is
// published at /api/v1/schema.json without authentication.
package webapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// Commander sends a command to an agent (through the MQTT broker).
// SendCommand returns once the command is published, not when the agent
// answers: the result arrives later on cmd-result and is recorded by
// ingest with store.CommandDone.
type Commander interface {
	SendCommand(ctx context.Context, site, agent string, c api.Command) error
}

// Options configure the API.
type Options struct {
	Store store.Store
	Auth  *auth.Auth
	// Commander sends remote actions; when nil the command route answers
	// 503.
	Commander Commander
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OfflineAfter is how long an agent may stay silent and still count as
	// online; 10 minutes when zero (the default of alerts.offline_after).
	OfflineAfter time.Duration
	// Timeout bounds the store queries of one request; 10 s when zero.
	Timeout time.Duration
	// Logger receives store failures; slog.Default() when nil.
	Logger *slog.Logger
}

// Limits of queries.
const (
	// MaxSites is the most sites one usage query may name.
	MaxSites = 1000
	// MaxRangeDays is the longest usage range with weekly or monthly rows
	// (five years); MaxDayRangeDays the longest with daily rows.
	MaxRangeDays    = 5*366 + 1
	MaxDayRangeDays = 366
	// MaxUsageRows is the most rows a usage answer holds.
	MaxUsageRows = 100_000
	// MaxFaults is the most faults one query returns.
	MaxFaults = 1000
	// DefaultFaults is how many faults a query returns without limit.
	DefaultFaults = 100
	// RecentCommands is how many commands the agent route lists.
	RecentCommands = 20
	// maxBodyBytes bounds a request body.
	maxBodyBytes = 4 << 10
)

type handler struct {
	o Options
}

// Handler returns the API's handler, to be mounted at the server's root: it
// serves /api/v1/ only. It resolves credentials itself with
// Options.Auth.Middleware (a request already resolved is not looked up
// again), and lets any role read; commands and fault acknowledgements need
// a role that auth.CanAct allows.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &handler{o: o}
	read := o.Auth.Require()
	act := o.Auth.Require(store.Admin, store.Technician)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/schema.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/schema+json")
		w.Write(api.Schema())
	})
	mux.Handle("GET /api/v1/sites", read(h.fn(h.sites)))
	mux.Handle("GET /api/v1/sites/{site}/agents/{agent}", read(h.fn(h.agent)))
	mux.Handle("GET /api/v1/faults", read(h.fn(h.faults)))
	mux.Handle("GET /api/v1/usage", read(h.fn(h.usage)))
	mux.Handle("POST /api/v1/sites/{site}/agents/{agent}/commands/{name}", act(h.fn(h.command)))
	mux.Handle("POST /api/v1/faults/{id}/ack", act(h.fn(h.ack)))
	mux.Handle("/api/v1/", read(h.fn(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no such API route: %s %s", r.Method, r.URL.Path)
	})))
	return o.Auth.Middleware(mux)
}

// httpError is an error with its HTTP status and a message for the client.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fn adapts a handler that returns an error: an *httpError is sent as it
// is, any other error is logged and answered 500 (or 504 on timeout)
// without its details.
func (h *handler) fn(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
		defer cancel()
		err := f(w, r.WithContext(ctx))
		if err == nil {
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
		case errors.Is(err, context.DeadlineExceeded):
			h.o.Logger.Error("webapi: timeout", "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusGatewayTimeout, "the store did not answer in time"}
		default:
			h.o.Logger.Error("webapi: request failed", "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "internal error"}
		}
		writeJSON(w, he.code, map[string]string{"error": he.msg})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// online reports whether an agent counts as online at now: its latest
// status says so and it was heard from within OfflineAfter.
func (h *handler) online(s store.AgentState, now time.Time) bool {
	return s.Status.Online && !s.LastSeen.IsZero() && now.Sub(s.LastSeen) <= h.o.OfflineAfter
}

// Site is one site of GET /api/v1/sites.
type Site struct {
	Site string `json:"site"`
	// Health is the worst health of the site's online agents, "offline"
	// when none is online.
	Health string `json:"health"`
	// Online is true when every agent of the site is online.
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Agents   []Agent   `json:"agents"`
}

// Agent is one agent's summary.
type Agent struct {
	Agent      string `json:"agent"`
	Registered bool   `json:"registered"`
	Online     bool   `json:"online"`
	// Health is the agent's reported health (ok, warn, fault), or
	// "offline" when it is not online.
	Health   string      `json:"health"`
	Version  string      `json:"version,omitempty"`
	LastSeen time.Time   `json:"last_seen,omitzero"`
	Faults   []api.Fault `json:"faults"`
}

// Health values beyond api.Health.
const healthOffline = "offline"

func healthRank(h string) int {
	switch h {
	case string(api.HealthOK):
		return 0
	case string(api.HealthWarn):
		return 1
	case string(api.HealthFault):
		return 2
	}
	return 3 // offline or unknown
}

func (h *handler) summary(s store.AgentState, now time.Time) Agent {
	a := Agent{
		Agent:      s.Agent,
		Registered: s.Registered,
		Online:     h.online(s, now),
		Health:     healthOffline,
		Version:    s.Status.Version,
		LastSeen:   s.LastSeen,
		Faults:     s.Status.Faults,
	}
	if a.Online && s.Status.Health != "" {
		a.Health = string(s.Status.Health)
	}
	if a.Faults == nil {
		a.Faults = []api.Fault{}
	}
	return a
}

func (h *handler) sites(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, nil); err != nil {
		return err
	}
	fleet, err := h.o.Store.Fleet(r.Context())
	if err != nil {
		return err
	}
	now := h.o.Now()
	var sites []Site
	index := map[string]int{}
	for _, s := range fleet {
		i, ok := index[s.Site]
		if !ok {
			i = len(sites)
			index[s.Site] = i
			sites = append(sites, Site{Site: s.Site, Online: true, Health: string(api.HealthOK)})
		}
		site := &sites[i]
		a := h.summary(s, now)
		site.Agents = append(site.Agents, a)
		site.Online = site.Online && a.Online
		if a.LastSeen.After(site.LastSeen) {
			site.LastSeen = a.LastSeen
		}
	}
	for i := range sites {
		site := &sites[i]
		worst := -1
		for _, a := range site.Agents {
			if a.Online && healthRank(a.Health) > worst {
				worst, site.Health = healthRank(a.Health), a.Health
			}
		}
		if worst < 0 {
			site.Health = healthOffline
		}
		sortBy(site.Agents, func(a Agent) string { return a.Agent })
	}
	sortBy(sites, func(s Site) string { return s.Site })
	if sites == nil {
		sites = []Site{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": sites})
	return nil
}

// AgentDetail is the answer of GET /api/v1/sites/{site}/agents/{agent}.
type AgentDetail struct {
	Site string `json:"site"`
	Agent
	StatusAt time.Time `json:"status_at,omitzero"`
	// Status is the latest status message as the agent sent it.
	Status api.Status `json:"status"`
	// Metrics is the latest snapshot, null when none came.
	Metrics   *api.Metrics `json:"metrics"`
	MetricsAt time.Time    `json:"metrics_at,omitzero"`
	// Upto is the ingest watermark, Events the number of events stored.
	Upto     uint64    `json:"upto"`
	Events   int64     `json:"events"`
	Commands []Command `json:"commands"`
}

// Command is a remote action and its result.
type Command struct {
	Req     string    `json:"req"`
	Site    string    `json:"site"`
	Agent   string    `json:"agent"`
	Command string    `json:"command"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	// Done is absent until the agent answered; then OK and Error say how
	// it went.
	Done  time.Time `json:"done,omitzero"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

func (h *handler) ids(r *http.Request) (site, agent string, err error) {
	site, agent = r.PathValue("site"), r.PathValue("agent")
	if !api.ValidID(site) {
		return "", "", errorf(http.StatusBadRequest, "site %q: want 1 to 63 characters among a-z, 0-9 and -", clip(site))
	}
	if !api.ValidID(agent) {
		return "", "", errorf(http.StatusBadRequest, "agent %q: want 1 to 63 characters among a-z, 0-9 and -", clip(agent))
	}
	return site, agent, nil
}

func (h *handler) agent(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, nil); err != nil {
		return err
	}
	site, agent, err := h.ids(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	s, err := h.o.Store.AgentState(ctx, site, agent)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no agent %s/%s", site, agent)
	} else if err != nil {
		return err
	}
	cmds, err := h.o.Store.Commands(ctx, site, agent, RecentCommands)
	if err != nil {
		return err
	}
	d := AgentDetail{
		Site:      site,
		Agent:     h.summary(s, h.o.Now()),
		StatusAt:  s.StatusAt,
		Status:    s.Status,
		MetricsAt: s.MetricsAt,
		Upto:      s.Upto,
		Events:    s.Events,
		Commands:  []Command{},
	}
	if !s.MetricsAt.IsZero() {
		m := s.Metrics
		d.Metrics = &m
	}
	for _, c := range cmds {
		d.Commands = append(d.Commands, command(c))
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func command(c store.Command) Command {
	return Command{Req: c.Req, Site: c.Site, Agent: c.Agent, Command: c.Name, By: c.By, At: c.At, Done: c.Done, OK: c.OK, Error: c.Error}
}

// Fault is one fault interval of GET /api/v1/faults.
type Fault struct {
	ID       int64        `json:"id"`
	Site     string       `json:"site"`
	Agent    string       `json:"agent"`
	Device   api.Device   `json:"device"`
	Code     string       `json:"code"`
	Severity api.Severity `json:"severity"`
	Open     bool         `json:"open"`
	Since    time.Time    `json:"since"`
	Cleared  time.Time    `json:"cleared,omitzero"`
	// DurationS is how long the fault lasted, or has lasted so far.
	DurationS int64     `json:"duration_s"`
	AckedBy   string    `json:"acked_by,omitempty"`
	AckedAt   time.Time `json:"acked_at,omitzero"`
}

func (h *handler) faults(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(r, []string{"open", "site", "agent", "since", "limit"}); err != nil {
		return err
	}
	var fq store.FaultQuery
	if v, ok, err := single(q, "open"); err != nil {
		return err
	} else if ok {
		b, err := strconv.ParseBool(v)
		if err != nil || (v != "true" && v != "false") {
			return errorf(http.StatusBadRequest, "open=%q: want true or false", clip(v))
		}
		fq.Open = &b
	}
	for _, k := range []string{"site", "agent"} {
		v, ok, err := single(q, k)
		if err != nil {
			return err
		}
		if ok && !api.ValidID(v) {
			return errorf(http.StatusBadRequest, "%s=%q: want 1 to 63 characters among a-z, 0-9 and -", k, clip(v))
		}
		if k == "site" {
			fq.Site = v
		} else {
			fq.Agent = v
		}
	}
	now := h.o.Now()
	if v, ok, err := single(q, "since"); err != nil {
		return err
	} else if ok {
		t, err := parseTime(v, now)
		if err != nil {
			return errorf(http.StatusBadRequest, "since=%q: %v", clip(v), err)
		}
		fq.Since = t
	}
	fq.Limit = DefaultFaults
	if v, ok, err := single(q, "limit"); err != nil {
		return err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFaults {
			return errorf(http.StatusBadRequest, "limit=%q: want a number from 1 to %d", clip(v), MaxFaults)
		}
		fq.Limit = n
	}
	recs, err := h.o.Store.Faults(r.Context(), fq)
	if err != nil {
		return err
	}
	out := make([]Fault, 0, len(recs))
	for _, f := range recs {
		end := f.Cleared
		if f.Open() {
			end = now
		}
		out = append(out, Fault{
			ID: f.ID, Site: f.Site, Agent: f.Agent, Device: f.Device, Code: f.Code, Severity: f.Severity,
			Open: f.Open(), Since: f.Since, Cleared: f.Cleared,
			DurationS: max(int64(end.Sub(f.Since)/time.Second), 0),
			AckedBy:   f.AckedBy, AckedAt: f.AckedAt,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": out})
	return nil
}

// Usage is one row of GET /api/v1/usage.
type Usage struct {
	Site         string `json:"site"`
	Start        string `json:"start"` // YYYY-MM-DD, first day of the period
	PrintJobs    int64  `json:"print_jobs"`
	Pages        int64  `json:"pages"`
	Sheets       int64  `json:"sheets"`
	CopyJobs     int64  `json:"copy_jobs"`
	CopyPages    int64  `json:"copy_pages"`
	Scans        int64  `json:"scans"`
	ScanPages    int64  `json:"scan_pages"`
	FailedPrints int64  `json:"failed_prints"`
	WiFiVisitors int64  `json:"wifi_visitors"`
}

func (h *handler) usage(w http.ResponseWriter, r *http.Request) error {
	uq, err := parseUsage(r, h.o.Now())
	if err != nil {
		return err
	}
	rows, err := h.o.Store.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	if len(rows) > MaxUsageRows {
		return errorf(http.StatusBadRequest, "%d rows: want at most %d; name fewer sites, a shorter range or a longer period", len(rows), MaxUsageRows)
	}
	out := make([]Usage, 0, len(rows))
	for _, u := range rows {
		out = append(out, Usage{
			Site: u.Site, Start: u.Start.Format(time.DateOnly),
			PrintJobs: u.PrintJobs, Pages: u.Pages, Sheets: u.Sheets,
			CopyJobs: u.CopyJobs, CopyPages: u.CopyPages,
			Scans: u.Scans, ScanPages: u.ScanPages,
			FailedPrints: u.FailedPrints, WiFiVisitors: u.WiFiVisitors,
		})
	}
	sites := uq.Sites
	if sites == nil {
		sites = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"from":   uq.From.Format(time.DateOnly),
		"to":     uq.To.Format(time.DateOnly),
		"period": uq.Period,
		"sites":  sites,
		"rows":   out,
	})
	return nil
}

// CommandAccepted is the answer of a command request.
type CommandAccepted struct {
	Req     string    `json:"req"`
	Site    string    `json:"site"`
	Agent   string    `json:"agent"`
	Command string    `json:"command"`
	At      time.Time `json:"at"`
}

// commandBody is the optional JSON body of a command request.
type commandBody struct {
	// Seconds is how long to identify (identify only); 0 for the agent's
	// default.
	Seconds int `json:"seconds"`
}

func (h *handler) command(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, nil); err != nil {
		return err
	}
	site, agent, err := h.ids(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if !api.ValidCommand(name) {
		return errorf(http.StatusBadRequest, "command %q: want one of %s", clip(name), strings.Join(api.Commands(), ", "))
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if body.Seconds != 0 && name != api.CommandIdentify {
		return errorf(http.StatusBadRequest, "seconds: only for %s", api.CommandIdentify)
	}
	if h.o.Commander == nil {
		return errorf(http.StatusServiceUnavailable, "remote actions are not available: no broker connection")
	}
	ctx := r.Context()
	if _, err := h.o.Store.AgentState(ctx, site, agent); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no agent %s/%s", site, agent)
	} else if err != nil {
		return err
	}
	p, _ := auth.FromContext(ctx)
	cmd := api.Command{Name: name, Req: rand.Text(), Seconds: body.Seconds}
	if err := cmd.Validate(); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	now := h.o.Now().UTC()
	if err := h.o.Store.AddCommand(ctx, store.Command{Req: cmd.Req, Site: site, Agent: agent, Name: name, By: p.Name, At: now}); err != nil {
		return err
	}
	if err := h.o.Commander.SendCommand(ctx, site, agent, cmd); err != nil {
		h.o.Logger.Error("webapi: cannot send command", "site", site, "agent", agent, "command", name, "err", err)
		res := api.CommandResult{Req: cmd.Req, OK: false, Error: "not sent: the broker refused or did not answer"}
		if err := h.o.Store.CommandDone(context.WithoutCancel(ctx), site, agent, res, h.o.Now().UTC()); err != nil {
			h.o.Logger.Error("webapi: cannot record the failed command", "req", cmd.Req, "err", err)
		}
		return errorf(http.StatusBadGateway, "the command could not be sent to the broker; retry later")
	}
	writeJSON(w, http.StatusAccepted, CommandAccepted{Req: cmd.Req, Site: site, Agent: agent, Command: name, At: now})
	return nil
}

// readBody decodes the optional command body: empty, or one JSON object
// with known fields only, at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) (commandBody, error) {
	var b commandBody
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return b, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxBodyBytes)
		}
		return b, errorf(http.StatusBadRequest, "cannot read the body")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return b, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, errorf(http.StatusBadRequest, "body: want a JSON object such as {\"seconds\":30}: %v", err)
	}
	if dec.More() {
		return b, errorf(http.StatusBadRequest, "body: trailing data after the JSON object")
	}
	if b.Seconds < 0 || b.Seconds > 600 {
		return b, errorf(http.StatusBadRequest, "seconds: want 1 to 600")
	}
	return b, nil
}

func (h *handler) ack(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, nil); err != nil {
		return err
	}
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != v {
		return errorf(http.StatusBadRequest, "fault id %q: want a positive number", clip(v))
	}
	p, _ := auth.FromContext(r.Context())
	if err := h.o.Store.AckFault(r.Context(), id, p.Name, h.o.Now().UTC()); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no fault %d", id)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
