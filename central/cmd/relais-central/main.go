// Command relais-central receives the reports of Relais agents and serves
// the dashboard of technicians and managers.
//
// Usage:
//
//	relais-central [run] [--config FILE] [--set section.key=value ...]
//	relais-central demo
//	relais-central user add|passwd|list ...
//	relais-central agent add --site S --agent A
//	relais-central version
//
// The configuration is read from /etc/relais/central.toml when it exists,
// or from the file that --config or RELAIS_CONFIG names;
// RELAIS_<SECTION>_<KEY> variables and --set flags override its keys.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/relais-fr/relais/configs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type command struct {
	name, usage string
	run         func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"run", "run central (the default command)", run},
	{"demo", "run the whole system on this machine with simulated sites", demoCommand},
	{"user", "manage dashboard users: add, passwd, list", userCommand},
	{"agent", "register an agent and print its [mqtt] configuration", agentCommand},
	{"version", "print the version", printVersion},
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

var errUsage = errors.New("usage")

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stderr)
		return 0
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(args, stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "relais-central %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "relais-central: unknown command %q\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: relais-central [COMMAND] [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nrelais-central COMMAND -h shows the flags of a command.")
}

// configFlags adds --config and --set to fs and returns the function that
// loads the configuration they name once fs is parsed.
func configFlags(fs *flag.FlagSet) func() (*configs.Central, error) {
	path := os.Getenv("RELAIS_CONFIG")
	if path == "" {
		path = configs.DefaultCentralPath
	}
	fs.StringVar(&path, "config", path, "configuration `file`")
	var sets []string
	fs.Func("set", "override a key: `section.key=value` (repeatable)", func(s string) error {
		sets = append(sets, s)
		return nil
	})
	return func() (*configs.Central, error) {
		return configs.LoadCentral(path, configs.Overrides{Sets: sets})
	}
}

// parseFlags parses args into fs; a usage error becomes errUsage (the usage
// is printed by fs) and -h flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func printVersion(args []string, stdout, stderr io.Writer) error {
	fmt.Fprintln(stdout, "relais-central", buildVersion())
	return nil
}

// buildVersion is the version set at build time, else the one the Go
// toolchain recorded from the module or its VCS revision, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
