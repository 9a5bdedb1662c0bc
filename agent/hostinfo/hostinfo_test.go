package hostinfo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/relais-fr/relais/central/api"
)

// pi is the tree of a healthy Raspberry Pi 4.
func pi() fstest.MapFS {
	return fstest.MapFS{
		"sys/class/thermal/thermal_zone0/type":                {Data: []byte("cpu-thermal\n")},
		"sys/class/thermal/thermal_zone0/temp":                {Data: []byte("48686\n")},
		"sys/devices/platform/soc/soc:firmware/get_throttled": {Data: []byte("0\n")},
		"proc/meminfo":                      {Data: []byte("MemTotal:        3884360 kB\nMemFree:          102400 kB\nMemAvailable:    2919340 kB\nBuffers:           86980 kB\n")},
		"proc/uptime":                       {Data: []byte("350735.47 1394933.96\n")},
		"proc/loadavg":                      {Data: []byte("0.42 0.31 0.25 1/203 12345\n")},
		"run/systemd/timesync/synchronized": {Data: nil},
	}
}

func TestReadPi(t *testing.T) {
	h, err := Read(pi(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h.CPUTempC == nil || *h.CPUTempC != 48.686 {
		t.Errorf("temp %v", h.CPUTempC)
	}
	if h.Throttled != nil || h.MemTotalBytes != 3884360*1024 || h.MemAvailableBytes != 2919340*1024 ||
		h.UptimeS != 350735 || h.Load1 != 0.42 || !h.ClockSynced {
		t.Errorf("host %+v", h)
	}
	if h.DiskTotalBytes <= 0 || h.DiskFreeBytes <= 0 || h.DiskFreeBytes > h.DiskTotalBytes {
		t.Errorf("disk %d/%d", h.DiskFreeBytes, h.DiskTotalBytes)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
}

func TestReadThermalZones(t *testing.T) {
	fsys := pi()
	delete(fsys, "sys/class/thermal/thermal_zone0/type")
	delete(fsys, "sys/class/thermal/thermal_zone0/temp")
	// A PC: the package sensor first, a broken zone, the preferred one last.
	fsys["sys/class/thermal/thermal_zone0/type"] = &fstest.MapFile{Data: []byte("acpitz\n")}
	fsys["sys/class/thermal/thermal_zone0/temp"] = &fstest.MapFile{Data: []byte("27800\n")}
	fsys["sys/class/thermal/thermal_zone1/type"] = &fstest.MapFile{Data: []byte("x86_pkg_temp\n")}
	fsys["sys/class/thermal/thermal_zone1/temp"] = &fstest.MapFile{Data: []byte("garbage\n")}
	h, err := Read(fsys, t.TempDir())
	if err != nil || h.CPUTempC == nil || *h.CPUTempC != 27.8 {
		t.Errorf("first readable zone: %v, %v", h.CPUTempC, err)
	}
	fsys["sys/class/thermal/thermal_zone2/type"] = &fstest.MapFile{Data: []byte("cpu-thermal\n")}
	fsys["sys/class/thermal/thermal_zone2/temp"] = &fstest.MapFile{Data: []byte("81234\n")}
	if h, _ := Read(fsys, t.TempDir()); h.CPUTempC == nil || *h.CPUTempC != 81.234 {
		t.Errorf("cpu-thermal preferred: %v", h.CPUTempC)
	}

	// Only broken zones: no temperature, and an error that says why.
	for name, temp := range map[string]string{"text": "hot\n", "empty": "", "absurd": "999999\n", "negative": "-273150\n"} {
		fsys := pi()
		fsys["sys/class/thermal/thermal_zone0/temp"] = &fstest.MapFile{Data: []byte(temp)}
		h, err := Read(fsys, t.TempDir())
		if h.CPUTempC != nil || err == nil || !strings.Contains(err.Error(), "thermal_zone0") {
			t.Errorf("%s: temp %v, err %v", name, h.CPUTempC, err)
		}
		if verr := h.Validate(); verr != nil {
			t.Errorf("%s: %v", name, verr)
		}
	}

	// No thermal zone at all (a container): left out, no error.
	fsys = pi()
	delete(fsys, "sys/class/thermal/thermal_zone0/type")
	delete(fsys, "sys/class/thermal/thermal_zone0/temp")
	if h, err := Read(fsys, t.TempDir()); err != nil || h.CPUTempC != nil {
		t.Errorf("no zone: %v, %v", h.CPUTempC, err)
	}
}

func TestReadThrottled(t *testing.T) {
	for raw, want := range map[string][]string{
		"0\n":       nil,
		"50005\n":   {"under-voltage", "throttled", "under-voltage-occurred", "throttled-occurred"},
		"0x80008\n": {"soft-temp-limit", "soft-temp-limit-occurred"},
		"0xE0000":   {"arm-frequency-capped-occurred", "throttled-occurred", "soft-temp-limit-occurred"},
		"f000f":     {"under-voltage", "arm-frequency-capped", "throttled", "soft-temp-limit", "under-voltage-occurred", "arm-frequency-capped-occurred", "throttled-occurred", "soft-temp-limit-occurred"},
		"fff0fff0":  nil, // unknown bits only
		"fffffff0":  {"under-voltage-occurred", "arm-frequency-capped-occurred", "throttled-occurred", "soft-temp-limit-occurred"},
	} {
		fsys := pi()
		fsys[ThrottledFile] = &fstest.MapFile{Data: []byte(raw)}
		h, err := Read(fsys, t.TempDir())
		if err != nil || !slices.Equal(h.Throttled, want) {
			t.Errorf("%q: %v, %v; want %v", raw, h.Throttled, err, want)
		}
		if err := h.Validate(); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
	for _, raw := range []string{"", "zz", "0x", "1ffffffff", "-1", strings.Repeat("0", maxFileBytes+1)} {
		fsys := pi()
		fsys[ThrottledFile] = &fstest.MapFile{Data: []byte(raw)}
		h, err := Read(fsys, t.TempDir())
		if err == nil || h.Throttled != nil {
			t.Errorf("%.20q: %v, %v", raw, h.Throttled, err)
		}
	}
	// A Pi 5's firmware node has another name.
	fsys := pi()
	delete(fsys, ThrottledFile)
	fsys["sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled"] = &fstest.MapFile{Data: []byte("10000\n")}
	if h, err := Read(fsys, t.TempDir()); err != nil || !slices.Equal(h.Throttled, []string{"under-voltage-occurred"}) {
		t.Errorf("Pi 5: %v, %v", h.Throttled, err)
	}
	// Not a Pi: nothing, no error.
	delete(fsys, "sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled")
	if h, err := Read(fsys, t.TempDir()); err != nil || h.Throttled != nil {
		t.Errorf("not a Pi: %v, %v", h.Throttled, err)
	}
}

func TestReadMalformedProc(t *testing.T) {
	for name, tc := range map[string]struct {
		file, data string
		check      func(api.Host) bool
	}{
		"meminfo empty":         {MeminfoFile, "", func(h api.Host) bool { return h.MemTotalBytes == 0 }},
		"meminfo no available":  {MeminfoFile, "MemTotal: 1000 kB\n", func(h api.Host) bool { return h.MemTotalBytes == 1024000 && h.MemAvailableBytes == 0 }},
		"meminfo text":          {MeminfoFile, "MemTotal: lots kB\nMemAvailable: 5 kB\n", func(h api.Host) bool { return h.MemTotalBytes == 0 }},
		"meminfo unit":          {MeminfoFile, "MemTotal: 1000 MB\nMemAvailable: 5 kB\n", func(h api.Host) bool { return h.MemTotalBytes == 0 }},
		"meminfo negative":      {MeminfoFile, "MemTotal: -1000 kB\nMemAvailable: 5 kB\n", func(h api.Host) bool { return h.MemTotalBytes == 0 }},
		"meminfo huge":          {MeminfoFile, "MemTotal: 99999999999999999999 kB\nMemAvailable: 5 kB\n", func(h api.Host) bool { return h.MemTotalBytes == 0 }},
		"uptime text":           {UptimeFile, "up since monday", func(h api.Host) bool { return h.UptimeS == 0 }},
		"uptime empty":          {UptimeFile, "\n", func(h api.Host) bool { return h.UptimeS == 0 }},
		"uptime negative":       {UptimeFile, "-5 3", func(h api.Host) bool { return h.UptimeS == 0 }},
		"uptime inf":            {UptimeFile, "+Inf 3", func(h api.Host) bool { return h.UptimeS == 0 }},
		"loadavg NaN":           {LoadavgFile, "NaN 0 0", func(h api.Host) bool { return h.Load1 == 0 }},
		"loadavg absurd":        {LoadavgFile, "1e9 0 0", func(h api.Host) bool { return h.Load1 == 0 }},
		"loadavg binary":        {LoadavgFile, "\x00\xff", func(h api.Host) bool { return h.Load1 == 0 }},
		"loadavg over the size": {LoadavgFile, strings.Repeat("1", maxFileBytes+1), func(h api.Host) bool { return h.Load1 == 0 }},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := pi()
			fsys[tc.file] = &fstest.MapFile{Data: []byte(tc.data)}
			h, err := Read(fsys, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("err = %v, want it to name %s", err, tc.file)
			}
			if !tc.check(h) {
				t.Errorf("host %+v", h)
			}
			if err := h.Validate(); err != nil {
				t.Error(err)
			}
			// The other parts are still read.
			if !h.ClockSynced || h.CPUTempC == nil {
				t.Errorf("other parts lost: %+v", h)
			}
		})
	}
	// MemAvailable above MemTotal (a kernel would not): bounded.
	fsys := pi()
	fsys[MeminfoFile] = &fstest.MapFile{Data: []byte("MemAvailable: 9000 kB\nMemTotal: 1000 kB\n")}
	if h, err := Read(fsys, t.TempDir()); err != nil || h.MemAvailableBytes != h.MemTotalBytes {
		t.Errorf("%+v, %v", h, err)
	}
	// Missing files are errors for /proc (Linux always has them).
	fsys = pi()
	delete(fsys, UptimeFile)
	if _, err := Read(fsys, t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no uptime: %v", err)
	}
}

func TestReadDiskAndClock(t *testing.T) {
	fsys := pi()
	if _, err := Read(fsys, "/nonexistent/relais"); err == nil || !strings.Contains(err.Error(), "statfs") {
		t.Errorf("missing storage dir: %v", err)
	}
	delete(fsys, TimesyncedFile)
	h, err := Read(fsys, t.TempDir())
	if err != nil || h.ClockSynced {
		t.Errorf("no timesyncd file: %v, %v", h.ClockSynced, err)
	}
	// The fallback (chrony, ntpd) is asked only when the file is absent.
	asked := 0
	ask := func(context.Context) (bool, error) { asked++; return true, nil }
	h, err = ReadWith(context.Background(), fsys, t.TempDir(), Options{ClockSynced: ask})
	if err != nil || !h.ClockSynced || asked != 1 {
		t.Errorf("fallback: %v, %v, asked %d", h.ClockSynced, err, asked)
	}
	h, err = ReadWith(context.Background(), pi(), t.TempDir(), Options{ClockSynced: ask})
	if err != nil || !h.ClockSynced || asked != 1 {
		t.Errorf("file present: %v, %v, asked %d", h.ClockSynced, err, asked)
	}
}

// TestReadThisMachine reads the real /proc, /sys and / of the machine the
// test runs on.
func TestReadThisMachine(t *testing.T) {
	h, err := ReadWith(context.Background(), os.DirFS("/"), "/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this machine: %+v (temp %v)", h, h.CPUTempC)
	if h.MemTotalBytes <= 0 || h.MemAvailableBytes <= 0 || h.UptimeS <= 0 || h.DiskTotalBytes <= 0 {
		t.Errorf("implausible: %+v", h)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
	if err := (api.Metrics{Host: &h}).Host.Validate(); err != nil {
		t.Error(err)
	}
}

// TestTimedatectl runs the real timedatectl: without a system D-Bus (a
// container, CI) it must fail with an error, not a wrong answer.
func TestTimedatectl(t *testing.T) {
	if _, err := exec.LookPath("timedatectl"); err != nil {
		t.Skip("timedatectl not installed (package systemd)")
	}
	synced, err := TimedatectlSynced(context.Background())
	t.Logf("timedatectl: synced %v, err %v", synced, err)
	if err != nil && synced {
		t.Error("synced with an error")
	}
	if err == nil {
		out, _ := exec.Command("timedatectl", "show", "--property=NTPSynchronized", "--value").Output()
		if want := strings.TrimSpace(string(out)) == "yes"; synced != want {
			t.Errorf("synced %v, timedatectl says %q", synced, out)
		}
	}
}

// FuzzRead checks that whatever the files hold, Read neither panics nor
// returns a host outside the contract.
func FuzzRead(f *testing.F) {
	p := pi()
	f.Add(string(p[MeminfoFile].Data), string(p[UptimeFile].Data), string(p[LoadavgFile].Data),
		string(p["sys/class/thermal/thermal_zone0/temp"].Data), "50005\n")
	f.Add("MemTotal: 1 kB\nMemAvailable: 99999999 kB\n", "1e300", "999", "150001", "0xffffffff")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, meminfo, up, load, temp, throttle string) {
		fsys := pi()
		fsys[MeminfoFile] = &fstest.MapFile{Data: []byte(meminfo)}
		fsys[UptimeFile] = &fstest.MapFile{Data: []byte(up)}
		fsys[LoadavgFile] = &fstest.MapFile{Data: []byte(load)}
		fsys["sys/class/thermal/thermal_zone0/temp"] = &fstest.MapFile{Data: []byte(temp)}
		fsys[ThrottledFile] = &fstest.MapFile{Data: []byte(throttle)}
		h, _ := Read(fsys, dir)
		if err := h.Validate(); err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
	})
}
