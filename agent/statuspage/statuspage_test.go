package statuspage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"

	"github.com/relais-fr/relais/central/peertest"
)

func sample() Info {
	return Info{
		SiteName:  "Médiathèque François-Mitterrand — Sœur Thérèse",
		SiteID:    "saint-etienne-centre",
		AgentID:   "rdc",
		Addresses: []string{"192.168.10.20", "fd12:3456:789a:1::20", "fe80::dea6:32ff:fe01:2345"},
		Printer:   Device{Condition: Fault, Name: "Xerox B235", Detail: "plus de papier"},
		Scanner:   Device{Condition: Working, Name: "eSCL http://192.168.10.31/eSCL"},
		WiFi:      Device{Condition: Unreachable, Name: "Relais-Public 📶"},
		Version:   "1.4.2",
		LocalURL:  "http://192.168.10.20/",
		Printed:   time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC),
	}
}

// render writes info's page in a temporary file.
func render(t *testing.T, info Info, lang language.Tag) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, info, lang); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", b.Bytes()[:min(b.Len(), 20)])
	}
	path := filepath.Join(t.TempDir(), "status.pdf")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run returns the standard output of a program.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// words is the text of a PDF with its layout's runs of spaces and line
// breaks made single spaces, so that wrapped values read whole.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestRenderTextFrench(t *testing.T) {
	pdftotext := peertest.Program(t, "pdftotext", "poppler-utils")
	pdfinfo := peertest.Program(t, "pdfinfo", "poppler-utils")
	path := render(t, sample(), language.French)

	if info := words(run(t, pdfinfo, path)); !strings.Contains(info, "Pages: 1 ") || !strings.Contains(info, "595 x 842 pts (A4)") {
		t.Errorf("not one A4 page:\n%s", info)
	}
	text := words(run(t, pdftotext, "-layout", path, "-"))
	for _, want := range []string{
		"Page d'état Relais",
		"Médiathèque François-Mitterrand — Sœur Thérèse",
		"Identifiant du site saint-etienne-centre",
		"Identifiant de l'agent rdc",
		"Adresses IP 192.168.10.20, fd12:3456:789a:1::20, fe80::dea6:32ff:fe01:2345",
		"Imprimante en panne : intervention nécessaire — Xerox B235 (plus de papier)",
		"Scanner en service — eSCL http://192.168.10.31/eSCL",
		"Wi-Fi injoignable — Relais-Public ?", // no emoji in the font
		"Version de l'agent 1.4.2",
		"Imprimée le 02/03/2026 09:30 UTC",
		"Page locale http://192.168.10.20/",
		"réseau du site",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
}

func TestRenderTextEnglish(t *testing.T) {
	pdftotext := peertest.Program(t, "pdftotext", "poppler-utils")
	info := sample()
	info.Scanner = Device{}
	info.Addresses = nil
	text := words(run(t, pdftotext, "-layout", render(t, info, language.BritishEnglish), "-"))
	for _, want := range []string{
		"Relais status page", "Médiathèque", "Printer", "out of order: staff needed",
		"not checked yet", "IP addresses —", "Printed on", "2026-03-02 09:30 UTC", "Local page",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
}

func TestRenderQRCodeDecodes(t *testing.T) {
	pdftoppm := peertest.Program(t, "pdftoppm", "poppler-utils")
	zbarimg := peertest.Program(t, "zbarimg", "zbar-tools")
	for _, url := range []string{
		"http://192.168.10.20/",
		"http://[fd12:3456:789a:1::20]:8080/?lang=fr",
	} {
		info := sample()
		info.LocalURL = url
		path := render(t, info, language.French)
		png := filepath.Join(t.TempDir(), "page")
		run(t, pdftoppm, "-png", "-r", "100", "-singlefile", path, png)
		out := run(t, zbarimg, "--quiet", "--raw", png+".png")
		if got := strings.TrimSpace(out); got != url {
			t.Errorf("QR code reads %q, want %q", got, url)
		}
	}
}

func TestRenderWithoutLocalURL(t *testing.T) {
	info := sample()
	info.LocalURL = ""
	var b bytes.Buffer
	if err := Render(&b, info, language.French); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte(" re f")) {
		t.Error("a QR code drawn with no address")
	}
}
