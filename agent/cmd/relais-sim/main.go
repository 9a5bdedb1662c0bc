// Command relais-sim simulates what a Relais agent talks to, for the demo,
// tests and load: an IPP printer that can replay a real device's attributes
// and inject faults, an eSCL scanner with ADF pages, busy and jam, and a
// fleet of many simulated agents.
//
// Usage:
//
//	relais-sim printer [--listen ADDR] [--attributes FILE.ipp] [--control ADDR] [--name NAME] [--keep DIR]
//	relais-sim scanner [--listen ADDR] [--capabilities FILE.xml] [--control ADDR] [--adf N]
//	relais-sim fleet   --agents N --rate R --broker URL
//
// The printer logs the URI it serves (uri=ipp://...) and its control
// address (control=http://...) on standard error, and runs until
// interrupted. Its faults are set at run time through the control
// address; see relais-sim printer --help. The scanner likewise logs its
// eSCL root (url=http://.../eSCL) and its control address; see relais-sim
// scanner --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/relais-fr/relais/agent/sim/printer"
	"github.com/relais-fr/relais/agent/sim/scanner"
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
	case "printer":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runPrinter(ctx, args[1:], stdout, stderr)
	case "scanner":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runScanner(ctx, args[1:], stdout, stderr)
	case "fleet":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runFleet(ctx, args[1:], stdout, stderr)
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

// runPrinter runs the printer simulator until ctx ends, and returns the
// exit status.
func runPrinter(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relais-sim printer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8631", "serve IPP on `ADDR` (host:port; port 0 picks one)")
	attributes := fs.String("attributes", "", "replay the printer attributes of a real device's raw Get-Printer-Attributes response `FILE.ipp`")
	control := fs.String("control", "127.0.0.1:8632", "serve the control endpoint on the loopback `ADDR` (empty: none)")
	name := fs.String("name", "", "printer-name (default: the replayed device's, or \"Relais Sim\")")
	keep := fs.String("keep", "", "keep each document received in `DIR` (default: discard)")
	maxDoc := fs.Int64("max-document", printer.DefaultMaxDocumentBytes, "refuse documents larger than `BYTES`")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintln(out, "usage: relais-sim printer [flags]\n\nA simulated IPP Everywhere printer, at ipp://ADDR/ipp/print, with faults set at run time.\n\nflags:")
		fs.PrintDefaults()
		fmt.Fprint(out, "\n"+printer.ControlHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relais-sim printer: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("sim", "printer")
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relais-sim printer: "+format+"\n", a...)
		return 1
	}
	cfg := printer.Config{Name: *name, KeepDir: *keep, MaxDocumentBytes: *maxDoc, Log: log}
	if *maxDoc <= 0 {
		return fail("--max-document must be positive")
	}
	if *attributes != "" {
		attrs, err := printer.LoadAttributes(*attributes)
		if err != nil {
			return fail("--attributes: %v", err)
		}
		cfg.Attributes = attrs
	}
	var ctl net.Listener
	if *control != "" {
		if err := loopback(*control); err != nil {
			return fail("--control: %v", err)
		}
		var err error
		if ctl, err = net.Listen("tcp", *control); err != nil {
			return fail("--control: %v", err)
		}
		defer ctl.Close()
	}
	p, err := printer.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	defer p.Close()
	if err := p.Listen(*listen); err != nil {
		return fail("--listen: %v", err)
	}
	log.Info("listening", "uri", p.URI())
	if ctl != nil {
		srv := &http.Server{Handler: p.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ctl)
		defer srv.Close()
		log.Info("control", "control", "http://"+ctl.Addr().String()+"/")
	}
	<-ctx.Done()
	log.Info("stopping")
	return 0
}

// runScanner runs the scanner simulator until ctx ends, and returns the
// exit status.
func runScanner(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relais-sim scanner", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8633", "serve eSCL on `ADDR` (host:port; port 0 picks one)")
	capabilities := fs.String("capabilities", "", "replay a real device's eSCL ScannerCapabilities `FILE.xml`")
	control := fs.String("control", "127.0.0.1:8634", "serve the control endpoint on the loopback `ADDR` (empty: none)")
	adf := fs.Int("adf", 0, "sheets loaded in the document feeder at start (`N`)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintln(out, "usage: relais-sim scanner [flags]\n\nA simulated eSCL (AirScan) scanner, at http://ADDR/eSCL, with faults set at run time.\n\nflags:")
		fs.PrintDefaults()
		fmt.Fprint(out, "\n"+scanner.ControlHelp)
	}
	// The flag package would print the usage to stderr for --help too:
	// parse silently, and print it where it belongs.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fmt.Fprintln(stderr, "relais-sim scanner:", err)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	fs.SetOutput(stderr)
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relais-sim scanner: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("sim", "scanner")
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relais-sim scanner: "+format+"\n", a...)
		return 1
	}
	cfg := scanner.Config{ADF: *adf, Log: log}
	if *capabilities != "" {
		caps, err := scanner.LoadCapabilities(*capabilities)
		if err != nil {
			return fail("--capabilities: %v", err)
		}
		cfg.Capabilities = caps
	}
	var ctl net.Listener
	if *control != "" {
		if err := loopback(*control); err != nil {
			return fail("--control: %v", err)
		}
		var err error
		if ctl, err = net.Listen("tcp", *control); err != nil {
			return fail("--control: %v", err)
		}
		defer ctl.Close()
	}
	s, err := scanner.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	if err := s.Listen(*listen); err != nil {
		return fail("--listen: %v", err)
	}
	defer s.Close()
	log.Info("listening", "url", s.URL(), "model", s.Capabilities().MakeAndModel)
	if ctl != nil {
		srv := &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ctl)
		defer srv.Close()
		log.Info("control", "control", "http://"+ctl.Addr().String()+"/")
	}
	<-ctx.Done()
	log.Info("stopping")
	return 0
}

// loopback accepts a host:port whose host is a loopback address or
// localhost: the control endpoint has no authentication.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: the control endpoint has no authentication", host)
	}
	return nil
}
