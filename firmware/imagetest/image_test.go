package imagetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// image returns the image RELAIS_IMAGE names, or skips the test.
func image(t *testing.T) string {
	t.Helper()
	p := os.Getenv("RELAIS_IMAGE")
	if p == "" {
		t.Skip("no image to check: `make image` builds one and checks it; RELAIS_IMAGE=PATH checks another")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("RELAIS_IMAGE: %v", err)
	}
	return p
}

// partition is one entry of sfdisk --json.
type partition struct {
	Node     string `json:"node"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	Bootable bool   `json:"bootable"`
}

type table struct {
	PartitionTable struct {
		Label      string      `json:"label"`
		SectorSize int64       `json:"sectorsize"`
		Partitions []partition `json:"partitions"`
	} `json:"partitiontable"`
}

// partitions reads the image's partition table with sfdisk and checks its layout: an MBR with a
// bootable FAT32 (LBA) partition then a Linux one, aligned on MiB.
func partitions(t *testing.T, img string) (boot, root partition, sector int64) {
	t.Helper()
	sfdisk := peertest.Program(t, "sfdisk", "fdisk")
	out, err := exec.Command(sfdisk, "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	var tab table
	if err := json.Unmarshal(out, &tab); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	pt := tab.PartitionTable
	sector = pt.SectorSize
	if sector == 0 {
		sector = 512
	}
	if pt.Label != "dos" || len(pt.Partitions) != 2 {
		t.Fatalf("partition table %s with %d partitions, want dos (MBR, which every Raspberry Pi boots) with 2:\n%s",
			pt.Label, len(pt.Partitions), out)
	}
	boot, root = pt.Partitions[0], pt.Partitions[1]
	if boot.Type != "c" || !boot.Bootable {
		t.Errorf("partition 1: type %s, bootable %v; want c (FAT32 LBA), bootable", boot.Type, boot.Bootable)
	}
	if root.Type != "83" {
		t.Errorf("partition 2: type %s, want 83 (Linux)", root.Type)
	}
	mib := 1 << 20 / sector
	for i, p := range pt.Partitions {
		if p.Start%mib != 0 {
			t.Errorf("partition %d starts at sector %d, not on a MiB boundary", i+1, p.Start)
		}
	}
	if root.Start < boot.Start+boot.Size {
		t.Errorf("partition 2 (start %d) overlaps partition 1 (%d+%d)", root.Start, boot.Start, boot.Size)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if end := (root.Start + root.Size) * sector; end > fi.Size() {
		t.Errorf("partition 2 ends at byte %d, beyond the image (%d bytes)", end, fi.Size())
	}
	return boot, root, sector
}

// fatDrive is the mtools drive of the image's FAT partition.
func fatDrive(img string, boot partition, sector int64) string {
	return fmt.Sprintf("%s@@%d", img, boot.Start*sector)
}

func mtype(t *testing.T, drive, name string) string {
	t.Helper()
	out, err := exec.Command(peertest.Program(t, "mtype", "mtools"), "-i", drive, "::/"+name).Output()
	if err != nil {
		t.Fatalf("mtype ::/%s: %v", name, err)
	}
	return string(out)
}

// fatFiles lists the names in the FAT partition's root directory.
func fatFiles(t *testing.T, drive string) []string {
	t.Helper()
	out, err := exec.Command(peertest.Program(t, "mdir", "mtools"), "-b", "-i", drive, "::/").Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		names = append(names, strings.TrimPrefix(strings.TrimSpace(line), "::/"))
	}
	return names
}

// extfs reads the root file system with debugfs, from a copy of the partition.
type extfs struct {
	t       *testing.T
	debugfs string
	file    string
}

func rootFS(t *testing.T, img string, root partition, sector int64) *extfs {
	t.Helper()
	debugfs := peertest.Program(t, "debugfs", "e2fsprogs")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	part := filepath.Join(t.TempDir(), "root.ext4")
	out, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(f, root.Start*sector, root.Size*sector)); err != nil {
		t.Fatalf("copying the root partition: %v", err)
	}
	return &extfs{t: t, debugfs: debugfs, file: part}
}

func (e *extfs) run(request string) string {
	e.t.Helper()
	out, err := exec.Command(e.debugfs, "-R", request, e.file).CombinedOutput()
	if err != nil {
		e.t.Fatalf("debugfs -R %q: %v\n%s", request, err, out)
	}
	// debugfs prints its version banner on stderr first.
	return strings.TrimPrefix(string(out), firstLine(string(out)))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 && strings.HasPrefix(s, "debugfs ") {
		return s[:i+1]
	}
	return ""
}

var (
	statType = regexp.MustCompile(`Type: (\w+)\s+Mode:\s+([0-7]+)`)
	statLink = regexp.MustCompile(`Fast link dest: "([^"]*)"`)
)

// stat returns the file type and mode of path, or "" when it does not exist.
func (e *extfs) stat(path string) (typ string, mode int64) {
	out := e.run("stat " + path)
	m := statType.FindStringSubmatch(out)
	if m == nil {
		return "", 0
	}
	mode, _ = strconv.ParseInt(m[2], 8, 64)
	return m[1], mode
}

func (e *extfs) link(path string) string {
	m := statLink.FindStringSubmatch(e.run("stat " + path))
	if m == nil {
		return ""
	}
	return m[1]
}

func (e *extfs) cat(path string) string {
	return e.run("cat " + path)
}

func TestImage(t *testing.T) {
	img := image(t)
	boot, root, sector := partitions(t, img)
	t.Logf("%s: FAT %d MiB at sector %d, root %d MiB at sector %d", img,
		boot.Size*sector>>20, boot.Start, root.Size*sector>>20, root.Start)

	t.Run("boot", func(t *testing.T) {
		drive := fatDrive(img, boot, sector)
		names := fatFiles(t, drive)
		for _, want := range []string{"config.txt", "cmdline.txt", "bootcode.bin", "start4.elf", "fixup4.dat",
			"bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2711-rpi-4-b.dtb", "bcm2837-rpi-zero-2-w.dtb"} {
			if !slices.Contains(names, want) {
				t.Errorf("boot partition lacks %s; it has %q", want, names)
			}
		}
		config := mtype(t, drive, "config.txt")
		kernel, initrd := confValue(config, "kernel"), confValue(config, "initramfs")
		for _, f := range []string{kernel, initrd} {
			if f == "" || !slices.Contains(names, f) {
				t.Errorf("config.txt names %q, which the boot partition lacks\n%s", f, config)
			}
		}
		for _, want := range []string{"arm_64bit=1", "gpio=17=op,dl", "gpio=27=ip,pu", "dtparam=watchdog=on"} {
			if !strings.Contains(config, want+"\n") {
				t.Errorf("config.txt lacks %s:\n%s", want, config)
			}
		}
		cmdline := mtype(t, drive, "cmdline.txt")
		if !strings.Contains(cmdline, "root=LABEL=RASPIROOT") {
			t.Errorf("cmdline.txt: %q, want root=LABEL=RASPIROOT", cmdline)
		}
		if slices.Contains(names, "relais.toml") {
			t.Errorf("the image carries a relais.toml: each card's is written by its technician")
		}
	})

	t.Run("root", func(t *testing.T) {
		fs := rootFS(t, img, root, sector)
		files := map[string]int64{
			"/usr/bin/relais-agent":                        0o755,
			"/usr/libexec/relais-agent/relais-firstboot":   0o755,
			"/lib/systemd/system/relais-agent.service":     0o644,
			"/lib/systemd/system/relais-firstboot.service": 0o644,
			"/lib/udev/rules.d/60-relais-gpio.rules":       0o644,
			"/etc/relais/agent.toml":                       0o644,
			"/usr/sbin/hostapd":                            0o755,
			"/usr/sbin/ipp-usb":                            0o755,
			"/usr/bin/scanimage":                           0o755,
			"/usr/sbin/sshd":                               0o755,
			"/lib/systemd/systemd-timesyncd":               0o755,
			"/etc/sane.d/airscan.conf":                     0o644,
			"/usr/libexec/relais-growroot":                 0o755,
		}
		for path, mode := range files {
			typ, got := fs.stat(path)
			if typ != "regular" || got != mode {
				t.Errorf("%s: %s %o, want a regular file %o", path, typ, got, mode)
			}
		}
		links := map[string]string{
			"/etc/systemd/system/multi-user.target.wants/relais-agent.service":     "/lib/systemd/system/relais-agent.service",
			"/etc/systemd/system/multi-user.target.wants/relais-firstboot.service": "/lib/systemd/system/relais-firstboot.service",
			"/etc/systemd/system/multi-user.target.wants/ssh.service":              "/lib/systemd/system/ssh.service",
			"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service": "/lib/systemd/system/systemd-networkd.service",
			"/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service":   "/lib/systemd/system/systemd-timesyncd.service",
			"/etc/systemd/system/multi-user.target.wants/relais-growroot.service":  "/etc/systemd/system/relais-growroot.service",
		}
		for path, want := range links {
			if got := fs.link(path); got != want {
				t.Errorf("%s -> %q, want -> %s (the unit enabled)", path, got, want)
			}
		}
		watchdog := fs.cat("/etc/systemd/system.conf.d/relais-watchdog.conf")
		if !regexp.MustCompile(`(?m)^RuntimeWatchdogSec=\d+s$`).MatchString(watchdog) {
			t.Errorf("watchdog configuration:\n%s", watchdog)
		}
		fstab := fs.cat("/etc/fstab")
		for _, want := range []string{"LABEL=RASPIROOT", "LABEL=RASPIFIRM  /boot/firmware"} {
			if !strings.Contains(fstab, want) {
				t.Errorf("/etc/fstab lacks %q:\n%s", want, fstab)
			}
		}
		if !regexp.MustCompile(`(?m)^relais-agent:x:\d+:\d+:`).MatchString(fs.cat("/etc/passwd")) {
			t.Errorf("/etc/passwd has no relais-agent user")
		}
		if !regexp.MustCompile(`(?m)^gpio:x:\d+:(\S+,)?relais-agent(,\S+)?$`).MatchString(fs.cat("/etc/group")) {
			t.Errorf("relais-agent is not in the gpio group:\n%s", fs.cat("/etc/group"))
		}
		if keys := fs.run("ls /etc/ssh"); strings.Contains(keys, "ssh_host_") {
			t.Errorf("the image has SSH host keys: every card would share them\n%s", keys)
		}
		if id := strings.TrimSpace(fs.cat("/etc/machine-id")); id != "" && id != "uninitialized" {
			t.Errorf("/etc/machine-id is %q: every card would share it", id)
		}
	})
}

// confValue is the first word of the value of key in a config.txt, "" when absent. Most
// settings are key=value; initramfs is "initramfs FILE followkernel".
func confValue(config, key string) string {
	for line := range strings.Lines(config) {
		line = strings.TrimSpace(line)
		for _, sep := range []string{"=", " "} {
			if v, ok := strings.CutPrefix(line, key+sep); ok {
				if f := strings.Fields(v); len(f) > 0 {
					return f[0]
				}
			}
		}
	}
	return ""
}

// bootConfig is the relais.toml the boot test writes on the boot partition: the simulated panel,
// since QEMU's virt machine has no GPIO, and no printer.
const bootConfig = `[site]
id = "qemu"
agent = "image-test"
name = "Relais image test"

[printer]
uri = ""

[panel]
simulate = true
`

func TestBoot(t *testing.T) {
	img := image(t)
	if os.Getenv("RELAIS_IMAGE_BOOT") != "1" {
		t.Skip("booting the image takes minutes: make image-test (RELAIS_IMAGE_BOOT=1) runs it")
	}
	qemu := peertest.Program(t, "qemu-system-aarch64", "qemu-system-arm")
	mcopy := peertest.Program(t, "mcopy", "mtools")
	boot, _, sector := partitions(t, img)
	dir := t.TempDir()

	// A copy of the image (sparse) that the boot may change, with relais.toml on its FAT.
	disk := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	drive := fatDrive(disk, boot, sector)
	src := filepath.Join(dir, "relais.toml")
	if err := os.WriteFile(src, []byte(bootConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	config := mtype(t, drive, "config.txt")
	kernel, initrd := confValue(config, "kernel"), strings.Fields(confValue(config, "initramfs") + " ")[0]
	for _, f := range []string{kernel, initrd} {
		if out, err := exec.Command(mcopy, "-i", drive, "::/"+f, filepath.Join(dir, f)).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v\n%s", f, err, out)
		}
	}
	if out, err := exec.Command(mcopy, "-i", drive, src, "::/relais.toml").CombinedOutput(); err != nil {
		t.Fatalf("mcopy relais.toml: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024",
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", filepath.Join(dir, kernel), "-initrd", filepath.Join(dir, initrd),
		"-append", "root=LABEL=RASPIROOT rw console=ttyAMA0 systemd.journald.forward_to_console=1 systemd.log_color=0",
		"-drive", "if=none,id=disk,format=raw,file="+disk,
		"-device", "virtio-blk-pci,drive=disk",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = nil
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()

	// The console, line by line, until the agent says it started.
	found := make(chan []string, 1)
	go func() {
		var seen []string
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			fmt.Fprintln(console, line)
			if strings.Contains(line, "relais-firstboot") || strings.Contains(line, "relais-agent") {
				seen = append(seen, line)
			}
			if strings.Contains(line, "relais-agent started") {
				found <- seen
				return
			}
		}
		found <- nil
	}()
	start := time.Now()
	select {
	case seen := <-found:
		if seen == nil {
			t.Fatalf("QEMU stopped before relais-agent started; console in %s:\n%s", console.Name(), tail(console.Name(), 60))
		}
		t.Logf("relais-agent started %s after QEMU did; the console's Relais lines:", time.Since(start).Round(time.Second))
		for _, l := range seen {
			t.Log(l)
		}
		// relais-firstboot synced its removal of relais.toml before the agent started.
		cmd.Process.Kill()
		cmd.Wait()
		if names := fatFiles(t, drive); slices.Contains(names, "relais.toml") {
			t.Errorf("relais.toml is still on the boot partition after the first boot: %q", names)
		}
	case <-ctx.Done():
		t.Fatalf("no \"relais-agent started\" on the console within the limit; its end:\n%s", tail(console.Name(), 60))
	}
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
