package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// faultsLimit is the most faults the faults page shows.
const faultsLimit = 500

// faultsData is the faults page's data.
type faultsData struct {
	State  string // open, closed, all
	Site   string
	Since  string // YYYY-MM-DD or empty
	Sites  []string
	Faults []store.FaultRecord
	More   bool // more than faultsLimit matched
	Limit  int
	Return string // this page's URL, where an acknowledgement comes back
}

// faults serves GET /faults?state=open|closed|all&site=S&since=YYYY-MM-DD.
func (d *Dashboard) faults(w http.ResponseWriter, r *http.Request) {
	p := d.newPage(r, "faults.title", "faults")
	q := r.URL.Query()
	fd := faultsData{State: q.Get("state"), Site: q.Get("site"), Since: q.Get("since"), Limit: faultsLimit, Return: r.URL.RequestURI()}
	fq := store.FaultQuery{Limit: faultsLimit + 1}
	switch fd.State {
	case "", "open":
		fd.State = "open"
		open := true
		fq.Open = &open
	case "closed":
		open := false
		fq.Open = &open
	case "all":
	default:
		d.fail(w, r, http.StatusBadRequest, p.T("error.badrequest", "state"))
		return
	}
	if fd.Site != "" {
		if !api.ValidID(fd.Site) {
			d.fail(w, r, http.StatusBadRequest, p.T("error.badrequest", p.T("usage.bad.site", fd.Site)))
			return
		}
		fq.Site = fd.Site
	}
	if fd.Since != "" {
		t, err := parseDay(fd.Since)
		if err != nil {
			d.fail(w, r, http.StatusBadRequest, p.T("error.badrequest", p.T("usage.bad.date", fd.Since)))
			return
		}
		fq.Since = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, d.o.Location)
	}
	if q.Has("acked") {
		p.Flash = p.T("faults.ackdone")
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	faults, err := d.o.Store.Faults(ctx, fq)
	if err != nil {
		d.storeFailed(w, r, "faults", err)
		return
	}
	if len(faults) > faultsLimit {
		faults, fd.More = faults[:faultsLimit], true
	}
	fd.Faults = faults
	if fd.Sites, err = d.siteNames(r); err != nil {
		d.storeFailed(w, r, "faults", err)
		return
	}
	p.Data = fd
	d.render(w, http.StatusOK, "faults", p)
}

// siteNames returns the sorted ids of the sites central knows.
func (d *Dashboard) siteNames(r *http.Request) ([]string, error) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	states, err := d.o.Store.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	var sites []string
	for _, s := range states {
		sites = append(sites, s.Site)
	}
	slices.Sort(sites)
	return slices.Compact(sites), nil
}

// ackFault serves POST /faults/{id}/ack (admin and technician): it records
// who takes care of the fault and goes back to the page it came from.
func (d *Dashboard) ackFault(w http.ResponseWriter, r *http.Request) {
	wd := d.words(r)
	pr, ok := auth.FromContext(r.Context())
	if !ok || !auth.CanAct(pr.Role) {
		d.fail(w, r, http.StatusForbidden, wd.T("error.forbidden"))
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.fail(w, r, http.StatusNotFound, wd.T("error.notfound"))
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	switch err := d.o.Store.AckFault(ctx, id, pr.Name, d.o.Now().UTC()); {
	case errors.Is(err, store.ErrNotFound):
		d.fail(w, r, http.StatusNotFound, wd.T("error.notfound"))
		return
	case err != nil:
		d.storeFailed(w, r, "ack", err)
		return
	}
	d.log.Info("dashboard: fault acknowledged", "id", id, "by", pr.Name)
	back := safeNext(formValue(r, "return", maxPathBytes+maxQueryBytes))
	u, _ := url.Parse(back) // safeNext returns a parsable path
	if u.Path == "/faults" {
		q := u.Query()
		q.Set("acked", "1")
		u.RawQuery = q.Encode()
	}
	// The fleet and site pages show who took care of a fault.
	d.changedAll()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// parseDay parses a YYYY-MM-DD day from 2020 to 2099.
func parseDay(s string) (time.Time, error) {
	if len(s) != len("2006-01-02") {
		return time.Time{}, errors.New("not a date")
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Year() < 2020 || t.Year() > 2099 {
		return time.Time{}, errors.New("out of range")
	}
	return t, nil
}
