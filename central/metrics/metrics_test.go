package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/metrics"
	"github.com/relais-fr/relais/central/store"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), "sqlite:central.db", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func event(typ api.EventType, seq uint64, at time.Time) api.Event {
	return api.Event{Seq: seq, ID: uuid.Must(uuid.NewV7()).String(), Time: at, Type: typ}
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t.Add(10 * time.Hour)
}

// fill puts three agents in st:
//   - lyon-1/pi is registered and never said it was online; it printed
//     on the last day of 2024 and the first of 2025 (two windows of the
//     usage query);
//   - paris-2/pi-a is online with two open faults, supplies and Wi-Fi;
//   - paris-2/pi-b said it was online 30 minutes ago: down now.
func fill(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.AddAgent(ctx, store.Agent{Site: "lyon-1", Agent: "pi", SecretHash: []byte("hash"), Created: now.Add(-48 * time.Hour)}))
	e1 := event(api.EventPrintCompleted, 1, day("2024-12-31"))
	e1.Pages, e1.Source = new(4), api.SourcePC
	e2 := event(api.EventPrintCompleted, 2, day("2025-01-01"))
	e2.Pages, e2.Source = new(6), api.SourcePhone
	e3 := event(api.EventPrintCompleted, 3, day("2025-01-01"))
	e3.Pages, e3.Source = new(50), api.SourceCentral // a test page: not usage
	if _, err := st.Ingest(ctx, "lyon-1", "pi", []api.Event{e1, e2, e3}, day("2025-01-01")); err != nil {
		t.Fatal(err)
	}

	faults := []api.Fault{
		{Code: "media-empty", Device: api.DevicePrinter, Severity: api.SeverityFault, Since: now.Add(-time.Hour)},
		{Code: "clock-unsynced", Device: api.DeviceHost, Severity: api.SeverityWarn, Since: now.Add(-time.Hour)},
	}
	must(st.SetStatus(ctx, "paris-2", "pi-a", api.Status{Online: true, Time: now, Version: "1.2.0", Health: api.HealthFault, Faults: faults}, now.Add(-time.Minute)))
	must(st.SetMetrics(ctx, "paris-2", "pi-a", api.Metrics{
		Time: now.Add(-time.Minute),
		Printer: &api.Printer{State: api.PrinterIdle, Markers: []api.Marker{
			{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 42},
			{Name: "Cyan Toner", Kind: "toner-cartridge", Color: "#00ffff", Level: 7},
			{Name: "Waste Toner Box", Kind: "waste-toner", Level: api.MarkerLevelSome},
			{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 99}, // repeated
		}},
		WiFi: &api.WiFi{Up: true, SSID: "relais", Channel: 6, Clients: 3},
	}, now.Add(-time.Minute)))
	var events []api.Event
	add := func(e api.Event) { e.Seq = uint64(len(events) + 1); events = append(events, e) }
	p := event(api.EventPrintCompleted, 0, day("2026-03-09"))
	p.Pages, p.Source = new(3), api.SourcePC
	add(p)
	p = event(api.EventPrintCompleted, 0, day("2021-05-01"))
	p.Pages, p.Source = new(10), api.SourcePhone
	add(p)
	c := event(api.EventCopyCompleted, 0, day("2026-03-09"))
	c.Pages = new(2)
	add(c)
	s := event(api.EventScanCompleted, 0, day("2026-03-10"))
	s.Pages, s.Format = new(5), "application/pdf"
	add(s)
	w := event(api.EventWiFiDaily, 0, day("2026-03-10"))
	w.Day, w.Visitors = "2026-03-09", new(7)
	add(w)
	if _, err := st.Ingest(ctx, "paris-2", "pi-a", events, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	must(st.SetStatus(ctx, "paris-2", "pi-b", api.Status{Online: true, Time: now, Version: "1.2.0", Health: api.HealthOK}, now.Add(-30*time.Minute)))

	must(st.Rejected(ctx, "paris-2", "pi-a", "malformed", now))
	must(st.Rejected(ctx, "paris-2", "pi-a", "malformed", now))
	must(st.Rejected(ctx, "paris-2", "pi-b", "too-large", now))
}

// samples parses an exposition and returns its samples as
// name{label="value",...} (labels sorted) → value.
func samples(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = value(f.GetType(), m)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return -1 // summaries and histograms: present, value not compared
}

type server struct {
	*httptest.Server
	clk   *clock
	c     *metrics.Collector
	token string
}

func newServer(t *testing.T, st store.Store) *server {
	t.Helper()
	s := &server{clk: &clock{t: now}}
	a := auth.New(auth.Options{Store: st, Now: s.clk.Now, Logger: slog.New(slog.DiscardHandler)})
	var err error
	if s.token, err = a.NewToken(context.Background(), "prometheus", store.Manager); err != nil {
		t.Fatal(err)
	}
	o := metrics.Options{Store: st, Auth: a, Now: s.clk.Now, OfflineAfter: 10 * time.Minute, Logger: slog.New(slog.DiscardHandler)}
	s.c = metrics.NewCollector(o)
	s.Server = httptest.NewServer(metrics.Handler(o))
	t.Cleanup(s.Close)
	return s
}

func (s *server) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s %s", resp.Status, b)
	}
	return samples(t, resp.Body)
}

func TestScrape(t *testing.T) {
	st := openStore(t)
	fill(t, st)
	s := newServer(t, st)
	got := s.scrape(t)
	lastSeen := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	want := map[string]float64{
		`relais_agent_up{agent="pi",site="lyon-1"}`:                                                     0,
		`relais_agent_up{agent="pi-a",site="paris-2"}`:                                                  1,
		`relais_agent_up{agent="pi-b",site="paris-2"}`:                                                  0,
		`relais_agent_last_seen_timestamp_seconds{agent="pi",site="lyon-1"}`:                            float64(day("2025-01-01").Unix()),
		`relais_agent_last_seen_timestamp_seconds{agent="pi-a",site="paris-2"}`:                         lastSeen(-time.Minute),
		`relais_agent_last_seen_timestamp_seconds{agent="pi-b",site="paris-2"}`:                         lastSeen(-30 * time.Minute),
		`relais_faults_open{agent="pi",site="lyon-1"}`:                                                  0,
		`relais_faults_open{agent="pi-a",site="paris-2"}`:                                               2,
		`relais_faults_open{agent="pi-b",site="paris-2"}`:                                               0,
		`relais_printer_marker_ratio{agent="pi-a",color="#000000",marker="Black Toner",site="paris-2"}`: 0.42,
		`relais_printer_marker_ratio{agent="pi-a",color="#00ffff",marker="Cyan Toner",site="paris-2"}`:  0.07,
		`relais_wifi_clients{agent="pi-a",site="paris-2"}`:                                              3,
		`relais_pages_total{site="lyon-1"}`:                                                             10,
		`relais_pages_total{site="paris-2"}`:                                                            13,
		`relais_copies_total{site="lyon-1"}`:                                                            0,
		`relais_copies_total{site="paris-2"}`:                                                           2,
		`relais_scans_total{site="lyon-1"}`:                                                             0,
		`relais_scans_total{site="paris-2"}`:                                                            1,
		`relais_wifi_visitors_total{site="lyon-1"}`:                                                     0,
		`relais_wifi_visitors_total{site="paris-2"}`:                                                    7,
		`relais_ingest_rejected_total{reason="malformed"}`:                                              2,
		`relais_ingest_rejected_total{reason="too-large"}`:                                              1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "relais_") {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s = %v", k, got[k])
			}
		}
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s", k)
		}
	}

	// Up follows the clock: pi-a goes down 10 minutes after its last message.
	s.clk.Advance(9 * time.Minute)
	if v := s.scrape(t)[`relais_agent_up{agent="pi-a",site="paris-2"}`]; v != 1 {
		t.Errorf("after 10 min of silence: up %v", v)
	}
	s.clk.Advance(time.Minute + time.Second)
	if v := s.scrape(t)[`relais_agent_up{agent="pi-a",site="paris-2"}`]; v != 0 {
		t.Errorf("after 10 min 1 s of silence: up %v", v)
	}
}

// Usage reported late shows at once for recent months, within the hour
// for older ones, and the turn of a month neither loses nor repeats one.
func TestUsageCounters(t *testing.T) {
	st := openStore(t)
	fill(t, st)
	s := newServer(t, st)
	const pages = `relais_pages_total{site="paris-2"}`
	check := func(when string, want float64) {
		t.Helper()
		if got := s.scrape(t)[pages]; got != want {
			t.Errorf("%s: %s = %v, want %v", when, pages, got, want)
		}
	}
	check("at first", 13)
	seq := uint64(5)
	printed := func(d string, n int) {
		t.Helper()
		seq++
		e := event(api.EventPrintCompleted, seq, day(d))
		e.Pages, e.Source = new(n), api.SourcePC
		if _, err := st.Ingest(context.Background(), "paris-2", "pi-a", []api.Event{e}, s.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	printed("2025-11-20", 100) // an old month
	printed("2026-02-15", 1)   // the month before last: recent
	check("late events", 14)
	s.clk.Advance(time.Hour - time.Second)
	check("59:59 later", 14)
	s.clk.Advance(time.Second)
	check("an hour later", 114)
	// 2026-04-01 00:30: February becomes old.
	s.clk.Advance(time.Date(2026, 4, 1, 0, 30, 0, 0, time.UTC).Sub(s.clk.Now()))
	check("at the turn of the month", 114)
	printed("2026-03-05", 1000)
	check("an event of last month", 1114)
}

func TestLint(t *testing.T) {
	st := openStore(t)
	fill(t, st)
	s := newServer(t, st)
	problems, err := testutil.CollectAndLint(s.c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestAuth(t *testing.T) {
	st := openStore(t)
	s := newServer(t, st)
	for _, h := range []string{"", "Bearer relais_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %s", h, resp.Status)
		}
	}
	// An empty store exposes the ingest counters' absence, not an error.
	got := s.scrape(t)
	for k := range got {
		if strings.HasPrefix(k, "relais_") {
			t.Errorf("empty store: %s = %v", k, got[k])
		}
	}
}

// A collection whose store fails is an error, so that the scrape answers
// 500 and Prometheus marks the target down rather than storing partial
// numbers.
func TestStoreFailure(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:central.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, st)
	s := newServer(t, st)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.c)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("open store: %v", err)
	}
	st.Close()
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("closed store: %v", err)
	}
	// Over HTTP the token lookup fails first: auth answers 503.
	req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("closed store: %s", resp.Status)
	}
}

// The Grafana dashboard uses the collector's metrics only, all of them,
// with their labels, and a datasource input.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if v, _ := d["schemaVersion"].(float64); v < 36 || v > 41 {
		t.Errorf("schemaVersion %v", d["schemaVersion"])
	}
	if uid, _ := d["uid"].(string); uid == "" {
		t.Error("no uid")
	}
	inputs, _ := d["__inputs"].([]any)
	if len(inputs) != 1 || inputs[0].(map[string]any)["name"] != "DS_PROMETHEUS" || inputs[0].(map[string]any)["pluginId"] != "prometheus" {
		t.Errorf("__inputs %v", inputs)
	}

	// Every expression and legend, and every datasource.
	var exprs, legends []string
	ids := map[float64]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ds, ok := v["datasource"].(map[string]any); ok && ds["type"] == "prometheus" && ds["uid"] != "${DS_PROMETHEUS}" {
				t.Errorf("datasource %v", ds)
			}
			if id, ok := v["id"].(float64); ok && v["gridPos"] != nil {
				if ids[id] {
					t.Errorf("panel id %v repeated", id)
				}
				ids[id] = true
			}
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			if l, ok := v["legendFormat"].(string); ok {
				legends = append(legends, l)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	// The variables' queries.
	for _, v := range d["templating"].(map[string]any)["list"].([]any) {
		v := v.(map[string]any)
		q, _ := v["query"].(map[string]any)
		def, _ := v["definition"].(string)
		qq, _ := q["query"].(string)
		if def == "" || qq != def {
			t.Errorf("variable %v: definition %q, query %q", v["name"], def, qq)
		}
		exprs = append(exprs, qq)
	}
	if len(exprs) < 10 {
		t.Fatalf("%d expressions", len(exprs))
	}

	// The metric names it uses exist: the collector's, and the Go and
	// process collectors' as a scrape shows them.
	st := openStore(t)
	fill(t, st)
	s := newServer(t, st)
	known := map[string]bool{}
	for k := range s.scrape(t) {
		name, _, _ := strings.Cut(k, "{")
		known[name] = true
	}
	for _, n := range s.c.Names() {
		known[n] = true
	}
	used := map[string]bool{}
	re := regexp.MustCompile(`\b(?:relais|go|process)_[a-z0-9_]+\b`)
	for _, e := range exprs {
		for _, n := range re.FindAllString(e, -1) {
			used[n] = true
			if !known[n] {
				t.Errorf("the dashboard uses %s, which central does not expose (in %q)", n, e)
			}
		}
	}
	for _, n := range s.c.Names() {
		if !used[n] {
			t.Errorf("the dashboard does not use %s", n)
		}
	}
	// Legends name labels that central exposes.
	labels := []string{"site", "agent", "marker", "color", "reason", "instance"}
	for _, l := range legends {
		for _, m := range regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`).FindAllStringSubmatch(l, -1) {
			if !slices.Contains(labels, m[1]) {
				t.Errorf("legend %q: unknown label %s", l, m[1])
			}
		}
	}
}

// BenchmarkCollect measures a scrape of a fleet of 1000 sites, one agent
// each with status, metrics and six years of monthly usage (72,000
// events):
//
//	go test -run XXX -bench Collect -benchtime 20x ./central/metrics
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	start := time.Now()
	const sites = 1000
	for i := range sites {
		site := fmt.Sprintf("site-%04d", i)
		if err := st.SetStatus(ctx, site, "pi", api.Status{Online: true, Time: now, Version: "1.2.0", Health: api.HealthOK}, now); err != nil {
			b.Fatal(err)
		}
		m := api.Metrics{Time: now, Printer: &api.Printer{State: api.PrinterIdle, Markers: []api.Marker{
			{Name: "Black", Kind: "toner-cartridge", Color: "#000000", Level: 50},
			{Name: "Cyan", Kind: "toner-cartridge", Color: "#00ffff", Level: 50},
			{Name: "Magenta", Kind: "toner-cartridge", Color: "#ff00ff", Level: 50},
			{Name: "Yellow", Kind: "toner-cartridge", Color: "#ffff00", Level: 50},
		}}, WiFi: &api.WiFi{Up: true, Clients: 2}}
		if err := st.SetMetrics(ctx, site, "pi", m, now); err != nil {
			b.Fatal(err)
		}
		var events []api.Event
		for month := range 72 {
			e := event(api.EventPrintCompleted, uint64(month+1), time.Date(2020, time.Month(month+1), 15, 10, 0, 0, 0, time.UTC))
			e.Pages, e.Source = new(5), api.SourcePC
			events = append(events, e)
		}
		if _, err := st.Ingest(ctx, site, "pi", events, now); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d sites in %v", sites, time.Since(start))
	c := metrics.NewCollector(metrics.Options{Store: st, Now: func() time.Time { return now }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	for b.Loop() {
		fams, err := reg.Gather()
		if err != nil || len(fams) != 9 {
			b.Fatalf("%d families, %v", len(fams), err)
		}
	}
}
