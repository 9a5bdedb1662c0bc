package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// Bounds of the site page.
const (
	// timelineLimit is the most fault intervals the site page shows.
	timelineLimit = 50
	// commandsLimit is the most commands the site page shows.
	commandsLimit = 10
)

// notSent is the error recorded for a command the broker did not take.
const notSent = "not sent: the agent could not be reached"

// confirmCommands must be confirmed with a tick: they delete something.
var confirmCommands = map[string]bool{api.CommandCancelJobs: true, api.CommandPurgeScans: true}

// siteData is the site page's data.
type siteData struct {
	Row      agentRow
	State    store.AgentState
	Markers  []markerView
	Host     *hostView
	Timeline []store.FaultRecord
	Commands []store.Command
	Actions  []actionView
	NotSent  string // the error of a command not sent
}

// markerView is one supply, with its level in words.
type markerView struct {
	ID    string // element id, for the <meter> label
	Name  string
	Kind  string
	Known bool // Level is a percentage
	Level int
	Text  string
}

// hostView is the host's measurements, in words.
type hostView struct {
	Temp             string
	Throttled        []string
	Disk, Mem        string
	DiskPct, MemPct  int
	Uptime           string
	Load             float64
	ClockSynced      bool
	DiskKnown, Known bool
}

// actionView is one remote action's form.
type actionView struct {
	Name    string
	Confirm bool
}

// siteID returns the site and agent of the path, or false when they are
// not valid ids.
func siteID(r *http.Request) (string, string, bool) {
	site, agent := r.PathValue("site"), r.PathValue("agent")
	return site, agent, api.ValidID(site) && api.ValidID(agent)
}

// loadSite reads what the site page shows.
func (d *Dashboard) loadSite(ctx context.Context, w words, site, agent string) (siteData, error) {
	st, err := d.o.Store.AgentState(ctx, site, agent)
	if err != nil {
		return siteData{}, err
	}
	acked, err := d.openAcks(ctx, store.FaultQuery{Site: site, Agent: agent})
	if err != nil {
		return siteData{}, err
	}
	timeline, err := d.o.Store.Faults(ctx, store.FaultQuery{Site: site, Agent: agent, Limit: timelineLimit})
	if err != nil {
		return siteData{}, err
	}
	cmds, err := d.o.Store.Commands(ctx, site, agent, commandsLimit)
	if err != nil {
		return siteData{}, err
	}
	sd := siteData{Row: d.classify(st, d.o.Now(), acked), State: st, Timeline: timeline, Commands: cmds, NotSent: notSent}
	if p := st.Metrics.Printer; p != nil {
		for i, m := range p.Markers {
			sd.Markers = append(sd.Markers, markerOf(w, i, m))
		}
	}
	if h := st.Metrics.Host; h != nil {
		sd.Host = hostOf(w, h)
	}
	for _, c := range api.Commands() {
		sd.Actions = append(sd.Actions, actionView{Name: c, Confirm: confirmCommands[c]})
	}
	return sd, nil
}

func markerOf(w words, i int, m api.Marker) markerView {
	v := markerView{ID: "marker-" + strconv.Itoa(i), Name: m.Name, Kind: m.Kind, Level: m.Level}
	switch {
	case m.Level >= 0:
		v.Known, v.Text = true, w.Percent(m.Level)
	case m.Level == api.MarkerLevelSome:
		v.Text = w.T("site.supply.some")
	case m.Level == api.MarkerLevelUnavailable:
		v.Text = w.T("site.supply.na")
	default:
		v.Text = w.T("site.supply.unknown")
	}
	if v.Name == "" {
		v.Name = m.Kind
	}
	return v
}

func hostOf(w words, h *api.Host) *hostView {
	v := &hostView{
		Throttled:   h.Throttled,
		Uptime:      w.Dur(time.Duration(h.UptimeS) * time.Second),
		Load:        h.Load1,
		ClockSynced: h.ClockSynced,
	}
	if h.CPUTempC != nil {
		v.Temp = w.T("unit.celsius", *h.CPUTempC)
	}
	if h.DiskTotalBytes > 0 {
		v.DiskPct = int(h.DiskFreeBytes * 100 / h.DiskTotalBytes)
		v.Disk = w.T("site.host.of", w.Bytes(h.DiskFreeBytes), w.Bytes(h.DiskTotalBytes), w.Percent(v.DiskPct))
	}
	if h.MemTotalBytes > 0 {
		v.MemPct = int(h.MemAvailableBytes * 100 / h.MemTotalBytes)
		v.Mem = w.T("site.host.of", w.Bytes(h.MemAvailableBytes), w.Bytes(h.MemTotalBytes), w.Percent(v.MemPct))
	}
	return v
}

// site serves GET /sites/{site}/{agent}.
func (d *Dashboard) site(w http.ResponseWriter, r *http.Request) {
	d.showSite(w, r, "layout")
}

// siteLive serves GET /sites/{site}/{agent}/live: the live part of the
// site page.
func (d *Dashboard) siteLive(w http.ResponseWriter, r *http.Request) {
	d.showSite(w, r, "live")
}

func (d *Dashboard) showSite(w http.ResponseWriter, r *http.Request, tmpl string) {
	site, agent, ok := siteID(r)
	wd := d.words(r)
	if !ok {
		d.fail(w, r, http.StatusNotFound, wd.T("error.notfound"))
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	sd, err := d.loadSite(ctx, wd, site, agent)
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.fail(w, r, http.StatusNotFound, wd.T("error.agent", site, agent))
		return
	case err != nil:
		d.storeFailed(w, r, "site", err)
		return
	}
	p := d.newPage(r, "site.title", "")
	p.Title = p.T("site.title", site, agent)
	p.Live = "/sites/" + site + "/" + agent + "/live"
	p.LiveKey = site + "/" + agent
	p.Data = sd
	q := r.URL.Query()
	switch {
	case api.ValidCommand(q.Get("sent")):
		p.Flash = p.T("site.sent", p.Command(q.Get("sent")))
	case api.ValidCommand(q.Get("notsent")):
		p.Error = p.T("site.notsent", p.Command(q.Get("notsent")))
	case api.ValidCommand(q.Get("confirm")):
		p.Error = p.T("site.confirm.needed", p.Command(q.Get("confirm")))
	}
	d.renderTemplate(w, http.StatusOK, "site", tmpl, p)
}

// command serves POST /sites/{site}/{agent}/commands (admin and
// technician; auth.Require checked the CSRF token): it records the command
// with a new request id, sends it, and goes back to the site page, which
// shows the result when the agent answers.
func (d *Dashboard) command(w http.ResponseWriter, r *http.Request) {
	wd := d.words(r)
	pr, ok := auth.FromContext(r.Context())
	if !ok || !auth.CanAct(pr.Role) {
		d.fail(w, r, http.StatusForbidden, wd.T("error.forbidden"))
		return
	}
	site, agent, ok := siteID(r)
	if !ok {
		d.fail(w, r, http.StatusNotFound, wd.T("error.notfound"))
		return
	}
	name := formValue(r, "command", 32)
	if !api.ValidCommand(name) {
		d.fail(w, r, http.StatusBadRequest, wd.T("error.badrequest", "command"))
		return
	}
	back := "/sites/" + site + "/" + agent
	if confirmCommands[name] && r.PostFormValue("confirm") != "yes" {
		http.Redirect(w, r, back+"?confirm="+url.QueryEscape(name), http.StatusSeeOther)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if _, err := d.o.Store.AgentState(ctx, site, agent); errors.Is(err, store.ErrNotFound) {
		d.fail(w, r, http.StatusNotFound, wd.T("error.agent", site, agent))
		return
	} else if err != nil {
		d.storeFailed(w, r, "command", err)
		return
	}
	c := api.Command{Name: name, Req: uuid.NewString()}
	now := d.o.Now().UTC()
	if err := d.o.Store.AddCommand(ctx, store.Command{Req: c.Req, Site: site, Agent: agent, Name: name, By: pr.Name, At: now}); err != nil {
		d.storeFailed(w, r, "command", err)
		return
	}
	sctx, scancel := context.WithTimeout(r.Context(), sendTimeout)
	err := d.o.Commander.SendCommand(sctx, site, agent, c)
	scancel()
	if err != nil {
		d.log.Warn("dashboard: sending a command", "site", site, "agent", agent, "command", name, "req", c.Req, "err", err)
		// The command stays in the list, marked as not sent.
		res := api.CommandResult{Req: c.Req, OK: false, Error: notSent}
		if err := d.o.Store.CommandDone(ctx, site, agent, res, d.o.Now().UTC()); err != nil {
			d.log.Error("dashboard: recording a command not sent", "req", c.Req, "err", err)
		}
		d.Changed(site, agent)
		http.Redirect(w, r, back+"?notsent="+url.QueryEscape(name), http.StatusSeeOther)
		return
	}
	d.log.Info("dashboard: command sent", "site", site, "agent", agent, "command", name, "req", c.Req, "by", pr.Name)
	d.Changed(site, agent)
	http.Redirect(w, r, back+"?sent="+url.QueryEscape(name), http.StatusSeeOther)
}
