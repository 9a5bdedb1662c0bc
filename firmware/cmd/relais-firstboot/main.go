// Command relais-firstboot applies the relais.toml that a technician wrote on the boot partition
// of a Relais SD card: it becomes /etc/relais/agent.toml (mode 0640, group relais-agent) and, with
// an [access_point] section, hostapd's and systemd-networkd's configuration of a bridged Wi-Fi
// access point; then the file is removed from the boot partition. A file that does not load is
// left there with relais-erreur.txt beside it. relais-firstboot.service runs it at boot, before
// the network, hostapd and relais-agent start; see firmware/README.md.
//
// Usage:
//
//	relais-firstboot [--source /boot/firmware/relais.toml]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/relais-fr/relais/firmware/provision"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	paths := provision.Defaults()
	fs := flag.NewFlagSet("relais-firstboot", flag.ContinueOnError)
	fs.StringVar(&paths.Source, "source", paths.Source, "the `file` to apply")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "relais-firstboot: no arguments expected")
		return 2
	}
	paths.Report = filepath.Join(filepath.Dir(paths.Source), filepath.Base(provision.Defaults().Report))

	owner := provision.Owner{UID: 0, GID: -1}
	if g, err := user.LookupGroup("relais-agent"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			owner.GID = gid
		}
	}
	if owner.GID < 0 {
		fmt.Fprintln(os.Stderr, "relais-firstboot: no relais-agent group: is the relais-agent package installed?")
		return 1
	}
	res, err := provision.Apply(paths, owner)
	switch {
	case errors.Is(err, provision.ErrNoSource):
		fmt.Printf("relais-firstboot: %s: nothing to apply\n", paths.Source)
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "relais-firstboot: %s not applied (see %s):\n%v\n", paths.Source, paths.Report, err)
		return 1
	}
	fmt.Printf("relais-firstboot: %s applied to %s: site %s, agent %s\n", paths.Source, paths.Config, res.Site, res.Agent)
	if ap := res.AccessPoint; ap != nil {
		fmt.Printf("relais-firstboot: Wi-Fi access point %q on %s bridged with %s (%s)\n", ap.SSID, ap.Interface, ap.Bridge, paths.Hostapd)
	}
	return 0
}
