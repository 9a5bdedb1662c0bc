package scanner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// The simulator against a real eSCL client: SANE's airscan backend (Debian
// package sane-airscan) through scanimage, in a private SANE configuration
// that knows the simulator only and discovers nothing on the network.

const airscanDevice = "airscan:e0:Relais Sim"

type airscanRig struct {
	sim       *Scanner
	scanimage string
	env       []string
	out       string
}

func newAirscanRig(t *testing.T, cfg Config) *airscanRig {
	t.Helper()
	prog := peertest.Program(t, "scanimage", "sane-utils")
	if libs, _ := filepath.Glob("/usr/lib/*/sane/libsane-airscan.so*"); len(libs) == 0 {
		peertest.Missing(t, "SANE's airscan backend not found: install the Debian package sane-airscan")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conf := t.TempDir()
	files := map[string]string{
		"dll.conf": "airscan\n",
		"airscan.conf": fmt.Sprintf("[devices]\n%q = %s\n\n[options]\ndiscovery = disable\nws-discovery = off\n",
			"Relais Sim", s.URL()),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &airscanRig{sim: s, scanimage: prog, env: append(os.Environ(), "SANE_CONFIG_DIR="+conf, "LC_ALL=C"), out: t.TempDir()}
}

// run runs scanimage in the output directory and returns its exit error
// and standard error.
func (r *airscanRig) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.scanimage, args...)
	cmd.Dir, cmd.Env = r.out, r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String() + stderr.String(), err
}

// readPNM decodes a binary PGM or PPM as scanimage writes it.
func readPNM(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var fields []string
	for len(fields) < 4 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: header: %v", path, err)
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields = append(fields, strings.Fields(line)...)
	}
	var w, h, maxv int
	if _, err := fmt.Sscan(strings.Join(fields[1:4], " "), &w, &h, &maxv); err != nil || maxv != 255 {
		t.Fatalf("%s: header %q", path, fields)
	}
	var img image.Image
	switch fields[0] {
	case "P5":
		g := image.NewGray(image.Rect(0, 0, w, h))
		if _, err := io.ReadFull(r, g.Pix); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		img = g
	case "P6":
		px := make([]byte, 3*w*h)
		if _, err := io.ReadFull(r, px); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < w*h; i++ {
			copy(c.Pix[4*i:4*i+3], px[3*i:3*i+3])
			c.Pix[4*i+3] = 0xff
		}
		img = c
	default:
		t.Fatalf("%s: %s is not a binary PGM or PPM", path, fields[0])
	}
	return img
}

// near checks an image's size against A4 at dpi, give or take the pixel
// airscan rounds.
func near(img image.Image, dpi int) bool {
	w, h := float64(210*dpi)/25.4, float64(297*dpi)/25.4
	s := img.Bounds().Size()
	return abs(float64(s.X)-w) <= 1.5 && abs(float64(s.Y)-h) <= 1.5
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestAirscanListsTheSimulator(t *testing.T) {
	r := newAirscanRig(t, Config{})
	out, err := r.run(t, "-L")
	if err != nil || !strings.Contains(out, "`"+airscanDevice+"'") {
		t.Fatalf("scanimage -L: %v\n%s", err, out)
	}
	out, err = r.run(t, "-d", airscanDevice, "-A")
	if err != nil {
		t.Fatalf("scanimage -A: %v\n%s", err, out)
	}
	for _, want := range []string{"--resolution 75|100|150|200|300|600dpi", "--mode Color|Gray", "--source Flatbed|ADF|ADF Duplex"} {
		if !strings.Contains(out, want) {
			t.Errorf("options lack %q:\n%s", want, out)
		}
	}
}

func TestAirscanFlatbed(t *testing.T) {
	r := newAirscanRig(t, Config{})
	out, err := r.run(t, "-d", airscanDevice, "--resolution", "75", "--mode", "Gray", "-x", "210", "-y", "297",
		"--format=pnm", "-o", "flat.pnm")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	img := readPNM(t, filepath.Join(r.out, "flat.pnm"))
	if _, gray := img.(*image.Gray); !gray || !near(img, 75) || PageCode(img, 75) != 1 {
		t.Errorf("page %T of %v, code %d", img, img.Bounds().Size(), PageCode(img, 75))
	}
	out, err = r.run(t, "-d", airscanDevice, "--resolution", "150", "--mode", "Color", "-x", "210", "-y", "297",
		"--format=jpeg", "-o", "flat.jpg")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(r.out, "flat.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jpg, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if !near(jpg, 150) || PageCode(jpg, 150) != 1 {
		t.Errorf("JPEG page of %v, code %d", jpg.Bounds().Size(), PageCode(jpg, 150))
	}
	if st := r.sim.Status(); st.Completed != 2 || st.Active != 0 || st.Pages != 2 {
		t.Errorf("simulator: %+v", st)
	}
}

// batch scans every page from the feeder into p1.pnm, p2.pnm, ...; it
// returns the page codes, in order, and scanimage's output.
func (r *airscanRig) batch(t *testing.T, source string, dpi int) ([]int, string, error) {
	t.Helper()
	out, err := r.run(t, "-d", airscanDevice, "--source", source, "--resolution", fmt.Sprint(dpi), "--mode", "Color",
		"-x", "210", "-y", "297", "--format=pnm", "--batch=p%d.pnm")
	var codes []int
	for i := 1; ; i++ {
		p := filepath.Join(r.out, fmt.Sprintf("p%d.pnm", i))
		if _, err := os.Stat(p); err != nil {
			break
		}
		img := readPNM(t, p)
		if !near(img, dpi) {
			t.Errorf("page %d of %v", i, img.Bounds().Size())
		}
		codes = append(codes, PageCode(img, dpi))
		os.Remove(p)
	}
	return codes, out, err
}

func TestAirscanFeederBatch(t *testing.T) {
	r := newAirscanRig(t, Config{ADF: 3})
	codes, out, err := r.batch(t, "ADF", 100)
	if err != nil || !slices.Equal(codes, []int{1, 2, 3}) {
		t.Fatalf("pages %v, %v\n%s", codes, err, out)
	}
	// The batch ends on the empty feeder, as SANE frontends expect.
	if !strings.Contains(out, "Document feeder out of documents") {
		t.Errorf("the batch did not end on an empty feeder:\n%s", out)
	}
	if st := r.sim.Status(); st.ADF != 0 || st.Completed != 1 || st.Active != 0 {
		t.Errorf("simulator: %+v", st)
	}

	r.sim.LoadADF(2)
	codes, out, err = r.batch(t, "ADF Duplex", 75)
	if err != nil || !slices.Equal(codes, []int{1, 2, 3, 4}) {
		t.Fatalf("duplex: pages %v, %v\n%s", codes, err, out)
	}
}

func TestAirscanFeederFaults(t *testing.T) {
	r := newAirscanRig(t, Config{ADF: 3})
	r.sim.Command("jam 2")
	codes, out, err := r.batch(t, "ADF", 75)
	if err == nil || !slices.Equal(codes, []int{1}) || !strings.Contains(out, "Document feeder jammed") {
		t.Errorf("jam at the second sheet: pages %v, %v\n%s", codes, err, out)
	}
	r.sim.Command("clear")
	r.sim.LoadADF(0)
	codes, out, _ = r.batch(t, "ADF", 75)
	if len(codes) != 0 || !strings.Contains(out, "Document feeder out of documents") {
		t.Errorf("empty feeder: pages %v\n%s", codes, out)
	}
}
