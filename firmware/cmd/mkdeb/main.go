// Command mkdeb builds one Debian package of Relais with dpkg-deb, from programs already built
// for the package's architecture; `make deb` runs it for each package and architecture.
//
// Usage:
//
//	mkdeb --package relais-agent --arch arm64 --describe "$(git describe --tags --always --dirty)" \
//	      --commits N --date UNIXTIME --maintainer "Name <address>" --bin DIR --out dist
//
// DIR holds the package's programs (relais-agent and relais-firstboot, or relais-central). The
// Debian version comes from --describe (see firmware/deb.Version); --date is the changelog's date
// and every file's time, the commit time of HEAD for a reproducible package.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/relais-fr/relais/firmware/deb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		b       deb.Build
		commits int
		date    int64
		bin     string
		out     string
	)
	flag.StringVar(&b.Package, "package", "", "package: relais-agent or relais-central")
	flag.StringVar(&b.Arch, "arch", "", "Debian architecture")
	flag.StringVar(&b.Describe, "describe", "", "output of git describe --tags --always --dirty")
	flag.IntVar(&commits, "commits", 0, "git rev-list --count HEAD (used when no tag exists)")
	flag.Int64Var(&date, "date", 0, "build date, in seconds since 1970 (SOURCE_DATE_EPOCH)")
	flag.StringVar(&b.Maintainer, "maintainer", "", "Maintainer field: Name <address>")
	flag.StringVar(&bin, "bin", "", "`directory` of the programs built for the architecture")
	flag.StringVar(&b.Repo, "repo", ".", "root of the repository")
	flag.StringVar(&out, "out", "dist", "output `directory`")
	flag.Parse()
	if flag.NArg() != 0 || b.Package == "" || b.Arch == "" || bin == "" || date <= 0 {
		flag.Usage()
		return fmt.Errorf("--package, --arch, --bin and --date are required")
	}
	v, err := deb.Version(b.Describe, commits)
	if err != nil {
		return err
	}
	b.Version = v
	b.Date = time.Unix(date, 0).UTC()
	b.Programs = map[string]string{}
	for name := range deb.Programs[b.Package] {
		b.Programs[name] = filepath.Join(bin, name)
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	b.ModCache = strings.TrimSpace(string(modcache))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	path, err := b.Write(ctx, out)
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
