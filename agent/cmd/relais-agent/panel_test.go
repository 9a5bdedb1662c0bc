package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

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
