package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relais-fr/relais/central/peertest"
)

// TestDemo runs `relais-central demo` as `make demo` does, with a fast
// scenario, and checks what a newcomer sees within a minute: the dashboard
// at the address printed, the login printed works, three sites report,
// faults appear and clear, usage accumulates; headless Chromium takes the
// screenshot of the fleet page. Ctrl-C (SIGINT) stops everything cleanly.
func TestDemo(t *testing.T) {
	chromium := peertest.Program(t, "chromium", "chromium")
	agentExe := buildAgent(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "demo", "--http", fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t)),
		"--agent-bin", agentExe, "--step", "2s", "--dir", t.TempDir())
	cmd.Env = append(os.Environ(), "RELAIS_TEST_MAIN=1", "LANG=fr_FR.UTF-8")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr peertest.SyncBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var dashboard, password string
	var printed []string
	for dashboard == "" || password == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended: %s\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, l)
			if v, ok := strings.CutPrefix(l, "Tableau de bord : "); ok {
				dashboard = v
			}
			if v, ok := strings.CutPrefix(l, "  mot de passe : "); ok {
				password = v
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("no dashboard address and password printed: %s\n%s", strings.Join(printed, "\n"), stderr.String())
		}
	}

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(dashboard + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	form := get("/login")
	m := regexp.MustCompile(`name="login_token" value="([^"]+)"`).FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("no login token in the form: %s", form)
	}
	resp, err := client.PostForm(dashboard+"/login", url.Values{"login_token": {m[1]}, "name": {"demo"}, "password": {password}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(get("/"), "mairie-centre") {
		t.Fatal("the printed login did not open the fleet page")
	}

	// Within a minute of the start on an idle machine (two under the
	// load of the whole test suite): three sites, each fault appearing
	// and then clearing, usage that grows.
	sites := []string{"mairie-centre", "ccas-nord", "mediatheque"}
	faults := []string{"plus de papier", "bourrage", "Hors ligne"}
	seen, cleared := map[string]bool{}, map[string]bool{}
	var shot []byte
	deadline := start.Add(2 * time.Minute)
	for {
		page := get("/")
		seenAll := true
		for _, s := range sites {
			seenAll = seenAll && strings.Contains(page, s)
		}
		open, done := 0, seenAll
		for _, f := range faults {
			if strings.Contains(page, f) {
				seen[f] = true
				open++
			} else if seen[f] {
				cleared[f] = true
			}
			done = done && cleared[f]
		}
		if open >= 2 && shot == nil {
			// The screenshot shows faults, as a technician would see them.
			shot = screenshot(t, chromium, dashboard, password)
		}
		if done && shot != nil && usagePages(t, get) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: sites seen %v, faults seen %v, cleared %v, pages %d\n%s",
				time.Since(start).Round(time.Second), seenAll, seen, cleared, usagePages(t, get), stderr.String())
		}
		time.Sleep(500 * time.Millisecond) // polling what a visitor of the dashboard sees
	}
	t.Logf("three sites, faults raised and cleared, usage after %v", time.Since(start).Round(time.Second))

	path := filepath.Join(t.ArtifactDir(), "demo-fleet.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	cmd.Process.Signal(syscall.SIGINT)
	for l := range lines {
		printed = append(printed, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if last := printed[len(printed)-1]; last != "Démonstration arrêtée." {
		t.Errorf("last line %q, want the clean stop", last)
	}
}

// usagePages sums the pages printed in the usage export of today.
func usagePages(t *testing.T, get func(string) string) int {
	day := time.Now().UTC().Format("2006-01-02")
	r := csv.NewReader(strings.NewReader(get("/usage.csv?format=standard&period=day&from=" + day + "&to=" + day)))
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("usage.csv: %v %q", err, rows)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "pages" {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("usage.csv has no pages column: %q", rows[0])
	}
	n := 0
	for _, row := range rows[1:] {
		v, _ := strconv.Atoi(row[col])
		n += v
	}
	return n
}

// screenshot logs in with headless Chromium and returns a PNG of the
// fleet page.
func screenshot(t *testing.T, chromium, dashboard, password string) []byte {
	ctx, _ := peertest.Chromium(t, chromium, 1280, 900)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(dashboard+"/"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#live table")),
	); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return png
}
