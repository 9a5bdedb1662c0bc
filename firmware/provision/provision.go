// Package provision turns the relais.toml that a technician writes on the FAT boot partition of a
// Relais SD card into the agent's configuration and, when the file has an [access_point] section,
// into the settings of a bridged Wi-Fi access point (hostapd and systemd-networkd). The agent part
// is checked with the agent's own loader before anything is written; a file that does not load is
// left in place with a report beside it, in French and English, naming each bad key and its line.
// Once applied, the file is removed from the boot partition so that no secret stays on a partition
// any computer can read.
package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/relais-fr/relais/configs"
)

// Section is the table of relais.toml that configures the access point; every other table is the
// agent's configuration.
const Section = "access_point"

// Paths are the files Apply reads and writes. Defaults gives those of a Relais SD card.
type Paths struct {
	Source     string // relais.toml on the boot partition
	Report     string // where a refused file is explained, beside Source
	Config     string // the agent's configuration
	Hostapd    string // hostapd's configuration, written when Source has an access point
	NetworkDir string // systemd-networkd's configuration directory, for the bridge
}

// Defaults are the paths on a Relais SD card.
func Defaults() Paths {
	return Paths{
		Source:     "/boot/firmware/relais.toml",
		Report:     "/boot/firmware/relais-erreur.txt",
		Config:     configs.DefaultAgentPath,
		Hostapd:    "/etc/hostapd/hostapd.conf",
		NetworkDir: "/etc/systemd/network",
	}
}

// Owner is who the written agent configuration belongs to: root and the agent's group, so that
// the agent reads it and nobody else does. A negative id leaves the file's owner as created.
type Owner struct {
	UID, GID int
}

// Result says what Apply did.
type Result struct {
	Site, Agent string       // the agent's identity from the applied configuration
	AccessPoint *AccessPoint // the access point written, nil when Source has none
}

// ErrNoSource is returned when there is no relais.toml to apply.
var ErrNoSource = errors.New("no relais.toml to apply")

// Apply reads p.Source, checks it, writes the agent's configuration (mode 0640, owned by owner)
// and the access point's files, then removes p.Source and any earlier report. When the file is
// refused, nothing else is written: the report explains why and Source stays for the technician
// to correct. Every file is written to a temporary name, synced and renamed.
func Apply(p Paths, owner Owner) (*Result, error) {
	src, err := readBounded(p.Source, configs.MaxFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSource
	}
	if err != nil {
		return nil, err
	}
	res, agentText, err := check(src, filepath.Base(p.Source))
	if err != nil {
		if rerr := writeFile(p.Report, []byte(report(err)), 0o644, Owner{-1, -1}); rerr != nil {
			return nil, fmt.Errorf("%w (and writing the report: %v)", err, rerr)
		}
		return nil, err
	}
	if err := writeFile(p.Config, agentText, 0o640, owner); err != nil {
		return nil, err
	}
	if ap := res.AccessPoint; ap != nil {
		if err := writeFile(p.Hostapd, []byte(ap.hostapdConf()), 0o600, Owner{-1, -1}); err != nil {
			return nil, err
		}
		for name, text := range ap.networkdFiles() {
			if err := writeFile(filepath.Join(p.NetworkDir, name), []byte(text), 0o644, Owner{-1, -1}); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range []string{p.Source, p.Report} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the configuration is applied but %s stays: %w", f, err)
		}
	}
	if err := syncDir(filepath.Dir(p.Source)); err != nil {
		return nil, err
	}
	return res, nil
}

// check splits src into the agent's configuration and the access point, and validates both.
// name is the file name errors refer to, with the line numbers of src.
func check(src []byte, name string) (*Result, []byte, error) {
	var whole map[string]any
	if _, err := toml.Decode(string(src), &whole); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	blanked, compact, err := stripSection(src)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	var rest map[string]any
	if _, err := toml.Decode(string(compact), &rest); err != nil {
		return nil, nil, fmt.Errorf("%s: without [%s]: %w", name, Section, err)
	}
	apRaw, hasAP := whole[Section]
	delete(whole, Section)
	if !reflect.DeepEqual(whole, rest) {
		return nil, nil, fmt.Errorf("%s: [%s] must be a table of its own, written as a [%s] header followed by its keys", name, Section, Section)
	}

	// The agent's loader reports errors with the base name of the file it reads and its lines:
	// it reads the blanked text, whose lines are those of src, under src's name.
	dir, err := os.MkdirTemp("", "relais-provision-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, name)
	if err := os.WriteFile(tmp, blanked, 0o600); err != nil {
		return nil, nil, err
	}
	cfg, err := configs.LoadAgent(tmp, configs.Overrides{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		return nil, nil, err
	}
	res := &Result{Site: cfg.Site.ID, Agent: cfg.Site.Agent}
	if hasAP {
		table, ok := apRaw.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s: %s must be a table", name, Section)
		}
		ap, err := parseAccessPoint(table)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: [%s] %w", name, Section, err)
		}
		res.AccessPoint = ap
	}
	return res, compact, nil
}

var (
	headerLine  = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.\-" ]+?)\s*\]\s*(#.*)?$`)
	arrayHeader = regexp.MustCompile(`^\s*\[\[`)
)

// stripSection removes the [access_point] table from src: blanked has its lines emptied (the
// other lines keep their numbers), compact has them removed. Whether the result means what src
// meant without the table is checked by the caller, which compares the decoded documents.
func stripSection(src []byte) (blanked, compact []byte, err error) {
	var b, c bytes.Buffer
	in := false
	found := 0
	for line := range strings.Lines(string(src)) {
		trimmed := strings.TrimSpace(line)
		if m := headerLine.FindStringSubmatch(trimmed); m != nil && !arrayHeader.MatchString(trimmed) {
			in = strings.Trim(m[1], `"`) == Section
			if in {
				found++
			}
		} else if arrayHeader.MatchString(trimmed) {
			in = false
		}
		if in {
			if strings.HasSuffix(line, "\n") {
				b.WriteString("\n")
			}
			continue
		}
		b.WriteString(line)
		c.WriteString(line)
	}
	if found > 1 {
		return nil, nil, fmt.Errorf("[%s] appears %d times", Section, found)
	}
	return b.Bytes(), c.Bytes(), nil
}

// report is the text left on the boot partition when relais.toml is refused, with CRLF line
// ends: the partition is read on Windows PCs.
func report(err error) string {
	text := "Relais : relais.toml n'a pas été appliqué. Corrigez-le puis redémarrez.\n" +
		"Relais: relais.toml was not applied. Correct it, then restart.\n\n" +
		err.Error() + "\n"
	return strings.ReplaceAll(text, "\n", "\r\n")
}

// readBounded reads path, failing when it is larger than limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// writeFile writes data to path through a synced temporary file renamed over it, with the given
// mode and owner, creating the parent directory (0755) when it is missing.
func writeFile(path string, data []byte, mode os.FileMode, owner Owner) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if owner.UID >= 0 || owner.GID >= 0 {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
