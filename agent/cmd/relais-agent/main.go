// Command relais-agent runs a Relais access point on a Raspberry Pi: the
// print queue, the button and LED, the scanner, the Wi-Fi watch and the
// reports to relais-central.
//
// Usage:
//
//	relais-agent run     [--config FILE] [--set section.key=value ...]
//	relais-agent check   [--config FILE] [--set section.key=value ...]
//	relais-agent ctl     [--config FILE] [--json] COMMAND [ARG ...]
//	relais-agent version
//
// The configuration is read from /etc/relais/agent.toml unless --config or
// RELAIS_CONFIG names another file; RELAIS_<SECTION>_<KEY> variables and
// --set flags override its keys.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type command struct {
	name, usage string
	run         func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"run", "run the agent (as systemd does)", runAgent},
	{"check", "check the configuration and every device it names", check},
	{"ctl", "talk to the running agent: status, press, led, queue, release, cancel", ctlCmd},
	{"version", "print the version", printVersion},
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			case errors.Is(err, errSilent):
				return 1
			}
			fmt.Fprintf(stderr, "relais-agent %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "relais-agent: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

var (
	errUsage  = errors.New("usage")
	errSilent = errors.New("failed; already reported")
)

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: relais-agent COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nrelais-agent COMMAND -h shows the flags of a command.")
}

// configFlags are the flags of every command that reads the configuration.
type configFlags struct {
	path string
	sets []string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("RELAIS_CONFIG")
	if def == "" {
		def = "/etc/relais/agent.toml"
	}
	fs.StringVar(&c.path, "config", def, "configuration `file`")
	fs.Func("set", "override a key: `section.key=value` (repeatable)", func(s string) error {
		c.sets = append(c.sets, s)
		return nil
	})
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("relais-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func printVersion(args []string, stdout, stderr io.Writer) error {
	fmt.Fprintln(stdout, "relais-agent", buildVersion())
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
