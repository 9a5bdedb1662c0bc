// Package deb builds the Debian packages of Relais, relais-agent and relais-central, from programs
// already cross-compiled for the package's architecture. It lays out the package's tree (programs
// in /usr/bin, units in /lib/systemd/system, the example configuration as a conffile in
// /etc/relais, the udev rule of the GPIO chips, copyright and changelog in /usr/share/doc), writes
// the control files (control, conffiles, md5sums and the maintainer scripts of files/, which
// follow what dh_installsystemd generates), and leaves the archive itself to Debian's dpkg-deb.
// The result depends only on its inputs: every file time is the build date, every owner root.
package deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed files
var files embed.FS

// Names of the packages Build knows.
const (
	Agent   = "relais-agent"
	Central = "relais-central"
)

// supportedArches are the architectures a package may be built for: make deb builds
// relais-agent for arm64 and armhf, relais-central for amd64 and arm64; the tests build both for
// the machine they run on.
var supportedArches = []string{"amd64", "arm64", "armhf"}

// Programs are the programs each package installs, by their name in Build.Programs, with where
// they go.
var Programs = map[string]map[string]string{
	Agent: {
		"relais-agent":     "usr/bin/relais-agent",
		"relais-firstboot": "usr/libexec/relais-agent/relais-firstboot",
	},
	Central: {
		"relais-central": "usr/bin/relais-central",
	},
}

// Build describes one package to build.
type Build struct {
	Package    string            // Agent or Central
	Arch       string            // Debian architecture: amd64, arm64 or armhf
	Version    string            // Debian version, such as Version returns
	Describe   string            // the git description the version comes from, for the changelog
	Maintainer string            // "Name <address>"
	Date       time.Time         // the changelog's date and every file's time
	Programs   map[string]string // path of each of Programs[Package], built for Arch
	Repo       string            // root of the repository: systemd/ and configs/
	ModCache   string            // Go module cache, for the licenses of the modules in the programs
}

// layout is what a package holds beside its programs.
type layout struct {
	synopsis, description string
	depends, recommends   string
	suggests              string
	section               string
	files                 []installed
	conffiles             []string
	units                 []string
}

// installed is one file of the package: from the repository (repo) or from files/ (embedded).
type installed struct {
	repo, embedded, dst string
	mode                fs.FileMode
}

var layouts = map[string]layout{
	Agent: {
		synopsis: "Relais access point: driverless print queue, copy and scan button, status LED",
		description: `The agent of Relais, the self-hosted appliance of public digital-access
points, runs on the Raspberry Pi next to a site's printer and scanner. It
offers an IPP Everywhere print queue that PCs and phones print to without a
driver, a push button with which visitors make photocopies or leave scans
for the staff, a status LED, a local web page, and reports usage counts and
faults over MQTT to relais-central.
.
The package creates the relais-agent system user (in the gpio and scanner
groups), gives /dev/gpiochip* to the gpio group, and provides
relais-firstboot.service, which applies /boot/firmware/relais.toml.`,
		depends:    "passwd",
		recommends: "ipp-usb, sane-utils, sane-airscan",
		suggests:   "hostapd",
		section:    "net",
		files: []installed{
			{repo: "systemd/relais-agent.service", dst: "lib/systemd/system/relais-agent.service", mode: 0o644},
			{embedded: "relais-agent/relais-firstboot.service", dst: "lib/systemd/system/relais-firstboot.service", mode: 0o644},
			{embedded: "relais-agent/60-relais-gpio.rules", dst: "lib/udev/rules.d/60-relais-gpio.rules", mode: 0o644},
			{repo: "configs/agent.example.toml", dst: "etc/relais/agent.toml", mode: 0o644},
			{embedded: "relais-agent/lintian-overrides", dst: "usr/share/lintian/overrides/relais-agent", mode: 0o644},
		},
		conffiles: []string{"/etc/relais/agent.toml"},
		units:     []string{"relais-agent.service", "relais-firstboot.service"},
	},
	Central: {
		synopsis: "Relais fleet server: MQTT broker, ingest, dashboard and alerts",
		description: `The server of Relais, the self-hosted appliance of public digital-access
points. It receives what every relais-agent reports (usage counts and
faults, never a document or a name) through an embedded MQTT broker or an
external one, stores it in SQLite or PostgreSQL, and serves the dashboard
where technicians follow each site's health and managers compare usage,
with alerts by webhook and e-mail.
.
The package creates the relais-central system user.`,
		depends:  "passwd",
		suggests: "postgresql, mosquitto",
		section:  "net",
		files: []installed{
			{repo: "systemd/relais-central.service", dst: "lib/systemd/system/relais-central.service", mode: 0o644},
			{repo: "configs/central.example.toml", dst: "etc/relais/central.toml", mode: 0o644},
			{embedded: "relais-central/lintian-overrides", dst: "usr/share/lintian/overrides/relais-central", mode: 0o644},
		},
		conffiles: []string{"/etc/relais/central.toml"},
		units:     []string{"relais-central.service"},
	},
}

// Filename is the name of the package file: NAME_VERSION_ARCH.deb.
func (b *Build) Filename() string {
	return fmt.Sprintf("%s_%s_%s.deb", b.Package, b.Version, b.Arch)
}

func (b *Build) check() error {
	if _, ok := layouts[b.Package]; !ok {
		return fmt.Errorf("unknown package %q: want %s or %s", b.Package, Agent, Central)
	}
	if !slices.Contains(supportedArches, b.Arch) {
		return fmt.Errorf("%s: architecture %q, want one of %s", b.Package, b.Arch, strings.Join(supportedArches, ", "))
	}
	if err := CheckVersion(b.Version); err != nil {
		return err
	}
	if !strings.Contains(b.Maintainer, "<") || !strings.HasSuffix(b.Maintainer, ">") || strings.ContainsAny(b.Maintainer, "\n") {
		return fmt.Errorf("maintainer %q: want Name <address>", b.Maintainer)
	}
	if b.Date.IsZero() {
		return errors.New("no build date")
	}
	for name := range Programs[b.Package] {
		if b.Programs[name] == "" {
			return fmt.Errorf("%s: the path of %s is missing", b.Package, name)
		}
	}
	return nil
}

// Write builds the package into dir with dpkg-deb and returns its path.
func (b *Build) Write(ctx context.Context, dir string) (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "relais-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	if err := b.stage(root); err != nil {
		return "", fmt.Errorf("%s: %w", b.Package, err)
	}
	out := filepath.Join(dir, b.Filename())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(b.Date.Unix(), 10))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb --build %s: %v\n%s", b.Filename(), err, msg)
	}
	return out, nil
}

// stage writes the package's tree, DEBIAN/ included, in root.
func (b *Build) stage(root string) error {
	lay := layouts[b.Package]
	put := func(dst string, data []byte, mode fs.FileMode) error {
		p := filepath.Join(root, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
		return os.Chmod(p, mode) // whatever the umask
	}
	names := make([]string, 0, len(Programs[b.Package]))
	for name := range Programs[b.Package] {
		names = append(names, name)
	}
	slices.Sort(names)
	var programs [][]byte
	for _, name := range names {
		data, err := os.ReadFile(b.Programs[name])
		if err != nil {
			return err
		}
		if err := put(Programs[b.Package][name], data, 0o755); err != nil {
			return err
		}
		programs = append(programs, data)
	}
	for _, f := range lay.files {
		var data []byte
		var err error
		if f.repo != "" {
			data, err = os.ReadFile(filepath.Join(b.Repo, filepath.FromSlash(f.repo)))
		} else {
			data, err = files.ReadFile("files/" + f.embedded)
		}
		if err != nil {
			return err
		}
		if err := put(f.dst, data, f.mode); err != nil {
			return err
		}
	}
	doc := "usr/share/doc/" + b.Package + "/"
	copyright, err := b.copyright()
	if err != nil {
		return err
	}
	if err := put(doc+"copyright", copyright, 0o644); err != nil {
		return err
	}
	changelog, err := gzipped(b.changelog())
	if err != nil {
		return err
	}
	// A native package (its version has no Debian revision): changelog.gz, not changelog.Debian.gz.
	if err := put(doc+"changelog.gz", changelog, 0o644); err != nil {
		return err
	}

	// DEBIAN/: md5sums of every file but the conffiles (as dh_md5sums), then the rest.
	sums, size, err := md5sums(root, lay.conffiles)
	if err != nil {
		return err
	}
	if err := put("DEBIAN/md5sums", sums, 0o644); err != nil {
		return err
	}
	if err := put("DEBIAN/conffiles", []byte(strings.Join(lay.conffiles, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		data, err := files.ReadFile("files/" + b.Package + "/" + script)
		if err != nil {
			return err
		}
		if err := put("DEBIAN/"+script, data, 0o755); err != nil {
			return err
		}
	}
	if err := put("DEBIAN/control", []byte(b.control(lay, size)), 0o644); err != nil {
		return err
	}
	return setTimes(root, b.Date)
}

// control is the DEBIAN/control file; size is the installed size in bytes.
func (b *Build) control(lay layout, size int64) string {
	var c strings.Builder
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&c, "%s: %s\n", k, v)
		}
	}
	field("Package", b.Package)
	field("Version", b.Version)
	field("Architecture", b.Arch)
	field("Maintainer", b.Maintainer)
	field("Installed-Size", strconv.FormatInt((size+1023)/1024, 10))
	field("Depends", lay.depends)
	field("Recommends", lay.recommends)
	field("Suggests", lay.suggests)
	field("Section", lay.section)
	field("Priority", "optional")
	field("Homepage", "https://github.com/relais-fr/relais")
	c.WriteString("Description: " + lay.synopsis + "\n")
	for line := range strings.Lines(lay.description) {
		c.WriteString(" " + line)
	}
	c.WriteString("\n")
	return c.String()
}

// changelog is the Debian changelog of this build: one entry naming the git revision.
func (b *Build) changelog() []byte {
	return fmt.Appendf(nil, "%s (%s) bookworm; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n",
		b.Package, b.Version, b.Describe, b.Maintainer, b.Date.UTC().Format(time.RFC1123Z))
}

// gzipped compresses data as gzip -9n would: best compression, no name, no time.
func gzipped(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// md5sums lists every regular file under root but DEBIAN/ and the conffiles, sorted by path, and
// returns the installed size of every file (DEBIAN/ excluded).
func md5sums(root string, conffiles []string) ([]byte, int64, error) {
	var lines []string
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "DEBIAN" {
			return fs.SkipDir
		}
		if d.IsDir() {
			size += 4096
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		size += int64(len(data))
		if slices.Contains(conffiles, "/"+rel) {
			return nil
		}
		lines = append(lines, fmt.Sprintf("%x  %s\n", md5.Sum(data), rel))
		return nil
	})
	slices.Sort(lines)
	return []byte(strings.Join(lines, "")), size, err
}

// setTimes gives every file and directory under root the time t.
func setTimes(root string, t time.Time) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		return err
	}
	// Children first: setting a file's time does not change its directory's, but creating does.
	for _, p := range slices.Backward(paths) {
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return nil
}

// Units are the unit files a package installs, by path.
func Units(pkg string) []string {
	var out []string
	for _, u := range layouts[pkg].units {
		out = append(out, path.Join("/lib/systemd/system", u))
	}
	return out
}

// Conffiles are the configuration files a package installs, by path.
func Conffiles(pkg string) []string {
	return slices.Clone(layouts[pkg].conffiles)
}
