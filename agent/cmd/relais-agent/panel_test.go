package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/sim/scanner"
	"github.com/relais-fr/relais/central/peertest"
)

// TestButtonCopyAndScan presses the simulated button as a visitor would:
// a short press copies the 3 sheets of the eSCL simulator's feeder, printed
// by ippeveprinter as one 3-page job; a long press leaves a scan that the
// local page offers for download; a jam shows as a fault with the LED at
// 4 Hz, cleared by the next scan that works.
func TestButtonCopyAndScan(t *testing.T) {
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	sc, err := scanner.New(scanner.Config{ADF: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	webPort := peertest.FreePort(t)
	agent := startAgent(t, printer.URI, "scanner.driver=escl", "scanner.url="+sc.URL(),
		fmt.Sprintf("web.listen=127.0.0.1:%d", webPort))

	press := func(g string) {
		t.Helper()
		if out, errs, code := run(t, "ctl", "--config", agent.config, "press", g); code != 0 {
			t.Fatalf("ctl press %s: exit %d %s %s", g, code, out, errs)
		}
	}

	press("short")
	docs := printer.WaitDocuments(t, 1, 120*time.Second)
	data, err := os.ReadFile(docs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(data, -1)); n != 3 {
		t.Errorf("the copy has %d pages, want the 3 sheets of the feeder", n)
	}
	agent.waitFor("copy.completed recorded", 60*time.Second, func() bool {
		out, _, _ := run(t, "ctl", "--config", agent.config, "queue")
		return strings.Contains(out, `"type":"copy.completed"`)
	})

	if _, err := sc.Command("adf 2"); err != nil {
		t.Fatal(err)
	}
	press("long")
	page := fmt.Sprintf("http://127.0.0.1:%d/", webPort)
	var link string
	agent.waitFor("the scan on the local page", 60*time.Second, func() bool {
		resp, err := http.Get(page)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`href="(/scans/[0-9a-f]+)"`).FindSubmatch(body)
		if m == nil {
			return false
		}
		link = string(m[1])
		return true
	})
	resp, err := http.Get(strings.TrimSuffix(page, "/") + link)
	if err != nil {
		t.Fatal(err)
	}
	pdf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("download %s: %s, %d bytes", link, resp.Status, len(pdf))
	}

	// A jam at the first sheet: the scan fails, the fault shows and the
	// LED blinks at 4 Hz; the next scan that works clears it.
	for _, cmd := range []string{"adf 1", "jam 1"} {
		if _, err := sc.Command(cmd); err != nil {
			t.Fatal(err)
		}
	}
	press("long")
	agent.waitFor("scanner-jam fault and LED at 4 Hz", 60*time.Second, func() bool {
		jam := false
		for _, f := range agent.status().Faults {
			jam = jam || f.Code == "scanner-jam"
		}
		out, _, _ := run(t, "ctl", "--config", agent.config, "--json", "led")
		return jam && strings.Contains(out, `"fault"`)
	})
	for _, cmd := range []string{"clear", "adf 1"} {
		if _, err := sc.Command(cmd); err != nil {
			t.Fatal(err)
		}
	}
	press("long")
	agent.waitFor("scanner fault cleared", 60*time.Second, func() bool {
		for _, f := range agent.status().Faults {
			if f.Device == "scanner" {
				return false
			}
		}
		return true
	})
}

// ledPattern is the LED's pattern as `ctl led` tells it.
func (a *runningAgent) ledPattern() string {
	a.t.Helper()
	resp, err := ctl.Call(context.Background(), a.storage, ctl.Request{Command: "led"})
	if err != nil {
		a.t.Fatalf("ctl led: %v\n%s", err, a.stderr)
	}
	var d struct{ Pattern string }
	if err := json.Unmarshal(resp.Data, &d); err != nil {
		a.t.Fatalf("ctl led: %v: %s", err, resp.Data)
	}
	return d.Pattern
}

func (a *runningAgent) hasFault(code string) bool {
	for _, f := range a.status().Faults {
		if f.Code == code {
			return true
		}
	}
	return false
}

// identifyTest is an ipptool test file that sends Identify-Printer.
const identifyTest = `{
	NAME "Identify-Printer"
	OPERATION Identify-Printer
	GROUP operation-attributes-tag
	ATTR charset attributes-charset utf-8
	ATTR naturalLanguage attributes-natural-language en
	ATTR uri printer-uri $uri
	ATTR keyword identify-actions flash
	STATUS successful-ok
}
`

// TestIdentifyUnreachableScannerAndRetention covers the panel's other
// paths end to end: CUPS's ipptool sends Identify-Printer and the LED
// blinks at 8 Hz; a scanner that stops answering raises
// scanner-unreachable with the LED at 4 Hz, cleared once it answers again;
// a scan left in the inbox while the agent is down past the retention is
// gone when it starts again, from the disk and from the local page.
func TestIdentifyUnreachableScannerAndRetention(t *testing.T) {
	ipptool := peertest.Program(t, "ipptool", "cups-ipp-utils")
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	sc, err := scanner.New(scanner.Config{ADF: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	webPort := peertest.FreePort(t)
	agent := startAgent(t, printer.URI, "scanner.driver=escl", "scanner.url="+sc.URL(),
		fmt.Sprintf("web.listen=127.0.0.1:%d", webPort))
	agent.waitFor("LED ready", 30*time.Second, func() bool { return agent.ledPattern() == "ready" })

	test := filepath.Join(t.TempDir(), "identify.test")
	if err := os.WriteFile(test, []byte(identifyTest), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ipptool, "-t", agent.URI, test).CombinedOutput(); err != nil {
		t.Fatalf("ipptool Identify-Printer: %v\n%s", err, out)
	}
	if p := agent.ledPattern(); p != "identify" {
		t.Errorf("LED after Identify-Printer: %q, want identify", p)
	}

	// The scanner goes away: the next scan finds it unreachable.
	if _, err := sc.Command("offline"); err != nil {
		t.Fatal(err)
	}
	press := func(g string) {
		t.Helper()
		if out, errs, code := run(t, "ctl", "--config", agent.config, "press", g); code != 0 {
			t.Fatalf("ctl press %s: exit %d %s %s", g, code, out, errs)
		}
	}
	press("long")
	agent.waitFor("scanner-unreachable with the LED at 4 Hz", 90*time.Second, func() bool {
		return agent.hasFault("scanner-unreachable") && agent.ledPattern() == "fault"
	})
	if _, err := sc.Command("online"); err != nil {
		t.Fatal(err)
	}
	press("long")
	agent.waitFor("scanner-unreachable cleared, LED ready", 90*time.Second, func() bool {
		return !agent.hasFault("scanner-unreachable") && agent.ledPattern() == "ready"
	})

	inboxDir := filepath.Join(agent.storage, "inbox")
	var meta string
	agent.waitFor("the scan in the inbox", 60*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(inboxDir, "*.json"))
		if len(m) == 1 {
			meta = m[0]
		}
		return len(m) == 1
	})
	page := fmt.Sprintf("http://127.0.0.1:%d/", webPort)
	id := strings.TrimSuffix(filepath.Base(meta), ".json")
	if body := get(t, page); !strings.Contains(body, id) {
		t.Fatalf("the local page does not offer scan %s", id)
	}

	// The agent is down for 20 minutes: the clock moves past the 15-minute
	// retention while nothing runs. The scan's record says when it was
	// made; moving that back is what 20 minutes of downtime looks like.
	agent.kill()
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	ago := time.Now().Add(-20 * time.Minute).UTC()
	rec["created"], rec["expires"] = ago, ago.Add(15*time.Minute)
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, b, 0o600); err != nil {
		t.Fatal(err)
	}
	agent.start()
	if left, _ := os.ReadDir(inboxDir); len(left) != 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("inbox after a restart past the retention: %v, want empty", names)
	}
	if body := get(t, page); strings.Contains(body, id) {
		t.Errorf("the local page still offers the expired scan %s", id)
	}
	resp, err := http.Get(page + "scans/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the expired scan: %s, want 404", resp.Status)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
