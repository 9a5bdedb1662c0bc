package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
	"github.com/relais-fr/relais/central/store"
)

// axeDir holds package.json and package-lock.json for axe-core; the test
// installs node_modules there (git-ignored) with npm ci when missing.
const axeDir = "testdata/axe"

// axeSource returns axe.min.js, installing the locked axe-core first when
// node_modules lacks it.
func axeSource(t *testing.T) string {
	t.Helper()
	if !axeInstalled(t) {
		npm := peertest.Program(t, "npm", "npm")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = axeDir
		if out, err := cmd.CombinedOutput(); err != nil {
			peertest.Missing(t, "npm ci in %s failed (it needs the npm registry): %v\n%s", axeDir, err, out)
		}
		if !axeInstalled(t) {
			t.Fatalf("npm ci did not install the axe-core of %s/package-lock.json", axeDir)
		}
	}
	b, err := os.ReadFile(filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// axeInstalled reports whether node_modules holds the locked axe-core.
func axeInstalled(t *testing.T) bool {
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(axeDir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &lock) != nil || lock.Packages["node_modules/axe-core"].Version == "" {
		t.Fatalf("%s/package-lock.json: unreadable or without axe-core (%v)", axeDir, err)
	}
	var pkg struct{ Version string }
	b, err = os.ReadFile(filepath.Join(axeDir, "node_modules", "axe-core", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js"))
	return err == nil && pkg.Version == lock.Packages["node_modules/axe-core"].Version
}

// artifacts is where the screenshots go: $RELAIS_ARTIFACTS/dashboard if
// set, else the test's artifact directory (kept with go test -artifacts).
func artifacts(t *testing.T) string {
	if d := os.Getenv("RELAIS_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "dashboard")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// browser starts Debian's Chromium, headless, with a fresh profile, no
// background traffic and no name resolution, so that it can reach only the
// test's loopback server. It records every URL the page requests.
func browser(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	parent, cancelParent := context.WithTimeout(context.Background(), 90*time.Second)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("accept-lang", "fr-FR,fr"),
		chromedp.Flag("lang", "fr-FR"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc(); cancelParent() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), urls...) }
}

// axeViolation is one failed axe-core rule.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// runAxe runs axe-core on the page shown and returns its violations.
func runAxe(t *testing.T, ctx context.Context, src string) []axeViolation {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
		t.Fatalf("loading axe-core: %v", err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running axe-core: %v", err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

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
	checkPNG(t, file, shot)
	t.Logf("%s: screenshot %s", name, file)
	var bad []string
	for _, v := range runAxe(t, ctx, axe) {
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

// checkPNG checks that b is a PNG of a page: decodable, of a real size, not
// blank.
func checkPNG(t *testing.T, name string, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	r := img.Bounds()
	if r.Dx() < 300 || r.Dy() < 300 {
		t.Fatalf("%s: %v is too small for a page", name, r)
	}
	bg := img.At(r.Max.X-1, r.Max.Y-1)
	colours := map[[4]uint32]bool{}
	differ, total := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			c := img.At(x, y)
			r1, g1, b1, a1 := c.RGBA()
			colours[[4]uint32{r1 >> 8, g1 >> 8, b1 >> 8, a1 >> 8}] = true
			if c != bg {
				differ++
			}
			total++
		}
	}
	if len(colours) < 8 || differ*100 < total {
		t.Fatalf("%s looks blank: %d colours, %d of %d pixels unlike the background", name, len(colours), differ, total)
	}
}

// TestBrowser logs in with Chromium, watches a fault appear on the fleet
// page live (no reload) after Changed, sends a remote action, and shows the
// usage and faults pages; each page gets a screenshot and an axe-core run.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := peertest.Program(t, "chromium", "chromium")
	axe := axeSource(t)
	out := artifacts(t)

	e := newEnv(t, envOptions{})
	fleetFixture(e)
	usageFixture2(e)
	e.user("tech", store.Technician)
	if !strings.HasPrefix(e.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", e.srv.URL)
	}
	ctx, requested := browser(t, chromium)

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
	for _, v := range runAxe(t, ctx, axe) {
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
