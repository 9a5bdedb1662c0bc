package ippserver

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

func TestPrinterUUIDIsStablePerAgent(t *testing.T) {
	a, b := PrinterUUID("mairie-12", "pi-1"), PrinterUUID("mairie-12", "pi-1")
	if a != b || !strings.HasPrefix(a, "urn:uuid:") || len(a) != len("urn:uuid:")+36 {
		t.Fatalf("PrinterUUID = %q, then %q", a, b)
	}
	if PrinterUUID("mairie-12", "pi-2") == a || PrinterUUID("mairie-13", "pi-1") == a {
		t.Fatal("two agents share a printer-uuid")
	}
}

// Before the site's printer has answered, the printer offers the built-in
// set, A4 first, and says that it is stopped and why.
func TestGetPrinterAttributesBeforeThePrinterAnswers(t *testing.T) {
	uuid := PrinterUUID("mairie-12", "pi-1")
	e := newEnv(t, printq.Config{}, Config{Name: "Mairie de Trifouilly", Location: "Accueil", UUID: uuid, AdminURL: "http://relais.local/"})
	resp := e.do(e.request(goipp.OpGetPrinterAttributes), nil)
	wantStatus(t, "Get-Printer-Attributes", resp, goipp.StatusOk)
	p := resp.Printer
	want := map[string]string{
		"printer-uri-supported":              e.uri,
		"printer-name":                       "Mairie de Trifouilly",
		"printer-location":                   "Accueil",
		"printer-uuid":                       uuid,
		"printer-more-info":                  "http://relais.local/",
		"printer-supply-info-uri":            "http://relais.local/",
		"media-default":                      "iso_a4_210x297mm",
		"sides-default":                      "one-sided",
		"document-format-default":            "application/octet-stream",
		"uri-security-supported":             "none",
		"printer-make-and-model":             "Relais",
		"printer-state-reasons":              "offline-report",
		"compression-supported":              "none",
		"ipp-features-supported":             "ipp-everywhere",
		"identify-actions-supported":         "flash",
		"multiple-operation-time-out-action": "process-job",
	}
	for name, v := range want {
		if got := str(p, name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	if got := integerOf(p, "printer-state"); got != 5 {
		t.Errorf("printer-state = %d, want 5 (stopped) while the printer is unreachable", got)
	}
	if v := find(p, "printer-is-accepting-jobs"); len(v) != 1 || v[0].V != goipp.Boolean(true) {
		t.Errorf("printer-is-accepting-jobs = %v: jobs are queued, always", v)
	}
	formats := strs(p, "document-format-supported")
	for _, f := range []string{"application/octet-stream", "application/pdf", "image/jpeg", "image/pwg-raster"} {
		if !slices.Contains(formats, f) {
			t.Errorf("document-format-supported %v lacks %s", formats, f)
		}
	}
	if slices.Contains(formats, "image/urf") {
		t.Errorf("document-format-supported %v offers URF without urf-supported", formats)
	}
	ops := map[int]bool{}
	for _, v := range find(p, "operations-supported") {
		ops[int(v.V.(goipp.Integer))] = true
	}
	for _, op := range []goipp.Op{goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument,
		goipp.OpCancelJob, goipp.OpGetJobAttributes, goipp.OpGetJobs, goipp.OpGetPrinterAttributes,
		goipp.OpCancelMyJobs, goipp.OpCloseJob, goipp.OpIdentifyPrinter} {
		if !ops[int(op)] {
			t.Errorf("operations-supported lacks %s", op)
		}
	}
	if find(p, "media-col-database") != nil {
		t.Error("media-col-database returned without being asked for by name")
	}
	for _, uri := range strs(p, "printer-icons") {
		if !strings.HasPrefix(uri, e.http.URL+Path+"/icon-") {
			t.Errorf("printer-icons has %q", uri)
		}
	}
}

func TestRequestedAttributeGroups(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	get := func(names ...string) goipp.Attributes {
		t.Helper()
		resp := e.do(e.request(goipp.OpGetPrinterAttributes, kw("requested-attributes", names...)), nil)
		wantStatus(t, "Get-Printer-Attributes", resp, goipp.StatusOk)
		return resp.Printer
	}
	tmpl := get("job-template")
	if find(tmpl, "media-supported") == nil || find(tmpl, "sides-default") == nil || find(tmpl, "job-hold-until-supported") == nil {
		t.Errorf("job-template lacks job template attributes: %v", names(tmpl))
	}
	if find(tmpl, "printer-name") != nil || find(tmpl, "media-col-database") != nil {
		t.Errorf("job-template has %v", names(tmpl))
	}
	desc := get("printer-description")
	if find(desc, "printer-name") == nil || find(desc, "media-supported") != nil {
		t.Errorf("printer-description has %v", names(desc))
	}
	one := get("printer-uri-supported")
	if len(one) != 1 || one[0].Name != "printer-uri-supported" {
		t.Errorf("requested printer-uri-supported, got %v", names(one))
	}
	db := get("all", "media-col-database")
	if len(find(db, "media-col-database")) != 2 || find(db, "printer-name") == nil {
		t.Errorf("all,media-col-database: %v", names(db))
	}
}

func names(attrs goipp.Attributes) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.Name)
	}
	return out
}

// printer-uri-supported is the URI the client used; a Host header that
// is not a plain host yields the connection's own address.
func TestPrinterURIFromTheHost(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	for host, want := range map[string]string{
		"relais.local:631":     "ipp://relais.local:631/ipp/print",
		"192.0.2.10:8631":      "ipp://192.0.2.10:8631/ipp/print",
		"[fe80::1%25eth0]:631": "ipp://[fe80::1%25eth0]:631/ipp/print",
		"relais.local":         "ipp://relais.local:631/ipp/print",
		"evil.example/x?y:1":   "ipp://192.0.2.1:631/ipp/print",
		"a<b>:631":             "ipp://192.0.2.1:631/ipp/print",
	} {
		body, _ := e.request(goipp.OpGetPrinterAttributes, kw("requested-attributes", "printer-uri-supported")).EncodeBytes()
		r := httptest.NewRequest(http.MethodPost, "http://x"+Path, bytes.NewReader(body))
		r.Host = host
		r.Header.Set("Content-Type", goipp.ContentType)
		r = r.WithContext(contextWithLocalAddr(r, "192.0.2.1:631"))
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		var m goipp.Message
		if err := m.DecodeBytes(rec.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		if got := str(m.Printer, "printer-uri-supported"); got != want {
			t.Errorf("Host %q: printer-uri-supported %q, want %q", host, got, want)
		}
	}
}

func TestHTTP(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{AdminURL: "http://relais.local/"})
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := e.http.Client().Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(Path)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`href="http://relais.local/"`)) {
		t.Errorf("GET %s: %s %q", Path, resp.Status, body)
	}
	for _, icon := range []string{iconSmall, iconMedium, iconLarge} {
		resp, body := get(icon)
		img, err := png.Decode(bytes.NewReader(body))
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %s, %v", icon, resp.Status, err)
		}
		if size := img.Bounds().Dx(); !strings.Contains(icon, "-"+itoa(size)+".png") {
			t.Errorf("%s is %d pixels wide", icon, size)
		}
	}
	post := func(path, ctype string) int {
		resp, err := e.http.Client().Post(e.http.URL+path, ctype, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(Path, "text/plain"); code != http.StatusUnsupportedMediaType {
		t.Errorf("POST text/plain: %d", code)
	}
	if code := post(Path, goipp.ContentType); code != http.StatusBadRequest {
		t.Errorf("POST of 1 byte: %d, want 400", code)
	}
	if code := post("/elsewhere", goipp.ContentType); code != http.StatusNotFound {
		t.Errorf("POST /elsewhere: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, e.http.URL+Path, nil)
	if resp, err := e.http.Client().Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp, err)
	}
}

func TestIdentifyPrinter(t *testing.T) {
	type call struct {
		actions []string
		message string
	}
	var calls []call
	e := newEnv(t, printq.Config{}, Config{Identify: func(a []string, m string) { calls = append(calls, call{a, m}) }})
	resp := e.do(e.request(goipp.OpIdentifyPrinter), nil)
	wantStatus(t, "Identify-Printer", resp, goipp.StatusOk)
	resp = e.do(e.request(goipp.OpIdentifyPrinter, kw("identify-actions", "flash", "sound"),
		goipp.MakeAttr("message", goipp.TagText, goipp.String("Bonjour"))), nil)
	wantStatus(t, "Identify-Printer with sound", resp, goipp.StatusOkIgnoredOrSubstituted)
	if got := strs(resp.Unsupported, "identify-actions"); !slices.Equal(got, []string{"sound"}) {
		t.Errorf("unsupported identify-actions %v", got)
	}
	want := []call{{[]string{"flash"}, ""}, {[]string{"flash"}, "Bonjour"}}
	if len(calls) != 2 || !slices.Equal(calls[0].actions, want[0].actions) || calls[1].message != "Bonjour" {
		t.Errorf("Identify called with %v, want %v", calls, want)
	}
	// A nil Identify is a sink.
	e2 := newEnv(t, printq.Config{}, Config{})
	wantStatus(t, "Identify-Printer without a panel", e2.do(e2.request(goipp.OpIdentifyPrinter), nil), goipp.StatusOk)
}

func TestPrinterStateFollowsTheQueue(t *testing.T) {
	e := newEnv(t, printq.Config{}, Config{})
	cases := []struct {
		ps      printq.PrinterStatus
		state   int
		reasons []string
	}{
		{printq.PrinterStatus{}, 5, []string{"offline-report"}},
		{printq.PrinterStatus{Reachable: true, State: 3, Attrs: goipp.Attributes{kw("sides-supported", "one-sided")}}, 3, []string{"none"}},
		{printq.PrinterStatus{Reachable: true, State: 3}, 3, []string{"other-report"}},
		{printq.PrinterStatus{Reachable: true, State: 4, Reasons: []string{"toner-low"}, Attrs: goipp.Attributes{kw("a", "b")}}, 4, []string{"toner-low-warning"}},
		{printq.PrinterStatus{Reachable: true, State: 5, Reasons: []string{"media-empty", "Bad Value", "media-empty"}, Attrs: goipp.Attributes{kw("a", "b")}}, 5, []string{"media-empty"}},
	}
	for _, c := range cases {
		state, reasons, msg := e.srv.state(c.ps)
		if state != c.state || !slices.Equal(reasons, c.reasons) || msg == "" {
			t.Errorf("%+v: state %d %v %q, want %d %v", c.ps, state, reasons, msg, c.state, c.reasons)
		}
	}
	// printer-state-change-time moves when the state does, with the clock.
	first := e.srv.stateChanged(3, []string{"none"})
	e.clock.Add(90 * time.Second)
	if again := e.srv.stateChanged(3, []string{"none"}); !again.Equal(first) {
		t.Errorf("unchanged state moved the change time to %v", again)
	}
	if changed := e.srv.stateChanged(5, []string{"media-empty"}); !changed.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("state change at %v, want %v", changed, t0.Add(90*time.Second))
	}
}
