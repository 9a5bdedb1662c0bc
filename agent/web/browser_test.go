package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	simprinter "github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// axeDir holds package.json and package-lock.json for axe-core; the test
// installs node_modules there (git-ignored) with npm ci when missing.
const axeDir = "testdata/axe"

// TestBrowser shows each state of the page in Chromium: it saves a
// screenshot, checks the words a reader sees, and runs axe-core, which must
// find no serious or critical violation.
func TestBrowser(t *testing.T) {
	chromium := peertest.Program(t, "chromium", "chromium")
	axe := peertest.Axe(t, axeDir)
	out := peertest.Artifacts(t, "web")

	e := newEnv(t, envOptions{})
	srv := httptest.NewServer(e.h) // 127.0.0.1 only
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", srv.URL)
	}
	ctx, requested := peertest.Chromium(t, chromium, 1024, 768)

	// show loads a page, checks it and takes its screenshot.
	show := func(name, path string, want ...string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		look(t, ctx, axe, out, name, want...)
	}

	show("empty", "/", "Scans et impressions", "Aucun document scanné n'attend.", "Aucune impression n'attend.",
		"L'imprimante est prête.", "Le scanner est prêt.", "Le Wi-Fi public fonctionne. 3 appareils sont connectés.")

	e.scan(string(peertest.PDF(2)), 2)
	e.clock.Advance(4 * time.Minute)
	e.scan(string(peertest.PDF(1)), 1)
	show("scans", "/", "Documents scannés", "Scanné à 09:04", "Scanné à 09:00", "2 pages", "Télécharger (PDF)", "Voir",
		"Supprimé automatiquement dans 11 minutes.", "Supprimé automatiquement dans 15 minutes.")

	e.in.DeleteAll()
	e.submit("Attestation CAF.pdf", "jdupont", api.SourcePC, string(peertest.PDF(1)))
	e.submit("Billet de train.pdf", "mobile", api.SourcePhone, string(peertest.PDF(2)))
	show("held", "/", "Impressions en attente", "N° 1 Attestation CAF.pdf", "N° 2 Billet de train.pdf",
		"depuis un ordinateur", "depuis un téléphone", "Imprimer", "Annuler", "Tout imprimer (2)")

	e.faults(simprinter.Faults{MediaEmpty: true}, "the printer out of paper", hasReason("media-empty"))
	show("out-of-paper", "/", "L'imprimante n'a plus de papier. Ajoutez du papier.")

	show("status", "/status", "Détails techniques", "media-empty", "Black Toner", "File d'impression")

	// A real click on a form: the token and Origin: null of a browser under
	// no-referrer pass, and the redirect shows what was done.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`form[action="/jobs/1/release"] button`)))); err != nil {
		t.Fatal(err)
	}
	look(t, ctx, axe, out, "released", "L'impression n° 1 est envoyée à l'imprimante.",
		"1 impression est en route vers l'imprimante.", "N° 2 Billet de train.pdf")

	// axe-core does find what it must: a button without a name.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](
		`document.querySelector("main").insertAdjacentHTML("beforeend", "<button type=button></button>")`)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range peertest.RunAxe(t, ctx, axe) {
		found = found || v.ID == "button-name" && v.Impact == "critical"
	}
	if !found {
		t.Error("axe-core did not report a button without a name: it does not check the page")
	}

	for _, u := range requested() {
		if !strings.HasPrefix(u, srv.URL+"/") && u != "about:blank" {
			t.Errorf("the browser requested %s: only the test's loopback server may be reached", u)
		}
	}
}

// look checks the page shown: its text, its screenshot, axe-core.
func look(t *testing.T, ctx context.Context, axe, out, name string, want ...string) {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	text = strings.Join(strings.Fields(text), " ")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: the page does not say %q; it says:\n%s", name, w, text)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	file := filepath.Join(out, name+".png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	peertest.CheckPNG(t, file, shot)
	t.Logf("%s: %s", name, file)
	var bad []string
	for _, v := range peertest.RunAxe(t, ctx, axe) {
		line := fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, ", "))
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, line)
		} else {
			t.Logf("%s: axe-core, not serious: %s", name, line)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s: axe-core found %d serious or critical violation(s):\n%s", name, len(bad), strings.Join(bad, "\n"))
	}
}
