// Package hostinfo reads the health of the agent's computer for the metrics
// (api.Host) and turns it into faults. Read takes the files below a root
// (os.DirFS("/") in the agent, a fixture tree in tests): the CPU
// temperature from /sys/class/thermal (the zone of type cpu-thermal, the
// Raspberry Pi's, preferred), the Raspberry Pi firmware's throttling bits
// from get_throttled, memory from /proc/meminfo, uptime and load from
// /proc/uptime and /proc/loadavg, and clock synchronisation from the file
// /run/systemd/timesync/synchronized that systemd-timesyncd creates once it
// has synchronised the clock (adjtimex cannot be used under ProtectClock=).
// With chrony or ntpd instead of timesyncd there is no such file: set
// Options.ClockSynced to TimedatectlSynced, which asks systemd-timedated
// (outside the sandbox, reading the kernel's NTP status that any daemon
// sets). Disk space comes from statfs(2) on the storage directory. Check
// raises and clears the host faults (disk-full, disk-low, under-voltage,
// under-voltage-occurred, cpu-hot, clock-unsynced), each once.
package hostinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relais-fr/relais/central/api"
)

// Files read under the root.
const (
	ThermalGlob    = "sys/class/thermal/thermal_zone*"
	ThrottledFile  = "sys/devices/platform/soc/soc:firmware/get_throttled"
	ThrottledGlob  = "sys/devices/platform/*/*:firmware/get_throttled" // other SoC node names (Pi 5)
	MeminfoFile    = "proc/meminfo"
	UptimeFile     = "proc/uptime"
	LoadavgFile    = "proc/loadavg"
	TimesyncedFile = "run/systemd/timesync/synchronized"
)

// Bounds of what is read.
const (
	maxFileBytes = 64 << 10 // /proc/meminfo is about 1.5 KiB
	maxZones     = 64
)

// Throttling flags of the Raspberry Pi firmware (vcgencmd get_throttled),
// by bit.
var throttleBits = []struct {
	bit  uint
	name string
}{
	{0, "under-voltage"},
	{1, "arm-frequency-capped"},
	{2, "throttled"},
	{3, "soft-temp-limit"},
	{16, "under-voltage-occurred"},
	{17, "arm-frequency-capped-occurred"},
	{18, "throttled-occurred"},
	{19, "soft-temp-limit-occurred"},
}

// Options tune Read; the zero value reads files only.
type Options struct {
	// ClockSynced is asked when the timesyncd file is absent, such as
	// TimedatectlSynced on a Pi that runs chrony or ntpd.
	ClockSynced func(ctx context.Context) (bool, error)
}

// Read reads the host's health: files under root, statfs of storageDir.
// Parts that a machine may lack (thermal zones, the Pi firmware's
// throttling file, the timesyncd file) are left out without error; a part
// that cannot be read or parsed is left at its zero value and reported in
// the error, which joins every problem. The result satisfies the
// contract's bounds whatever the files hold.
func Read(root fs.FS, storageDir string) (api.Host, error) {
	return ReadWith(context.Background(), root, storageDir, Options{})
}

// ReadWith is Read with options.
func ReadWith(ctx context.Context, root fs.FS, storageDir string, opts Options) (api.Host, error) {
	var h api.Host
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	h.CPUTempC, err = cpuTemp(root)
	add(err)
	h.Throttled, err = throttled(root)
	add(err)
	h.DiskFreeBytes, h.DiskTotalBytes, err = disk(storageDir)
	add(err)
	h.MemAvailableBytes, h.MemTotalBytes, err = memory(root)
	add(err)
	h.UptimeS, err = uptime(root)
	add(err)
	h.Load1, err = load1(root)
	add(err)
	h.ClockSynced, err = clockSynced(ctx, root, opts.ClockSynced)
	add(err)
	return h, errors.Join(errs...)
}

// readSmall reads a file of at most maxFileBytes.
func readSmall(root fs.FS, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileBytes)
	}
	return b, nil
}

// cpuTemp reads the thermal zone of type cpu-thermal (or cpu_thermal), else
// the first zone with a readable temperature. No zone: nil, no error.
func cpuTemp(root fs.FS) (*float64, error) {
	zones, err := fs.Glob(root, ThermalGlob)
	if err != nil || len(zones) == 0 {
		return nil, nil
	}
	if len(zones) > maxZones {
		zones = zones[:maxZones]
	}
	var first *float64
	var errs []error
	for _, z := range zones {
		b, err := readSmall(root, path.Join(z, "temp"))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		c := float64(milli) / 1000
		if err != nil || c < -50 || c > 150 {
			errs = append(errs, fmt.Errorf("%s/temp: not a temperature: %.20q", z, b))
			continue
		}
		typ, _ := readSmall(root, path.Join(z, "type"))
		switch strings.TrimSpace(string(typ)) {
		case "cpu-thermal", "cpu_thermal":
			return &c, nil
		}
		if first == nil {
			first = &c
		}
	}
	if first != nil {
		return first, nil
	}
	return nil, errors.Join(errs...)
}

// throttled decodes the Raspberry Pi firmware's get_throttled bit field
// ("50005" or "0x50005"). No file (not a Pi): nil, no error.
func throttled(root fs.FS) ([]string, error) {
	b, err := readSmall(root, ThrottledFile)
	if errors.Is(err, fs.ErrNotExist) {
		others, _ := fs.Glob(root, ThrottledGlob)
		if len(others) == 0 {
			return nil, nil
		}
		b, err = readSmall(root, others[0])
	}
	if err != nil {
		return nil, err
	}
	s := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(string(b))), "0x")
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("get_throttled: not a hexadecimal bit field: %.20q", b)
	}
	return DecodeThrottled(uint32(v)), nil
}

// DecodeThrottled names the set bits of a get_throttled value; unknown
// bits are ignored.
func DecodeThrottled(v uint32) []string {
	var flags []string
	for _, b := range throttleBits {
		if v&(1<<b.bit) != 0 {
			flags = append(flags, b.name)
		}
	}
	return flags
}

// disk returns the space available to the agent (not root's reserve) and
// the size of the file system holding dir.
func disk(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := int64(st.Frsize)
	if bs <= 0 {
		bs = int64(st.Bsize)
	}
	total = clampMul(st.Blocks, bs)
	free = min(clampMul(st.Bavail, bs), total)
	return free, total, nil
}

// clampMul multiplies a block count by a block size within the contract's
// bound of byte counts (2^50).
func clampMul(blocks uint64, size int64) int64 {
	const limit = 1 << 50
	if size <= 0 || blocks > limit/uint64(size) {
		if size <= 0 {
			return 0
		}
		return limit
	}
	return int64(blocks) * size
}

// memory reads MemAvailable and MemTotal (kB) from /proc/meminfo.
func memory(root fs.FS) (avail, total int64, err error) {
	b, err := readSmall(root, MeminfoFile)
	if err != nil {
		return 0, 0, err
	}
	get := func(key string) (int64, error) {
		for line := range bytes.Lines(b) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok || string(k) != key {
				continue
			}
			f := strings.Fields(string(v))
			if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || kb < 0 || kb > 1<<40 {
				break
			}
			return kb * 1024, nil
		}
		return 0, fmt.Errorf("%s: no valid %s", MeminfoFile, key)
	}
	total, err = get("MemTotal")
	if err != nil {
		return 0, 0, err
	}
	avail, err = get("MemAvailable")
	if err != nil {
		return 0, total, err
	}
	return min(avail, total), total, nil
}

// firstFloat parses the first field of a file as a non-negative number no
// larger than limit.
func firstFloat(root fs.FS, name string, limit float64) (float64, error) {
	b, err := readSmall(root, name)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", name)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > limit {
		return 0, fmt.Errorf("%s: not a number in range: %.20q", name, f[0])
	}
	return v, nil
}

func uptime(root fs.FS) (int64, error) {
	v, err := firstFloat(root, UptimeFile, 1<<40)
	return int64(v), err
}

func load1(root fs.FS) (float64, error) {
	return firstFloat(root, LoadavgFile, 1000)
}

// clockSynced reports whether timesyncd's file exists, else asks ask.
func clockSynced(ctx context.Context, root fs.FS, ask func(context.Context) (bool, error)) (bool, error) {
	_, err := fs.Stat(root, TimesyncedFile)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	case ask == nil:
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return ask(ctx)
}

// TimedatectlSynced runs `timedatectl show --property=NTPSynchronized
// --value`: systemd-timedated reads the kernel's NTP status, which chrony,
// ntpd and timesyncd all set. It needs the system D-Bus.
func TimedatectlSynced(ctx context.Context) (bool, error) {
	out, err := exec.CommandContext(ctx, "timedatectl", "show", "--property=NTPSynchronized", "--value").Output()
	if err != nil {
		return false, fmt.Errorf("timedatectl: %w", err)
	}
	switch strings.TrimSpace(string(out)) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("timedatectl: unexpected answer %.20q", out)
}
