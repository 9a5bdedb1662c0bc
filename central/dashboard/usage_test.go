package dashboard

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/store"
)

// day returns noon UTC of a day of March 2026.
func day(d int) time.Time { return time.Date(2026, 3, d, 12, 0, 0, 0, time.UTC) }

// usageFixture records usage of three sites in March 2026.
func usageFixture(e *env) {
	e.agent("mairie", "accueil")
	e.agent("biblio", "rdc")
	e.agent("-moins", "a") // a valid id that a spreadsheet would take for a formula
	e.events("mairie", "accueil", 1,
		printed(day(2), 3), printed(day(2), 2), copied(day(3), 2), scanned(day(3), 4), visitors(day(3), 17))
	e.events("biblio", "rdc", 1, printed(day(10), 5), visitors(day(10), 30))
	e.events("-moins", "a", 1, printed(day(4), 1))
}

func TestUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	usageFixture(e)
	c := e.loggedIn("manon", store.Manager)

	r := c.get("/usage?from=2026-03-01&to=2026-03-15&period=day&site=mairie&site=biblio")
	if r.code != http.StatusOK {
		t.Fatalf("GET /usage: %d\n%s", r.code, text(r.body))
	}
	mustContain(t, "usage", r.body,
		"Totaux du 01/03/2026 au 15/03/2026",
		"biblio 1 5 5 0 0 0 0 0 30",
		"mairie 2 5 7 1 2 1 4 0 17",
		"Total 3 10 12 1 2 1 4 0 47",
		"Pages imprimées", "Pages copiées", "Pages scannées", "Visiteurs Wi-Fi",
		"Télécharger en CSV pour Excel",
	)
	mustNotContain(t, "usage of two sites", r.body, "-moins 1")
	// Four charts, embedded, labelled, without style attributes.
	svgs := regexp.MustCompile(`(?s)<svg role="img" aria-labelledby="(chart-[a-z]+)" focusable="false".*?</svg>`).FindAllStringSubmatch(r.body, -1)
	if len(svgs) != 4 {
		t.Fatalf("%d charts, want 4", len(svgs))
	}
	for _, s := range svgs {
		if !strings.Contains(r.body, `<h3 id="`+s[1]+`">`) {
			t.Errorf("chart %s: no heading labels it", s[1])
		}
		if strings.Contains(s[0], "style=") || strings.Contains(s[0], "url(") {
			t.Errorf("chart %s has style attributes or references", s[1])
		}
		if !strings.Contains(s[0], ">mairie</text>") || !strings.Contains(s[0], ">biblio</text>") {
			t.Errorf("chart %s: no legend naming the sites", s[1])
		}
	}
	// Each chart's data as a table: the row of 2 March has mairie's 5 pages.
	if !regexp.MustCompile(`<th scope="row">02/03</th><td>0</td><td>5</td>`).MatchString(r.body) &&
		!regexp.MustCompile(`<th scope="row">02/03</th><td>5</td><td>0</td>`).MatchString(r.body) {
		t.Error("no data table row for 02/03 with mairie's 5 pages")
	}
	if !strings.Contains(r.body, `<option value="mairie" selected>`) || strings.Contains(r.body, `<option value="-moins" selected>`) {
		t.Error("the site choice is not kept in the form")
	}

	// By week, every site.
	r = c.get("/usage?from=2026-03-01&to=2026-03-15&period=week")
	mustContain(t, "by week", r.body, "-moins 1 1", "sem. du 23/02", "sem. du 02/03", "sem. du 09/03", "Total 4 11")

	// The default: the last twelve months, by month.
	r = c.get("/usage")
	if r.code != http.StatusOK || !strings.Contains(r.body, `value="2025-04-01"`) || !strings.Contains(r.body, `value="2026-03-16"`) ||
		!strings.Contains(r.body, `<option value="month" selected>`) {
		t.Errorf("default usage form: %d", r.code)
	}
	mustContain(t, "by month", r.body, "mars 2026", "avr. 2025", "Total 4 11")

	// English.
	c.lang = "en"
	mustContain(t, "English usage", c.get("/usage?from=2026-03-01&to=2026-03-15&period=week").body,
		"Totals from 2026-03-01 to 2026-03-15", "week of 03-02", "Pages printed", "Download as CSV for Excel")
	c.lang = ""

	// Nothing recorded.
	mustContain(t, "empty", c.get("/usage?from=2025-01-01&to=2025-01-31&period=day").body, "Aucune utilisation enregistrée sur cette période.")
}

func TestUsageBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	usageFixture(e)
	c := e.loggedIn("manon", store.Manager)
	many := url.Values{"from": {"2021-01-01"}, "to": {"2025-12-31"}, "period": {"day"}}
	for i := range 60 {
		many.Add("site", fmt.Sprintf("s%02d", i))
	}
	tooMany := url.Values{}
	for i := range maxUsageSites + 1 {
		tooMany.Add("site", "s"+strconv.Itoa(i))
	}
	for q, want := range map[string]string{
		"from=2026-13-01":                     "la date « 2026-13-01 » n'est pas une date AAAA-MM-JJ entre 2020 et 2099",
		"from=2019-12-31&to=2020-01-10":       "la date « 2019-12-31 »",
		"from=2026-03-10&to=2026-03-01":       "la date de début est après la date de fin",
		"from=2020-01-01&to=2026-01-01":       "la période dépasse 5 ans",
		"period=year":                         "le regroupement doit être jour, semaine ou mois",
		"site=Mairie":                         "« Mairie » n'est pas un identifiant de site",
		tooMany.Encode():                      "trop de sites choisis (200 au plus)",
		many.Encode():                         "trop de lignes (109560)",
		"from=2026-03-01&to=2026-03-02&x=<b>": "", // unknown parameters are ignored
	} {
		r := c.get("/usage?" + q)
		if want == "" {
			if r.code != http.StatusOK {
				t.Errorf("%s: %d", q, r.code)
			}
			continue
		}
		if r.code != http.StatusBadRequest {
			t.Errorf("%.60s: %d, want 400", q, r.code)
		}
		mustContain(t, q[:min(len(q), 60)], r.body, want)
		if r := c.get("/usage.csv?" + q); r.code != http.StatusBadRequest {
			t.Errorf("CSV %.60s: %d, want 400", q, r.code)
		}
	}
	if r := c.get("/usage.csv?format=xlsx"); r.code != http.StatusBadRequest {
		t.Errorf("CSV format=xlsx: %d", r.code)
	}
}

func TestUsageCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	usageFixture(e)
	c := e.loggedIn("manon", store.Manager)
	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	want, err := e.st.Usage(context.Background(), store.UsageQuery{From: from, To: to, Period: store.Day})
	if err != nil || len(want) != 4 {
		t.Fatalf("store usage: %d rows, %v", len(want), err)
	}

	check := func(format string, comma rune, bom bool, header []string, siteField func(string) string) {
		t.Helper()
		r := c.get("/usage.csv?from=2026-03-01&to=2026-03-15&period=day&format=" + format)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", format, r.code, text(r.body))
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv; charset=utf-8") {
			t.Errorf("%s: Content-Type %q", format, ct)
		}
		if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="relais-usage-2026-03-01-2026-03-15-day.csv"` {
			t.Errorf("%s: Content-Disposition %q", format, cd)
		}
		body := []byte(r.body)
		if got := bytes.HasPrefix(body, []byte("\ufeff")); got != bom {
			t.Errorf("%s: BOM %v, want %v", format, got, bom)
		}
		body = bytes.TrimPrefix(body, []byte("\ufeff"))
		if n, crlf := bytes.Count(body, []byte("\n")), bytes.Count(body, []byte("\r\n")); n != 5 || crlf != n {
			t.Errorf("%s: %d lines, %d with CRLF; want 5 with CRLF", format, n, crlf)
		}
		rd := csv.NewReader(bytes.NewReader(body))
		rd.Comma = comma
		recs, err := rd.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if strings.Join(recs[0], "|") != strings.Join(header, "|") {
			t.Errorf("%s: header %q, want %q", format, recs[0], header)
		}
		if len(recs) != len(want)+1 {
			t.Fatalf("%s: %d rows, want %d", format, len(recs)-1, len(want))
		}
		// The same rows as the store's, sorted by site then day.
		got := map[string]bool{}
		for _, rec := range recs[1:] {
			got[strings.Join(rec, "|")] = true
		}
		for _, w := range want {
			line := strings.Join([]string{siteField(w.Site), w.Start.Format(time.DateOnly),
				i64(w.PrintJobs), i64(w.Pages), i64(w.Sheets), i64(w.CopyJobs), i64(w.CopyPages),
				i64(w.Scans), i64(w.ScanPages), i64(w.FailedPrints), i64(w.WiFiVisitors)}, "|")
			if !got[line] {
				t.Errorf("%s: no row %s in %q", format, line, recs[1:])
			}
		}
		if recs[1][0] != siteField("-moins") || recs[len(recs)-1][0] != "mairie" {
			t.Errorf("%s: rows not sorted by site: %q", format, recs[1:])
		}
	}
	check("excel", ';', true,
		[]string{"Site", "Début de période", "Impressions", "Pages imprimées", "Feuilles", "Copies", "Pages copiées", "Scans", "Pages scannées", "Impressions échouées", "Visiteurs Wi-Fi"},
		func(s string) string {
			if strings.HasPrefix(s, "-") {
				return "'" + s
			}
			return s
		})
	check("standard", ',', false,
		[]string{"site", "period_start", "print_jobs", "pages", "sheets", "copy_jobs", "copy_pages", "scans", "scan_pages", "failed_prints", "wifi_visitors"},
		func(s string) string { return s })

	// The default is excel, and the page links to both.
	if r := c.get("/usage.csv?from=2026-03-01&to=2026-03-15"); !strings.HasPrefix(r.body, "\ufeff") || !strings.Contains(r.body, ";") {
		t.Error("the default CSV is not the Excel one")
	}
	page := c.get("/usage?from=2026-03-01&to=2026-03-15&period=day&site=mairie").body
	for _, f := range []string{"excel", "standard"} {
		link := `href="/usage.csv?format=` + f + `&amp;from=2026-03-01&amp;period=day&amp;site=mairie&amp;to=2026-03-15"`
		if !strings.Contains(page, link) {
			t.Errorf("no link %s in\n%s", link, page)
		}
	}
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

func TestSanitizeSVG(t *testing.T) {
	t.Parallel()
	in := `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10" onload="alert(1)">` +
		`<script>alert(2)</script>` +
		`<path d="M 0 0&#xA;L 1 1" style="stroke:none;fill:rgb(1,2,3);behavior:x;fill-opacity:url(http://evil/)" onclick="alert(3)"/>` +
		`<text x="1" y="2" style="font-size:16px;font-family:'Roboto Medium',sans-serif">a &lt; b &amp; "c"</text>` +
		`<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">html</div></foreignObject>` +
		`<a xlink:href="javascript:alert(4)"><text>link</text></a>` +
		`<!-- comment --></svg>`
	got, err := sanitizeSVG(strings.NewReader(in), "chart-x")
	if err != nil {
		t.Fatal(err)
	}
	want := `<svg role="img" aria-labelledby="chart-x" focusable="false" viewBox="0 0 10 10">` +
		"<path d=\"M 0 0\nL 1 1\" stroke=\"none\" fill=\"rgb(1,2,3)\"></path>" +
		`<text x="1" y="2" font-size="16px" font-family="&#39;Roboto Medium&#39;,sans-serif">a &lt; b &amp; &#34;c&#34;</text>` +
		`</svg>`
	if string(got) != want {
		t.Errorf("sanitizeSVG:\n got %s\nwant %s", got, want)
	}
	for _, bad := range []string{`<html><svg/></html>`, `<svg><path>`, ``, `<svg></svg><svg></svg>garbage<`} {
		if _, err := sanitizeSVG(strings.NewReader(bad), "x"); err == nil {
			t.Errorf("sanitizeSVG(%q) succeeded", bad)
		}
	}
}
