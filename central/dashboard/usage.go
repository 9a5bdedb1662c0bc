package dashboard

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// Bounds of usage queries.
const (
	// maxUsageDays is the longest period a usage query covers: 5 years.
	maxUsageDays = 5*365 + 2
	// maxUsageSites is the most sites a query names.
	maxUsageSites = 200
	// maxUsageRows bounds the rows (periods × sites) of one query.
	maxUsageRows = 100_000
)

// usageForm is the usage query as the form shows it.
type usageForm struct {
	From, To string
	Period   string
	Sites    []string
	Format   string // CSV only: excel or standard
}

// Selected reports whether site is chosen in the form.
func (f usageForm) Selected(site string) bool { return slices.Contains(f.Sites, site) }

// CSVURL returns the URL of the form's CSV export in format.
func (f usageForm) CSVURL(format string) template.URL {
	v := url.Values{"from": {f.From}, "to": {f.To}, "period": {f.Period}, "site": f.Sites, "format": {format}}
	return template.URL("/usage.csv?" + v.Encode()) // every value is query-escaped
}

// parseUsage reads and checks a usage query, filling defaults: the last
// twelve calendar months (this one included), by month, every site.
func (d *Dashboard) parseUsage(w words, q url.Values) (usageForm, store.UsageQuery, []string) {
	today := d.o.Now().In(d.o.Location)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	f := usageForm{From: q.Get("from"), To: q.Get("to"), Period: q.Get("period"), Sites: q["site"], Format: q.Get("format")}
	if f.To == "" {
		f.To = today.Format(time.DateOnly)
	}
	if f.From == "" {
		f.From = time.Date(today.Year(), today.Month()-11, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	if f.Period == "" {
		f.Period = string(store.Month)
	}
	var errs []string
	uq := store.UsageQuery{Period: store.Period(f.Period)}
	var err error
	if uq.From, err = parseDay(f.From); err != nil {
		errs = append(errs, w.T("usage.bad.date", f.From))
	}
	if uq.To, err = parseDay(f.To); err != nil {
		errs = append(errs, w.T("usage.bad.date", f.To))
	}
	if len(errs) == 0 {
		switch {
		case uq.From.After(uq.To):
			errs = append(errs, w.T("usage.bad.order"))
		case uq.To.Sub(uq.From) > maxUsageDays*24*time.Hour:
			errs = append(errs, w.T("usage.bad.range"))
		}
	}
	switch uq.Period {
	case store.Day, store.Week, store.Month:
	default:
		errs = append(errs, w.T("usage.bad.period"))
	}
	if len(f.Sites) > maxUsageSites {
		errs = append(errs, w.T("usage.bad.sites", maxUsageSites))
		f.Sites = f.Sites[:maxUsageSites]
	}
	for _, s := range f.Sites {
		if !api.ValidID(s) {
			errs = append(errs, w.T("usage.bad.site", s))
			break
		}
	}
	if len(errs) == 0 {
		uq.Sites = slices.Compact(slices.Sorted(slices.Values(f.Sites)))
		f.Sites = uq.Sites
	}
	return f, uq, errs
}

// periodStart returns the first day of the period holding day t.
func periodStart(t time.Time, p store.Period) time.Time {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case store.Week:
		return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)) // back to Monday
	case store.Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

// periodStarts returns the first day of every period from from to to.
func periodStarts(from, to time.Time, p store.Period) []time.Time {
	var out []time.Time
	for s := periodStart(from, p); !s.After(to); {
		out = append(out, s)
		switch p {
		case store.Week:
			s = s.AddDate(0, 0, 7)
		case store.Month:
			s = s.AddDate(0, 1, 0)
		default:
			s = s.AddDate(0, 0, 1)
		}
	}
	return out
}

// usageData is the usage page's data.
type usageData struct {
	Form     usageForm
	AllSites []string
	Totals   []store.UsageRow // one per site, Site set, Start zero
	Total    store.UsageRow
	Charts   []chartView
	TopNote  bool // the charts show only the busiest sites
	TopN     int
	Empty    bool
	Errors   []string
	FromText string
	ToText   string
}

// chartView is one chart and its data as a table.
type chartView struct {
	ID     string
	Title  string
	SVG    template.HTML
	Labels []string
	Series []string
	Values [][]int64 // [series][period]
}

// loadUsage parses the query and reads the rows, or returns the form's
// errors.
func (d *Dashboard) loadUsage(r *http.Request, w words) (usageForm, store.UsageQuery, []store.UsageRow, []string, []string, error) {
	f, uq, errs := d.parseUsage(w, r.URL.Query())
	all, err := d.siteNames(r)
	if err != nil {
		return f, uq, nil, nil, nil, err
	}
	if len(errs) > 0 {
		return f, uq, nil, all, errs, nil
	}
	nsites := len(uq.Sites)
	if nsites == 0 {
		nsites = max(len(all), 1)
	}
	if n := len(periodStarts(uq.From, uq.To, uq.Period)) * nsites; n > maxUsageRows {
		return f, uq, nil, all, []string{w.T("usage.bad.rows", n)}, nil
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	rows, err := d.o.Store.Usage(ctx, uq)
	return f, uq, rows, all, nil, err
}

// usage serves GET /usage?from=&to=&period=&site=...: sites side by side.
func (d *Dashboard) usage(w http.ResponseWriter, r *http.Request) {
	p := d.newPage(r, "usage.title", "usage")
	f, uq, rows, all, errs, err := d.loadUsage(r, p.words)
	if err != nil {
		d.storeFailed(w, r, "usage", err)
		return
	}
	ud := usageData{Form: f, AllSites: all, Errors: errs, TopN: maxChartSeries}
	if len(errs) > 0 {
		p.Data = ud
		d.render(w, http.StatusBadRequest, "usage", p)
		return
	}
	ud.FromText, ud.ToText = p.Date(uq.From), p.Date(uq.To)
	// Totals per site: the chosen sites (or every known one), and any
	// other that has rows.
	totals := map[string]*store.UsageRow{}
	names := uq.Sites
	if len(names) == 0 {
		names = all
	}
	for _, s := range names {
		totals[s] = &store.UsageRow{Site: s}
	}
	for _, row := range rows {
		t := totals[row.Site]
		if t == nil {
			t = &store.UsageRow{Site: row.Site}
			totals[row.Site] = t
		}
		addUsage(t, row)
		addUsage(&ud.Total, row)
	}
	for _, t := range totals {
		ud.Totals = append(ud.Totals, *t)
	}
	slices.SortFunc(ud.Totals, func(a, b store.UsageRow) int { return cmp.Compare(a.Site, b.Site) })
	ud.Empty = len(rows) == 0
	if !ud.Empty {
		charts, top, err := d.usageCharts(p.words, uq, rows, ud.Totals)
		if err != nil {
			d.log.Error("dashboard: usage charts", "err", err)
		}
		ud.Charts, ud.TopNote = charts, top
	}
	p.Data = ud
	d.render(w, http.StatusOK, "usage", p)
}

func addUsage(t *store.UsageRow, r store.UsageRow) {
	t.PrintJobs += r.PrintJobs
	t.Pages += r.Pages
	t.Sheets += r.Sheets
	t.CopyJobs += r.CopyJobs
	t.CopyPages += r.CopyPages
	t.Scans += r.Scans
	t.ScanPages += r.ScanPages
	t.FailedPrints += r.FailedPrints
	t.WiFiVisitors += r.WiFiVisitors
}

// activity ranks sites for the charts.
func activity(r store.UsageRow) int64 {
	return r.Pages + r.CopyPages + r.ScanPages + r.WiFiVisitors
}

// usageCharts draws one chart per measure for the busiest sites, and
// reports whether sites were left out.
func (d *Dashboard) usageCharts(w words, uq store.UsageQuery, rows []store.UsageRow, totals []store.UsageRow) ([]chartView, bool, error) {
	// The busiest sites; a site with nothing to show has no line.
	ranked := slices.DeleteFunc(slices.Clone(totals), func(r store.UsageRow) bool { return activity(r) == 0 })
	slices.SortStableFunc(ranked, func(a, b store.UsageRow) int { return cmp.Compare(activity(b), activity(a)) })
	top := false
	if len(ranked) > maxChartSeries {
		ranked, top = ranked[:maxChartSeries], true
	}
	var series []string
	index := map[string]int{}
	for _, t := range ranked {
		index[t.Site] = len(series)
		series = append(series, t.Site)
	}
	starts := periodStarts(uq.From, uq.To, uq.Period)
	col := map[time.Time]int{}
	labels := make([]string, len(starts))
	for i, s := range starts {
		col[s] = i
		labels[i] = w.periodLabel(string(uq.Period), s)
	}
	measures := []struct {
		id, title string
		value     func(store.UsageRow) int64
	}{
		{"chart-pages", "usage.chart.pages", func(r store.UsageRow) int64 { return r.Pages }},
		{"chart-copies", "usage.chart.copies", func(r store.UsageRow) int64 { return r.CopyPages }},
		{"chart-scans", "usage.chart.scans", func(r store.UsageRow) int64 { return r.ScanPages }},
		{"chart-wifi", "usage.chart.wifi", func(r store.UsageRow) int64 { return r.WiFiVisitors }},
	}
	var out []chartView
	for _, m := range measures {
		cv := chartView{ID: m.id, Title: w.T(m.title), Labels: labels, Series: series, Values: make([][]int64, len(series))}
		for i := range cv.Values {
			cv.Values[i] = make([]int64, len(starts))
		}
		for _, r := range rows {
			si, ok := index[r.Site]
			ci, ok2 := col[periodStart(r.Start, uq.Period)]
			if ok && ok2 {
				cv.Values[si][ci] += m.value(r)
			}
		}
		fl := make([][]float64, len(cv.Values))
		for i, v := range cv.Values {
			fl[i] = make([]float64, len(v))
			for j, x := range v {
				fl[i][j] = float64(x)
			}
		}
		svg, err := renderChart(chartSpec{ID: m.id, Title: cv.Title, Labels: labels, Series: series, Values: fl})
		if err != nil {
			return out, top, err
		}
		cv.SVG = svg
		out = append(out, cv)
	}
	return out, top, nil
}

// csvColumns are the CSV's columns: the stable name (standard format) and
// the catalogue key of the title (excel format).
var csvColumns = []struct{ name, key string }{
	{"site", "usage.col.site"},
	{"period_start", "usage.col.start"},
	{"print_jobs", "usage.col.printjobs"},
	{"pages", "usage.col.pages"},
	{"sheets", "usage.col.sheets"},
	{"copy_jobs", "usage.col.copies"},
	{"copy_pages", "usage.col.copypages"},
	{"scans", "usage.col.scans"},
	{"scan_pages", "usage.col.scanpages"},
	{"failed_prints", "usage.col.failed"},
	{"wifi_visitors", "usage.col.wifi"},
}

// usageCSV serves GET /usage.csv with the same query as /usage and
// format=excel (default) or standard: one row per site and period, as the
// store returns them. See the package documentation for the two formats.
func (d *Dashboard) usageCSV(w http.ResponseWriter, r *http.Request) {
	wd := d.words(r)
	f, _, rows, _, errs, err := d.loadUsage(r, wd)
	if err != nil {
		d.storeFailed(w, r, "usage", err)
		return
	}
	excel := true
	switch f.Format {
	case "", "excel":
	case "standard":
		excel = false
	default:
		errs = append(errs, wd.T("usage.bad.format"))
	}
	if len(errs) > 0 {
		d.fail(w, r, http.StatusBadRequest, wd.T("error.badrequest", strings.Join(errs, " ; ")))
		return
	}
	slices.SortStableFunc(rows, func(a, b store.UsageRow) int {
		return cmp.Or(cmp.Compare(a.Site, b.Site), a.Start.Compare(b.Start))
	})
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="relais-usage-%s-%s-%s.csv"`, f.From, f.To, f.Period))
	if excel {
		w.Write([]byte("\ufeff")) // UTF-8 byte order mark, for Excel
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if excel {
		cw.Comma = ';'
	}
	field := func(s string) string {
		// A spreadsheet takes a field starting with one of these for a
		// formula; an apostrophe makes it text.
		if excel && s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			return "'" + s
		}
		return s
	}
	head := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		head[i] = c.name
		if excel {
			head[i] = wd.T(c.key)
		}
	}
	cw.Write(head)
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, row := range rows {
		cw.Write([]string{
			field(row.Site), row.Start.Format(time.DateOnly),
			n(row.PrintJobs), n(row.Pages), n(row.Sheets), n(row.CopyJobs), n(row.CopyPages),
			n(row.Scans), n(row.ScanPages), n(row.FailedPrints), n(row.WiFiVisitors),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		d.log.Warn("dashboard: writing the usage CSV", "err", err)
	}
}
