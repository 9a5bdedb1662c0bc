// Command relais-sim simulates what a Relais agent talks to, for the demo,
// tests and load: an IPP printer that can replay a real device's attributes
// and inject faults, an eSCL scanner with ADF pages, busy and jam, and a
// fleet of many simulated agents.
//
// Usage:
//
//	relais-sim printer [--attributes FILE.ipp] [--listen ADDR]
//	relais-sim scanner [--capabilities FILE.xml] [--listen ADDR]
//	relais-sim fleet   --agents N --rate R --broker URL
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

var simulators = []struct{ name, usage string }{
	{"printer", "an IPP Everywhere printer with scriptable faults"},
	{"scanner", "an eSCL scanner with ADF, busy and jam"},
	{"fleet", "many simulated agents speaking the real contract"},
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version":
		v := "devel"
		if bi, ok := debug.ReadBuildInfo(); ok {
			v = bi.Main.Version
		}
		fmt.Fprintln(stdout, "relais-sim", v)
		return 0
	}
	for _, s := range simulators {
		if s.name == args[0] {
			fmt.Fprintf(stderr, "relais-sim %s: not available in this version of relais-sim\n", s.name)
			return 1
		}
	}
	fmt.Fprintf(stderr, "relais-sim: unknown simulator %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: relais-sim SIMULATOR [flags]\n\nsimulators:")
	for _, s := range simulators {
		fmt.Fprintf(w, "  %-8s %s\n", s.name, s.usage)
	}
}
