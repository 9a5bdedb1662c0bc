package wifi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
)

func hw(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVisitorsPersistAndRollover(t *testing.T) {
	path := StatePath(t.TempDir())
	v, err := loadVisitors(path, "2026-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if !v.add(hw(t, macA)) || !v.add(hw(t, macB)) || v.add(hw(t, macA)) || v.count() != 2 {
		t.Fatalf("count %d", v.count())
	}
	if err := v.flush(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, want)
		}
	}
	salt := v.salt

	// Read back the same day: same salt, same visitors.
	v, err = loadVisitors(path, "2026-03-10")
	if err != nil || v.day != "2026-03-10" || v.count() != 2 || !bytes.Equal(v.salt, salt) || v.add(hw(t, macA)) {
		t.Fatalf("reloaded: %+v, %v", v, err)
	}

	// The clock steps back: nothing changes.
	if rolled, err := v.rollover("2026-03-09"); rolled || err != nil || v.day != "2026-03-10" {
		t.Errorf("stepped back: %v, %v, day %s", rolled, err, v.day)
	}
	if rolled, _ := v.rollover("1970-01-01"); rolled {
		t.Error("an unset clock rolled the day over")
	}

	// Midnight: the day becomes pending, salt and hashes are replaced.
	if rolled, err := v.rollover("2026-03-11"); !rolled || err != nil {
		t.Fatalf("rollover: %v, %v", rolled, err)
	}
	if v.pending == nil || *v.pending != (report{Day: "2026-03-10", Visitors: 2}) || v.count() != 0 || bytes.Equal(v.salt, salt) {
		t.Fatalf("after rollover: pending %+v, count %d", v.pending, v.count())
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(encodeB64(salt))) {
		t.Error("the previous day's salt is still in the file")
	}
	// The pending report survives a restart until it is marked reported.
	v, err = loadVisitors(path, "2026-03-11")
	if err != nil || v.pending == nil || v.pending.Day != "2026-03-10" {
		t.Fatalf("pending lost: %+v, %v", v.pending, err)
	}
	if err := v.markReported(); err != nil {
		t.Fatal(err)
	}
	v, _ = loadVisitors(path, "2026-03-11")
	if v.pending != nil || v.reported != "2026-03-10" {
		t.Errorf("after markReported: pending %+v, reported %q", v.pending, v.reported)
	}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestVisitorsClockUnsetAtStart(t *testing.T) {
	path := StatePath(t.TempDir())
	v, err := loadVisitors(path, "1970-01-01")
	if err != nil || v.day != "" {
		t.Fatalf("day %q, %v", v.day, err)
	}
	v.add(hw(t, macA))
	// NTP sets the clock: the visitors counted so far belong to today.
	if rolled, err := v.rollover("2026-03-10"); !rolled || err != nil || v.day != "2026-03-10" || v.pending != nil || v.count() != 1 {
		t.Errorf("adopted: %v, %v, %+v", rolled, err, v)
	}
}

func TestVisitorsDamagedFile(t *testing.T) {
	good := `{"version":1,"day":"2026-03-10","salt":"` + strings.Repeat("A", 43) + `=","seen":[]}`
	for name, content := range map[string]string{
		"not json":      "\x00\xffgarbage",
		"truncated":     good[:40],
		"wrong version": strings.Replace(good, `"version":1`, `"version":7`, 1),
		"short salt":    `{"version":1,"day":"2026-03-10","salt":"AAAA","seen":[]}`,
		"bad day":       strings.Replace(good, "2026-03-10", "2026-13-10", 1),
		"bad hash":      strings.Replace(good, `"seen":[]`, `"seen":["zz"]`, 1),
		"odd hash":      strings.Replace(good, `"seen":[]`, `"seen":["`+strings.Repeat("a", 33)+`"]`, 1),
		"bad pending":   strings.Replace(good, `"seen":[]`, `"seen":[],"pending":{"day":"1970-01-01","visitors":3}`, 1),
		"huge":          good[:len(good)-1] + `,"x":"` + strings.Repeat("x", maxStateBytes) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := StatePath(t.TempDir())
			os.MkdirAll(filepath.Dir(path), 0o700)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			v, err := loadVisitors(path, "2026-03-10")
			if err == nil {
				t.Error("accepted")
			}
			if v == nil || v.day != "2026-03-10" || len(v.salt) != saltBytes || v.count() != 0 || !v.add(hw(t, macA)) {
				t.Errorf("not usable afresh: %+v", v)
			}
		})
	}
	// The good one is fine.
	path := StatePath(t.TempDir())
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte(good), 0o600)
	if _, err := loadVisitors(path, "2026-03-10"); err != nil {
		t.Errorf("good file: %v", err)
	}
}

func TestVisitorsBound(t *testing.T) {
	v, _ := loadVisitors(StatePath(t.TempDir()), "2026-03-10")
	for i := range MaxVisitors + 5 {
		v.add(net.HardwareAddr{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	if v.count() != MaxVisitors {
		t.Errorf("count %d, want the bound %d", v.count(), MaxVisitors)
	}
	if err := v.flush(); err != nil {
		t.Fatal(err)
	}
	if v2, err := loadVisitors(v.path, "2026-03-10"); err != nil || v2.count() != MaxVisitors {
		t.Errorf("reloaded %d, %v", v2.count(), err)
	}
}

// flaky fails the first calls of Record, as a full outbox would, then
// passes them on.
type flaky struct {
	Recorder
	fail atomic.Int32
}

func (f *flaky) Record(e api.Event) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("outbox: full of undelivered events")
	}
	return f.Recorder.Record(e)
}

func TestDailyRetriedUntilRecorded(t *testing.T) {
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	// A state left by a previous run, two days ago, with one visitor.
	v, _ := loadVisitors(StatePath(s.dir), "2026-03-08")
	v.add(hw(t, macA))
	if err := v.flush(); err != nil {
		t.Fatal(err)
	}
	cfg := s.config(t, "")
	cfg.Interface = "relais-nowifi0" // no radio here: the AP is down, days still roll
	rec := &flaky{Recorder: s.outbox}
	rec.fail.Store(3)
	cfg.Recorder = rec
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)
	waitFor(t, w, "recorded", func() bool { return len(s.events(t, api.EventWiFiDaily)) == 1 })
	e := s.events(t, api.EventWiFiDaily)[0]
	if e.Day != "2026-03-08" || *e.Visitors != 1 || rec.fail.Load() >= 0 {
		t.Errorf("wifi.daily %s=%d after %d failures left", e.Day, *e.Visitors, rec.fail.Load())
	}
	if d, n := w.Visitors(); d != "2026-03-10" || n != 0 {
		t.Errorf("today %s=%d", d, n)
	}
}

func TestNewRefuses(t *testing.T) {
	s := newSite(t, time.Date(2026, 3, 10, 10, 0, 0, 0, paris))
	base := s.config(t, "/run/hostapd/wlan0")
	for name, edit := range map[string]func(*Config){
		"no source":      func(c *Config) { c.HostapdCtrl = "" },
		"no runtime dir": func(c *Config) { c.RuntimeDir = "" },
		"no storage":     func(c *Config) { c.StorageDir = "" },
		"no faults":      func(c *Config) { c.Faults = nil },
		"no recorder":    func(c *Config) { c.Recorder = nil },
	} {
		c := base
		edit(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	w, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Errorf("first Run: %v", err)
	}
	if err := w.Run(ctx); err == nil {
		t.Error("second Run accepted")
	}
}

func TestCleanSSID(t *testing.T) {
	for in, want := range map[string]string{
		"Mairie-Wifi":             "Mairie-Wifi",
		"Médiathèque":             "Médiathèque",
		"bad\x00byte":             "bad",
		"\xff":                    "",
		strings.Repeat("é", 20):   strings.Repeat("é", 16),
		strings.Repeat("a", 40):   strings.Repeat("a", 32),
		"tab\tinside":             "tab",
		"Espace numérique \\x01a": "Espace numérique \\x01a",
	} {
		got := cleanSSID(in)
		if got != want {
			t.Errorf("cleanSSID(%q) = %q, want %q", in, got, want)
		}
		if err := (api.WiFi{Up: true, SSID: got, Clients: 0}).Validate(); err != nil {
			t.Errorf("%q: %v", got, err)
		}
	}
}
