package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/printq"
	simprinter "github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/central/api"
)

func TestIndexEmpty(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.get("/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Language":        "fr",
		"Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	contains(t, "the empty page", res.body, `<html lang="fr">`, "Mairie de Trifouilly", `href="/status"`,
		`<script src="/static/refresh.js" defer></script>`)
	contains(t, "the empty page", text(res.body),
		"Scans et impressions", "Documents scannés", "Aucun document scanné n'attend.",
		"Pour scanner un document, le visiteur appuie 3 secondes sur le bouton.",
		"Les documents sont supprimés après 15 minutes.",
		"Impressions en attente", "Aucune impression n'attend.",
		"Appareils", "Imprimante", "L'imprimante est prête.", "Le scanner est prêt.",
		"Le Wi-Fi public fonctionne. 3 appareils sont connectés.", "Actualiser la page", "Détails techniques")
	lacks(t, "the empty page", res.body, "<form", "Tout imprimer")
}

func TestIndexEnglish(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.scan("%PDF", 1)
	res := e.do(http.MethodGet, "/", "127.0.0.1:40000", nil, http.Header{"Accept-Language": {"en-GB,en;q=0.9,fr;q=0.5"}})
	contains(t, "the English page", res.body, `<html lang="en">`)
	contains(t, "the English page", text(res.body), "Scanned documents", "Scanned at 09:00", "1 page",
		"Deleted automatically in 15 minutes.", "No print is waiting.", "The printer is ready.", "Download (PDF)")
	if res.Header.Get("Content-Language") != "en" {
		t.Errorf("Content-Language %q", res.Header.Get("Content-Language"))
	}
	// German readers get French, the default.
	res = e.do(http.MethodGet, "/", "127.0.0.1:40000", nil, http.Header{"Accept-Language": {"de-DE"}})
	contains(t, "the page for a German browser", res.body, `<html lang="fr">`)
}

func TestScans(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.scan("%PDF-1.7 first scan", 2)
	e.clock.Advance(5 * time.Minute)
	second := e.scan("%PDF-1.7 second", 1)

	res := e.get("/")
	page := text(res.body)
	contains(t, "the page", page, "Scanné à 09:05", "Scanné à 09:00", "2 pages · 19 octets", "1 page · 15 octets",
		"Supprimé automatiquement dans 15 minutes.", "Supprimé automatiquement dans 10 minutes.", "Télécharger (PDF)", "Voir", "Supprimer")
	if strings.Index(page, "09:05") > strings.Index(page, "09:00") {
		t.Error("the newest scan is not first")
	}
	for _, s := range []inbox.Scan{first, second} {
		contains(t, "the page", res.body, `href="/scans/`+s.ID+`"`, `href="/scans/`+s.ID+`/view"`, `action="/scans/`+s.ID+`/delete"`)
	}

	// Download, then view.
	res = e.get("/scans/" + first.ID)
	if res.StatusCode != http.StatusOK || res.body != "%PDF-1.7 first scan" {
		t.Fatalf("download: %d %q", res.StatusCode, res.body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/pdf",
		"Content-Disposition":    `attachment; filename=scan-20260310-090000.pdf`,
		"Content-Length":         "19",
		"Cache-Control":          "no-store, private",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("download %s: %q, want %q", k, got, want)
		}
	}
	res = e.get("/scans/" + first.ID + "/view")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Disposition") != "inline; filename=scan-20260310-090000.pdf" {
		t.Errorf("view: %d %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	if n := len(e.in.List()); n != 2 {
		t.Errorf("%d scans after downloads without delete_after_download", n)
	}

	// The countdown, then retention: the scan leaves the page and cannot
	// be fetched any more.
	e.clock.Advance(9 * time.Minute)
	contains(t, "the page 14 minutes after the first scan", text(e.get("/").body),
		"Supprimé automatiquement dans 1 minute.", "Supprimé automatiquement dans 6 minutes.")
	e.clock.Advance(30 * time.Second)
	contains(t, "the page 14m30s after the first scan", text(e.get("/").body), "Supprimé automatiquement dans moins d'une minute.")
	e.clock.Advance(30 * time.Second)
	res = e.get("/")
	lacks(t, "the page after the first scan expired", res.body, first.ID)
	contains(t, "the page after the first scan expired", res.body, second.ID)
	res = e.get("/scans/" + first.ID)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("expired scan: status %d", res.StatusCode)
	}
	contains(t, "the answer for an expired scan", text(res.body), "Document introuvable", "Ce document scanné n'existe plus")
	lacks(t, "the answer for an expired scan", res.body, "%PDF")

	// Deleting by hand.
	res = e.follow(e.post("/scans/"+second.ID+"/delete", nil))
	contains(t, "the page after delete", text(res.body), "Le document scanné est supprimé.", "Aucun document scanné n'attend.")
	res = e.follow(e.post("/scans/"+second.ID+"/delete", nil))
	contains(t, "the page after a second delete", text(res.body), "Ce document scanné n'existe plus : il a déjà été supprimé.")

	for _, bad := range []string{"/scans/nope", "/scans/" + strings.Repeat("a", 32), "/scans/..%2f..%2fetc%2fpasswd", "/scans/" + first.ID[:31]} {
		if res := e.get(bad); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", bad, res.StatusCode)
		}
	}
}

func TestDeleteAfterDownload(t *testing.T) {
	e := newEnv(t, envOptions{inbox: inbox.Options{DeleteAfterDownload: true}})
	s := e.scan("%PDF-1.7 the scan", 1)
	contains(t, "the page", text(e.get("/").body),
		"Un document est supprimé dès qu'il est téléchargé ou affiché, et au plus tard après 15 minutes.")
	// A HEAD is no download.
	res := e.do(http.MethodHead, "/scans/"+s.ID, "192.168.1.10:1", nil, nil)
	if res.StatusCode != http.StatusOK || res.body != "" || res.Header.Get("Content-Length") != "17" {
		t.Fatalf("HEAD: %d %q %q", res.StatusCode, res.body, res.Header.Get("Content-Length"))
	}
	if len(e.in.List()) != 1 {
		t.Fatal("HEAD deleted the scan")
	}
	res = e.get("/scans/" + s.ID)
	if res.StatusCode != http.StatusOK || res.body != "%PDF-1.7 the scan" {
		t.Fatalf("download: %d %q", res.StatusCode, res.body)
	}
	if l := e.in.List(); len(l) != 0 {
		t.Errorf("after download: %+v", l)
	}
	if res := e.get("/scans/" + s.ID); res.StatusCode != http.StatusNotFound {
		t.Errorf("second download: %d", res.StatusCode)
	}
	contains(t, "the page after download", text(e.get("/").body), "Aucun document scanné n'attend.")
}

func TestHeldPrints(t *testing.T) {
	e := newEnv(t, envOptions{})
	j1 := e.submit("Attestation CAF.pdf", "jdupont", api.SourcePC, "%PDF-1.7 caf")
	j2 := e.submit(`<script>alert("x")</script>`, "mobile", api.SourcePhone, strings.Repeat("x", 2500))
	j3 := e.submit("", "", api.SourceCopy, "%PDF")

	res := e.get("/")
	page := text(res.body)
	// The queue runs on the real clock: its times are of another day than
	// the page's.
	contains(t, "the page", page, "N° 1 Attestation CAF.pdf", "Envoyée le "+j1.Created.UTC().Format("02/01 à 15:04"),
		"depuis un ordinateur", "12 octets", "depuis un téléphone", "3 Ko", "N° 3 (sans nom)", "photocopie faite avec le bouton",
		"Supprimée le "+j1.HoldUntil.UTC().Format("02/01 à 15:04")+" si personne ne l'imprime.", "Imprimer", "Annuler", "Tout imprimer (3)")
	contains(t, "the page", res.body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	lacks(t, "the page", res.body, "<script>alert", "jdupont", "192.168.1.20")
	for _, j := range []printq.Job{j1, j2, j3} {
		contains(t, "the page", res.body, fmt.Sprintf(`action="/jobs/%d/release"`, j.ID), fmt.Sprintf(`action="/jobs/%d/cancel"`, j.ID))
	}
	if m := tokenRe.FindStringSubmatch(res.body); m == nil || m[1] != e.token() {
		t.Errorf("the forms carry no valid token: %v", m)
	}

	// Release one: it goes to the printer (and prints there).
	res = e.post(fmt.Sprintf("/jobs/%d/release", j1.ID), nil)
	if loc := res.Header.Get("Location"); loc != "/?done=released&job=1" {
		t.Errorf("Location %q", loc)
	}
	contains(t, "the page after release", text(e.follow(res).body), "L'impression n° 1 est envoyée à l'imprimante.")
	eventually(t, "job 1 printed", func() bool { j, _ := e.q.Job(j1.ID); return j.State == printq.Completed })
	// Released twice: already gone.
	contains(t, "the page after a second release", text(e.follow(e.post("/jobs/1/release", nil)).body),
		"L'impression n° 1 n'attend plus : elle est déjà partie ou terminée.")
	// Cancel one.
	contains(t, "the page after cancel", text(e.follow(e.post(fmt.Sprintf("/jobs/%d/cancel", j2.ID), nil)).body),
		"L'impression n° 2 est annulée.")
	if j, _ := e.q.Job(j2.ID); j.State != printq.Canceled {
		t.Errorf("job 2 is %v", j.State)
	}
	contains(t, "the page for an unknown job", text(e.follow(e.post("/jobs/999/release", nil)).body),
		"L'impression n° 999 n'existe plus.")
	// Release all: the last one.
	res = e.post("/jobs/release-all", nil)
	if loc := res.Header.Get("Location"); loc != "/?done=released-all&n=1" {
		t.Errorf("Location %q", loc)
	}
	page = text(e.follow(res).body)
	contains(t, "the page after release-all", page, "1 impression est envoyée à l'imprimante.")
	eventually(t, "job 3 printed", func() bool { j, _ := e.q.Job(j3.ID); return j.State == printq.Completed })
	contains(t, "the page once all printed", text(e.get("/").body), "Aucune impression n'attend.")
	contains(t, "the page after an empty release-all", text(e.follow(e.post("/jobs/release-all", nil)).body),
		"Aucune impression n'attendait.")

	// From /status, back to /status.
	j4 := e.submit("Relevé.pdf", "", api.SourcePC, "%PDF")
	res = e.post(fmt.Sprintf("/jobs/%d/cancel", j4.ID), url.Values{"back": {"/status"}})
	if loc := res.Header.Get("Location"); loc != "/status?done=canceled&job=4" {
		t.Errorf("Location %q", loc)
	}
	res = e.post(fmt.Sprintf("/jobs/%d/cancel", j4.ID), url.Values{"back": {"https://evil.example/"}})
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/?") {
		t.Errorf("Location %q: back must stay on the page", loc)
	}
	for _, bad := range []string{"/jobs/0/release", "/jobs/-1/release", "/jobs/x/cancel", "/jobs/99999999999/release"} {
		if res := e.post(bad, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d", bad, res.StatusCode)
		}
	}
}

func TestWaitingPrints(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.faults(simprinter.Faults{MediaEmpty: true}, "the printer out of paper", hasReason("media-empty"))
	j := e.submit("Lettre.pdf", "", api.SourcePC, "%PDF")
	if _, err := e.q.Release(j.ID); err != nil {
		t.Fatal(err)
	}
	contains(t, "the page", text(e.get("/").body), "1 impression est en route vers l'imprimante.", "Aucune impression n'attend.")
}

func hasReason(r string) func(printq.PrinterStatus) bool {
	return func(ps printq.PrinterStatus) bool {
		for _, x := range ps.Reasons {
			if x == r {
				return true
			}
		}
		return false
	}
}

func TestDeviceStates(t *testing.T) {
	e := newEnv(t, envOptions{})
	device := func(name string) string {
		t.Helper()
		body := e.get("/").body
		re := regexp.MustCompile(`(?s)<li class="device level-(\w+)">\s*<h3>` + name + `</h3>(.*?)</li>`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no device %s in the page:\n%s", name, body)
		}
		return m[1] + ": " + text(m[2])
	}
	check := func(name, want string) {
		t.Helper()
		if got := device(name); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	check("Imprimante", "ok: ✔ L'imprimante est prête.")

	e.faults(simprinter.Faults{MediaEmpty: true}, "the printer out of paper", hasReason("media-empty"))
	check("Imprimante", "fault: ✖ L'imprimante n'a plus de papier. Ajoutez du papier.")
	e.faults(simprinter.Faults{MediaJam: true}, "the paper jam", hasReason("media-jam"))
	check("Imprimante", "fault: ✖ Du papier est coincé dans l'imprimante.")
	e.faults(simprinter.Faults{Offline: true}, "the printer offline", func(ps printq.PrinterStatus) bool { return !ps.Reachable })
	check("Imprimante", "fault: ✖ L'imprimante ne répond pas. Vérifiez qu'elle est allumée et branchée.")
	e.faults(simprinter.Faults{}, "the printer back", func(ps printq.PrinterStatus) bool { return ps.Reachable && len(ps.Reasons) == 0 })
	check("Imprimante", "ok: ✔ L'imprimante est prête.")

	if err := e.box.Raise(api.DeviceScanner, "scanner-unreachable", api.SeverityFault); err != nil {
		t.Fatal(err)
	}
	e.setStatus(func(st *PageStatus) { st.Scanner.State = api.ScannerDown; st.WiFi = &api.WiFi{Up: false} })
	check("Scanner", "fault: ✖ Le scanner ne répond pas. Vérifiez qu'il est allumé et branché.")
	check("Wi-Fi public", "fault: ✖ Le Wi-Fi public est coupé.")
	if err := e.box.Clear(api.DeviceScanner, "scanner-unreachable"); err != nil {
		t.Fatal(err)
	}
	e.setStatus(func(st *PageStatus) {
		st.Scanner = &api.Scanner{State: api.ScannerProcessing}
		st.WiFi = &api.WiFi{Up: true, Clients: 1}
	})
	check("Scanner", "ok: ✔ Le scanner numérise.")
	check("Wi-Fi public", "ok: ✔ Le Wi-Fi public fonctionne. 1 appareil est connecté.")
	e.setStatus(func(st *PageStatus) { st.Scanner, st.WiFi = nil, nil })
	check("Scanner", "off: – Aucun scanner n'est configuré.")
	if strings.Contains(e.get("/").body, "Wi-Fi public") {
		t.Error("Wi-Fi shown while not watched")
	}
}

// The words for the printer's reasons, and their order: the worst first.
func TestPrinterWords(t *testing.T) {
	b := &base{p: locale.Printer(language.French)}
	for _, tc := range []struct {
		ps   printq.PrinterStatus
		want []string
	}{
		{printq.PrinterStatus{Reachable: true, State: 3}, []string{"ok L'imprimante est prête."}},
		{printq.PrinterStatus{Reachable: true, State: 4, Reasons: []string{"toner-low"}},
			[]string{"warn L'encre ou le toner sera bientôt épuisé.", "ok L'imprimante imprime."}},
		{printq.PrinterStatus{Reachable: true, State: 5, Reasons: []string{"toner-low", "media-empty", "media-needed"}},
			[]string{"fault L'imprimante n'a plus de papier. Ajoutez du papier.", "warn L'encre ou le toner sera bientôt épuisé."}},
		{printq.PrinterStatus{Reachable: true, State: 5, Reasons: []string{"door-open", "vendor-thing"}},
			[]string{"fault Une trappe de l'imprimante est ouverte. Fermez-la.",
				"warn L'imprimante signale un problème (voir les détails techniques)."}},
		{printq.PrinterStatus{Reachable: true, State: 5}, []string{"fault L'imprimante est arrêtée."}},
		{printq.PrinterStatus{Reachable: true, State: 3, Reasons: []string{"moving-to-paused", "printer-restarted"}},
			[]string{"ok L'imprimante est prête."}},
		{printq.PrinterStatus{Reachable: false, State: 3, Reasons: []string{"media-empty"}},
			[]string{"fault L'imprimante ne répond pas. Vérifiez qu'elle est allumée et branchée."}},
	} {
		d := b.printerDevice(tc.ps, false)
		var got []string
		for _, l := range d.Lines {
			got = append(got, l.Level+" "+l.Text)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%+v:\n got %q\nwant %q", tc.ps, got, tc.want)
		}
	}
}

func TestNoPrinter(t *testing.T) {
	e := newEnv(t, envOptions{noPrinter: true})
	contains(t, "the page", text(e.get("/").body), "Aucune imprimante n'est configurée.")
}

func TestStatusPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.submit("Secret name.pdf", "jdupont", api.SourcePC, "%PDF-1.7")
	e.scan("%PDF", 1)
	e.faults(simprinter.Faults{MediaEmpty: true}, "the printer out of paper", hasReason("media-empty"))
	eventually(t, "the media-empty fault", func() bool {
		fs, _ := e.box.OpenFaults()
		return len(fs) > 0
	})
	temp := 51.5
	e.setStatus(func(st *PageStatus) {
		st.Host = &api.Host{CPUTempC: &temp, DiskFreeBytes: 12e9, DiskTotalBytes: 30e9, MemAvailableBytes: 600e6,
			MemTotalBytes: 1e9, UptimeS: 3*86400 + 7200, Load1: 0.25, ClockSynced: true}
	})
	res := e.get("/status")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	page := text(res.body)
	contains(t, "/status", page, "Détails techniques", "Répond oui", "État arrêtée", "media-empty",
		"Consommables", "Black Toner", "toner", "#000000", "80 %",
		"File d'impression", "1 retenue(s), 0 en route vers l'imprimante, 0 terminée(s) conservée(s)", "retenu",
		"Scans en attente 1", "Conservés pendant 15 minutes", "Supprimé une fois téléchargé non",
		"Pannes en cours", "printer", "fault",
		"Événements en attente pour le central", "Température du processeur 51,5 °C", "Disque 12,0 Go libres sur 30,0 Go", "Mémoire 600,0 Mo libres sur 1,0 Go",
		"Allumé depuis 3 j 2 h", "Horloge synchronisée oui", "Version 1.2.3", "Démarré depuis 1 h 30 min",
		"L'imprimante n'a plus de papier.", "Annuler le n° 1")
	contains(t, "/status", res.body, `<meter min="0" max="100" low="15" high="50" optimum="100" value="80" aria-label="Black Toner">`,
		`<input type="hidden" name="back" value="/status">`)
	lacks(t, "/status", res.body, "Secret name", "jdupont", "192.168.1.20")
}

func TestAllowList(t *testing.T) {
	e := newEnv(t, envOptions{allow: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd00::/8")}})
	s := e.scan("%PDF secret", 1)
	j := e.submit("Held.pdf", "", api.SourcePC, "%PDF")
	form := url.Values{"token": {e.token()}}
	for _, tc := range []struct {
		remote string
		header http.Header
		want   int
	}{
		{"192.168.1.10:5000", nil, http.StatusOK},
		{"[::ffff:192.168.1.10]:5000", nil, http.StatusOK},
		{"[fd00::1%eth0]:5000", nil, http.StatusOK},
		{"192.168.2.10:5000", nil, http.StatusForbidden},
		{"203.0.113.5:443", nil, http.StatusForbidden},
		{"127.0.0.1:5000", nil, http.StatusForbidden},
		// Headers are never trusted for the address.
		{"203.0.113.5:443", http.Header{"X-Forwarded-For": {"192.168.1.10"}, "X-Real-Ip": {"192.168.1.10"},
			"Forwarded": {"for=192.168.1.10"}}, http.StatusForbidden},
		{"garbage", nil, http.StatusForbidden},
		{"", nil, http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = tc.remote, "relais-accueil.local"
		for k, v := range tc.header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("GET / from %q: %d, want %d", tc.remote, w.Code, tc.want)
		}
		if w.Code == http.StatusForbidden {
			contains(t, "the 403 page", text(w.Body.String()), "Accès refusé",
				"Cette page ne s'ouvre que depuis les ordinateurs de l'accueil.")
			lacks(t, "the 403 page", w.Body.String(), "Mairie de Trifouilly", s.ID, "Held.pdf")
		}
	}
	// Every route is closed to outsiders, and does nothing for them.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/status"}, {"GET", "/scans/" + s.ID}, {"GET", "/scans/" + s.ID + "/view"},
		{"GET", "/static/style.css"}, {"GET", "/nope"},
		{"POST", "/scans/" + s.ID + "/delete"}, {"POST", fmt.Sprintf("/jobs/%d/release", j.ID)},
		{"POST", fmt.Sprintf("/jobs/%d/cancel", j.ID)}, {"POST", "/jobs/release-all"},
	} {
		var body url.Values
		if tc.method == "POST" {
			body = form
		}
		res := e.do(tc.method, tc.path, "10.1.2.3:1234", body, http.Header{"X-Forwarded-For": {"192.168.1.10"}})
		if res.StatusCode != http.StatusForbidden || strings.Contains(res.body, "%PDF") {
			t.Errorf("%s %s from outside: %d", tc.method, tc.path, res.StatusCode)
		}
	}
	if len(e.in.List()) != 1 {
		t.Error("an outsider deleted the scan")
	}
	if jj, _ := e.q.Job(j.ID); jj.State != printq.Held {
		t.Errorf("an outsider changed the held job: %v", jj.State)
	}
}

// On a real listener the address is the connection's: 127.0.0.1 is not in
// the allow list, whatever the headers say.
func TestAllowListRealListener(t *testing.T) {
	e := newEnv(t, envOptions{allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header.Set("X-Forwarded-For", "10.0.0.5")
	req.Header.Set("Accept-Language", "fr")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	contains(t, "the 403 page", text(string(body)), "Cette page ne s'ouvre que depuis les ordinateurs de l'accueil.")

	// The same page with 127.0.0.0/8 allowed answers.
	ok := httptest.NewServer(New(Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Inbox: e.in, Queue: e.q, Logger: quiet}))
	defer ok.Close()
	res, err = ok.Client().Get(ok.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("allowed: status %d", res.StatusCode)
	}
}

func TestHostCheck(t *testing.T) {
	e := newEnv(t, envOptions{})
	for host, want := range map[string]int{
		"192.168.1.2":                 http.StatusOK,
		"192.168.1.2:8080":            http.StatusOK,
		"[fe80::1]:80":                http.StatusOK,
		"localhost:80":                http.StatusOK,
		"relais-accueil":              http.StatusOK,
		"RELAIS-ACCUEIL.local":        http.StatusOK,
		"relais-accueil.local.":       http.StatusOK,
		"evil.example":                http.StatusMisdirectedRequest,
		"relais-accueil.evil.example": http.StatusMisdirectedRequest,
		"":                            http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = "192.168.1.10:1", host
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
		if w.Code == http.StatusMisdirectedRequest {
			contains(t, "the 421 page", text(w.Body.String()), "Adresse inconnue")
		}
	}
	// Without Hostnames, this machine's name is known.
	h := New(Config{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, Logger: quiet})
	name, _ := os.Hostname()
	short, _, _ := strings.Cut(name, ".")
	for _, host := range []string{name, short + ".local"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = "192.168.1.10:1", host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("Host %q (this machine): %d", host, w.Code)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	j := e.submit("Held.pdf", "", api.SourcePC, "%PDF")
	s := e.scan("%PDF", 1)
	path := fmt.Sprintf("/jobs/%d/release", j.ID)
	good := e.token()
	forged := []byte(good)
	forged[len(forged)-1] ^= 1
	for _, tc := range []struct {
		name   string
		form   url.Values
		header http.Header
	}{
		{"no token", url.Values{}, nil},
		{"empty token", url.Values{"token": {""}}, nil},
		{"forged token", url.Values{"token": {string(forged)}}, nil},
		{"token of another agent", url.Values{"token": {New(Config{Clock: e.clock}).(*handler).token(e.clock.Now())}}, nil},
		{"token in the query only", url.Values{}, nil},
		{"other origin", url.Values{"token": {good}}, http.Header{"Origin": {"http://evil.example"}}},
		{"cross-site fetch", url.Values{"token": {good}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"same-site fetch", url.Values{"token": {good}}, http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"oversized form", url.Values{"token": {good}, "pad": {strings.Repeat("x", 5000)}}, nil},
	} {
		target := path
		if tc.name == "token in the query only" {
			target += "?token=" + url.QueryEscape(good)
		}
		res := e.do(http.MethodPost, target, "192.168.1.10:1", tc.form, tc.header)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, res.StatusCode)
			continue
		}
		contains(t, tc.name, text(res.body), "Action refusée", "Rouvrez la page et recommencez.")
		res = e.do(http.MethodPost, "/scans/"+s.ID+"/delete", "192.168.1.10:1", tc.form, tc.header)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s, delete: status %d, want 403", tc.name, res.StatusCode)
		}
	}
	if jj, _ := e.q.Job(j.ID); jj.State != printq.Held {
		t.Fatalf("a refused form released the job: %v", jj.State)
	}
	if len(e.in.List()) != 1 {
		t.Fatal("a refused form deleted the scan")
	}
	// A token expires after a day.
	e.clock.Advance(tokenTTL)
	if res := e.do(http.MethodPost, path, "192.168.1.10:1", url.Values{"token": {good}}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("expired token: %d", res.StatusCode)
	}
	// What browsers send for the page's own forms is accepted: Origin
	// null (no-referrer), the page's own origin, Sec-Fetch-Site
	// same-origin, or nothing.
	for i, h := range []http.Header{
		{"Origin": {"null"}},
		{"Origin": {"http://relais-accueil.local"}, "Sec-Fetch-Site": {"same-origin"}},
		{},
	} {
		jj := e.submit(fmt.Sprintf("Ok %d.pdf", i), "", api.SourcePC, "%PDF")
		res := e.do(http.MethodPost, fmt.Sprintf("/jobs/%d/release", jj.ID), "192.168.1.10:1", url.Values{"token": {e.token()}}, h)
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("headers %v: status %d, want 303", h, res.StatusCode)
		}
	}
	// The test's requests are for relais-accueil.local: that origin is the page's.
	if res := e.do(http.MethodPost, "/jobs/release-all", "192.168.1.10:1", url.Values{"token": {e.token()}},
		http.Header{"Origin": {"http://relais-accueil.local"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("own origin: %d", res.StatusCode)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		method, path string
		want         int
		ctype        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/status", 200, "text/html; charset=utf-8"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/static/refresh.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/", 404, "text/html; charset=utf-8"},
		{"GET", "/static/..%2fweb.go", 404, "text/html; charset=utf-8"},
		{"GET", "/nope", 404, "text/html; charset=utf-8"},
		{"GET", "/index.html", 404, "text/html; charset=utf-8"},
		// No route for these methods.
		{"GET", "/jobs/1/release", 404, "text/html; charset=utf-8"},
		{"POST", "/", 404, "text/html; charset=utf-8"},
		{"DELETE", "/scans/" + strings.Repeat("a", 32), 404, "text/html; charset=utf-8"},
	} {
		res := e.do(tc.method, tc.path, "192.168.1.10:1", nil, nil)
		if res.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.want)
		}
		if tc.ctype != "" && res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, res.Header.Get("Content-Type"))
		}
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no security headers", tc.method, tc.path)
		}
	}
	contains(t, "the 404 page", text(e.get("/nope").body), "Page introuvable", "Cette page n'existe pas.", "Retour à la page")
	// The flash parameters are bounded and only select known messages.
	res := e.get("/?done=released&job=" + strings.Repeat("9", 50) + "&error=<b>")
	lacks(t, "the page with odd parameters", res.body, "<b>", strings.Repeat("9", 50))
	if res.StatusCode != 200 {
		t.Errorf("odd parameters: %d", res.StatusCode)
	}
	long := e.do("GET", "/", "192.168.1.10:1", nil, http.Header{"Accept-Language": {strings.Repeat("en-GB,", 2000)}})
	if long.StatusCode != 200 {
		t.Errorf("long Accept-Language: %d", long.StatusCode)
	}
}

// Every text of the pages has its French translation in agent/locale.
func TestFrenchComplete(t *testing.T) {
	var keys []string
	add := func(re *regexp.Regexp, src string) {
		for _, m := range re.FindAllStringSubmatch(src, -1) {
			k, err := strconv.Unquote(`"` + m[1] + `"`)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
	}
	tmpls, _ := filepath.Glob("templates/*.html")
	for _, f := range tmpls {
		b, _ := os.ReadFile(f)
		add(regexp.MustCompile(`\bT "((?:[^"\\]|\\.)*)"`), string(b))
	}
	gos, _ := filepath.Glob("*.go")
	for _, f := range gos {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		add(regexp.MustCompile(`\bT\("((?:[^"\\]|\\.)*)"`), string(b))
		add(regexp.MustCompile(`h\.message\(w, r, [^,]+, "((?:[^"\\]|\\.)*)"`), string(b))
		add(regexp.MustCompile(`(?s)h\.message\(w, r, [^,]+, "[^"]*",\s*"((?:[^"\\]|\\.)*)"`), string(b))
		add(regexp.MustCompile(`text = "((?:[^"\\]|\\.)*)"`), string(b))
		add(regexp.MustCompile(`b\.sentence\([^,]+, "((?:[^"\\]|\\.)*)"`), string(b))
		add(regexp.MustCompile(`b\.sentence\([^,]+, "[^"]*", "((?:[^"\\]|\\.)*)"`), string(b))
	}
	for _, r := range printerReasons {
		if r.text != "" {
			keys = append(keys, r.text)
		}
	}
	for _, s := range scannerFaults {
		keys = append(keys, s)
	}
	for _, s := range sources {
		keys = append(keys, s)
	}
	for _, s := range jobStates {
		keys = append(keys, s)
	}
	keys = append(keys, "idle", "printing", "stopped", "unknown")
	if len(keys) < 150 {
		t.Fatalf("found only %d texts: the extraction is broken", len(keys))
	}
	// Texts the same in both languages.
	same := map[string]bool{"%.1f °C": true, "%.2f": true, "%d %%": true, "%d h %d min": true, "%d min": true,
		"%d minutes": true, "%d pages": true, "1 page": true, "Action": true, "Agent": true, "Code": true,
		"Scanner": true, "Type": true, "Version": true}
	fr := locale.Printer(language.French)
	for _, k := range keys {
		if got := fr.Sprintf(k); got == k && !same[k] && !strings.Contains(k, "%") {
			t.Errorf("no French for %q", k)
		} else if strings.Contains(k, "%") && !same[k] {
			if got := fr.Sprintf(k, 7, 8, 9); got == fmt.Sprintf(k, 7, 8, 9) {
				t.Errorf("no French for %q", k)
			}
		}
	}
}
