package peertest

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Chromium starts Debian's Chromium (path, from Program), headless, with a
// fresh profile, nothing fetched in the background and no name
// resolution: it can only reach the IP addresses it is given, and tests
// give it only 127.0.0.1. The page's language is French. It returns the
// browser's context and a function listing every URL the pages requested.
func Chromium(t testing.TB, path string, width, height int) (context.Context, func() []string) {
	t.Helper()
	parent, cancelParent := context.WithTimeout(context.Background(), 90*time.Second)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(width, height),
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

// Axe returns axe-core's axe.min.js from dir, which holds a package.json
// and package-lock.json; it installs node_modules there (git-ignored) with
// npm ci first when it lacks the locked version.
func Axe(t testing.TB, dir string) string {
	t.Helper()
	if !axeInstalled(t, dir) {
		npm := Program(t, "npm", "npm")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			Missing(t, "npm ci in %s failed (it needs the npm registry): %v\n%s", dir, err, out)
		}
		if !axeInstalled(t, dir) {
			t.Fatalf("npm ci did not install the axe-core of %s/package-lock.json", dir)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// axeInstalled reports whether dir's node_modules holds the locked axe-core.
func axeInstalled(t testing.TB, dir string) bool {
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &lock) != nil || lock.Packages["node_modules/axe-core"].Version == "" {
		t.Fatalf("%s/package-lock.json: unreadable or without axe-core (%v)", dir, err)
	}
	var pkg struct{ Version string }
	b, err = os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
	return err == nil && pkg.Version == lock.Packages["node_modules/axe-core"].Version
}

// AxeViolation is one failed axe-core rule.
type AxeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// RunAxe runs axe-core (src, from Axe) on the page shown and returns its
// violations.
func RunAxe(t testing.TB, ctx context.Context, src string) []AxeViolation {
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
	var vs []AxeViolation
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// Artifacts is where a test's screenshots go: $RELAIS_ARTIFACTS/sub if
// set, else the test's artifact directory (kept with go test -artifacts).
func Artifacts(t *testing.T, sub string) string {
	if d := os.Getenv("RELAIS_ARTIFACTS"); d != "" {
		d = filepath.Join(d, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// CheckPNG checks that b is a PNG of a page: decodable, of a real size, and
// not blank (several colours, a fair share of pixels unlike the background
// at the bottom centre).
func CheckPNG(t testing.TB, name string, b []byte) {
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
