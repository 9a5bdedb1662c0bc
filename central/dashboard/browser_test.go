package dashboard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/central/store"
)

// axeDir holds package.json and package-lock.json for axe-core; the test
// installs node_modules there (git-ignored) with npm ci when missing.
const axeDir = "testdata/axe"

// look checks the page shown: the words a reader sees, a screenshot that
// is not blank, and axe-core, which must find nothing serious or critical.
func look(t *testing.T, ctx context.Context, axe, out, name string, want ...string) {
	t.Helper()
	txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	txt = strings.Join(strings.Fields(txt), " ")
	for _, w := range want {
		if !strings.Contains(txt, w) {
			t.Errorf("%s: the page does not say %q; it says:\n%s", name, w, txt)
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
	t.Logf("%s: screenshot %s", name, file)
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

// TestBrowser logs in with Chromium, watches a fault appear on the fleet
// page live (no reload) after Changed, sends a remote action, and shows the
// usage and faults pages; each page gets a screenshot and an axe-core run.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := peertest.Program(t, "chromium", "chromium")
	axe := peertest.Axe(t, axeDir)
	out := peertest.Artifacts(t, "dashboard")

	e := newEnv(t, envOptions{})
	fleetFixture(e)
	usageFixture2(e)
	e.user("tech", store.Technician)
	if !strings.HasPrefix(e.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", e.srv.URL)
	}
	ctx, requested := peertest.Chromium(t, chromium, 1280, 900)

	// Every page sends to the login form, which goes back after login.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#name"))); err != nil {
		t.Fatal(err)
	}
	look(t, ctx, axe, out, "login", "Connexion", "Nom d'utilisateur", "Mot de passe")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#name"), "tech"), chromedp.SendKeys(chromedp.CSS("#password"), password)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`form.login button[type="submit"]`)))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#live table"))); err != nil {
		t.Fatal(err)
	}
	look(t, ctx, axe, out, "fleet", "État du parc", "1 en panne", "plus de papier", "Hors ligne depuis 1 h", "Tout fonctionne.")

	// A fault arrives: the page shows it without a reload.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.relaisSamePage = true`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.d.hub.count() == 0 { // the page's EventSource is connected
		if time.Now().After(deadline) {
			t.Fatal("the page did not open /events")
		}
		<-time.After(10 * time.Millisecond) // polling a condition, bounded by the deadline
	}
	e.status("mairie", "accueil", t0, fault(api.DevicePrinter, "media-jam", api.SeverityFault, t0.Add(-7*time.Minute)))
	e.d.Changed("mairie", "accueil")
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err := chromedp.Run(wait, chromedp.Poll[bool](`document.getElementById("live").innerText.includes("bourrage papier")`,
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)))
	cancel()
	if err != nil {
		t.Fatalf("the fault did not appear live: %v", err)
	}
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.relaisSamePage === true`))
	if err != nil || !same {
		t.Errorf("the page was reloaded (%v)", err)
	}
	look(t, ctx, axe, out, "fleet-live", "2 en panne", "Imprimante : bourrage papier (panne), depuis 7 min")

	// The site page: a remote action, and its flash.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/sites/biblio/rdc"), chromedp.WaitVisible(chromedp.CSS("#live"))); err != nil {
		t.Fatal(err)
	}
	look(t, ctx, axe, out, "site", "Relais biblio / rdc", "Actions à distance", "plus de papier")
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`form input[value="identify"] ~ button`)))); err != nil {
		t.Fatal(err)
	}
	look(t, ctx, axe, out, "site-identify", "Commande « Faire clignoter le voyant » envoyée.", "en attente de réponse")
	if sent := e.cmd.commands(); len(sent) != 1 || sent[0].Cmd.Name != api.CommandIdentify {
		t.Errorf("commands sent: %+v", sent)
	}

	for _, p := range []struct{ name, path string }{
		{"usage", "/usage?from=2026-03-01&to=2026-03-15&period=day"},
		{"usage-month", "/usage"},
		{"faults", "/faults?state=all"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
		switch p.name {
		case "usage":
			look(t, ctx, axe, out, p.name, "Totaux par site", "Pages imprimées", "Visiteurs Wi-Fi")
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg path").length`))
			if err != nil || n < 20 {
				t.Errorf("the charts have %d paths (%v)", n, err)
			}
		case "faults":
			look(t, ctx, axe, out, p.name, "Pannes", "bourrage papier", "Je m'en occupe")
		default:
			look(t, ctx, axe, out, p.name, "Utilisation")
		}
	}

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
		// data: URLs are Chromium's own icons (the date picker's).
		if !strings.HasPrefix(u, e.srv.URL+"/") && u != "about:blank" && !strings.HasPrefix(u, "data:") {
			t.Errorf("the browser requested %s: only the test's loopback server may be reached", u)
		}
	}
}

// usageFixture2 records usage for agents the fleet fixture registered.
func usageFixture2(e *env) {
	e.events("mairie", "accueil", 1, printed(day(2), 3), copied(day(3), 2), scanned(day(3), 4), visitors(day(3), 17))
	e.events("biblio", "rdc", 1, printed(day(10), 5), visitors(day(10), 30), printed(day(11), 12))
	e.events("cafe", "comptoir", 1, printed(day(5), 8), visitors(day(6), 9))
}
