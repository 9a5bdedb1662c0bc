package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	simprinter "github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// axeDir holds package.json and package-lock.json for axe-core; the test
// installs node_modules there (git-ignored) with npm ci when missing.
const axeDir = "testdata/axe"

// axeSource returns axe.min.js, installing it first if node_modules is
// missing or not the locked version.
func axeSource(t *testing.T) string {
	t.Helper()
	min := filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js")
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
	b, err := os.ReadFile(min)
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

// artifacts is where the screenshots go: $RELAIS_ARTIFACTS/web if set,
// else the test's artifact directory (kept with go test -artifacts).
func artifacts(t *testing.T) string {
	if d := os.Getenv("RELAIS_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "web")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// browser starts Debian's Chromium, headless, with a fresh profile, nothing
// fetched in the background and no name resolution: it can only reach the
// IP addresses it is given, and the test gives it only 127.0.0.1. It records
// every URL the page requests.
func browser(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	parent, cancelParent := context.WithTimeout(context.Background(), 90*time.Second)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1024, 768),
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

// checkPNG checks that b is a PNG of a page: decodable, of a real size, and
// not blank (several colours, a fair share of pixels unlike the background).
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
	bg := img.At(r.Min.X+r.Dx()/2, r.Max.Y-1)
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

// TestBrowser shows each state of the page in Chromium: it saves a
// screenshot, checks the words a reader sees, and runs axe-core, which must
// find no serious or critical violation.
func TestBrowser(t *testing.T) {
	chromium := peertest.Program(t, "chromium", "chromium")
	axe := axeSource(t)
	out := artifacts(t)

	e := newEnv(t, envOptions{})
	srv := httptest.NewServer(e.h) // 127.0.0.1 only
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", srv.URL)
	}
	ctx, requested := browser(t, chromium)

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
	for _, v := range runAxe(t, ctx, axe) {
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
	checkPNG(t, file, shot)
	t.Logf("%s: %s", name, file)
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
