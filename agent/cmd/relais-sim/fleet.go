package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relais-fr/relais/agent/sim/fleet"
	"github.com/relais-fr/relais/central/api"
)

// Settings of `relais-sim fleet`.
const (
	// fdsPerAgent: each agent holds its outbox's database, WAL and
	// shared-memory files open, and its MQTT connection.
	fdsPerAgent = 4
	// fdReserve is kept for everything else: standard streams, the Go
	// runtime's poller, files opened for a moment (password files, logs).
	fdReserve = 128
	// rampRate is the default pace of first connections, per second.
	rampRate = 200
	// reportEvery is the period of the progress lines.
	reportEvery = 10 * time.Second
	// workerEvery is how often a worker process sends its figures.
	workerEvery = time.Second
	// maxWorkerLine bounds a line of a worker's output.
	maxWorkerLine = 64 << 10
	// exitGrace is how long workers may take beyond the drain to exit.
	exitGrace = 30 * time.Second
)

const fleetHelp = `usage: relais-sim fleet --agents N --broker URL [flags]

Runs N simulated agents in this process, each with its own outbox (SQLite)
and MQTT connection, reporting usage events, faults, status and metrics to
relais-central exactly as relais-agent does. Agent i is pi-1 of site
{site-prefix}-0001, -0002... (with --per-site K, sites have pi-1 to pi-K).
Without --credentials, each agent connects as {site}/{agent} without a
password (a broker that allows anonymous clients, such as a test mosquitto);
with it, with the password listed for it ("site agent password" per line).

Every 10 s it prints the agents connected and the events recorded,
published, acknowledged by central and still pending. On SIGINT or SIGTERM,
or after --duration, it stops recording and drains: it waits, at most
--drain, until central has acknowledged every event (a second signal stops
waiting), then disconnects each agent (its retained status goes offline)
and prints a summary. When the open-files limit is too low for N agents
(4 files each), the agents are shared out among several processes.

Each event is committed to its agent's outbox with an fsync, as on a Pi:
on a disk this bounds the rate to a few hundred or thousand events per
second; --state on a tmpfs (such as /dev/shm) lifts it, for load tests of
central. Each agent's outbox takes up to about 4 MiB there.

flags:
`

// fleetFlags are the parsed flags of `relais-sim fleet`.
type fleetFlags struct {
	cfg         fleet.Config
	credentials string
	state       string
	duration    time.Duration
	drain       time.Duration
	ramp        string
	procs       int
	verbose     bool
	worker      bool // hidden: one process of a fleet shared out
}

// parseFleet parses the flags; it returns the exit status if there is
// nothing to run (help, or an error, which it has printed).
func parseFleet(args []string, stdout, stderr io.Writer) (*fleetFlags, int, bool) {
	ff := &fleetFlags{}
	c := &ff.cfg
	fs := flag.NewFlagSet("relais-sim fleet", flag.ContinueOnError)
	fs.IntVar(&c.Agents, "agents", 0, "run `N` agents (1 to 100000)")
	fs.Float64Var(&c.Rate, "rate", 1, "usage events per second of the whole fleet, `R` (Poisson arrivals)")
	fs.StringVar(&c.MQTT.Broker, "broker", "", "relais-central's broker `URL`: tcp:// or mqtt://HOST:PORT, ssl:// or mqtts://HOST:PORT")
	fs.StringVar(&c.MQTT.CAFile, "ca-file", "", "CA certificate `FILE` of a TLS broker (default: the system's)")
	fs.StringVar(&ff.credentials, "credentials", "", "agents' passwords, `FILE` of \"site agent password\" lines")
	fs.StringVar(&ff.state, "state", "", "keep the agents' outboxes in `DIR` (default: a temporary directory, removed at the end)")
	fs.DurationVar(&ff.duration, "duration", 0, "stop after `D` (default: at SIGINT or SIGTERM)")
	fs.DurationVar(&ff.drain, "drain", time.Minute, "on stopping, wait at most `D` for central to acknowledge every event")
	fs.StringVar(&ff.ramp, "ramp", "", "start the agents' connections evenly over `D` (default: 200 per second)")
	fs.StringVar(&c.SitePrefix, "site-prefix", fleet.DefaultSitePrefix, "site ids are `S`-0001, S-0002...")
	fs.IntVar(&c.PerSite, "per-site", fleet.DefaultPerSite, "agents per site, `K`")
	fs.Float64Var(&c.FaultShare, "fault-share", 0.02, "share `F` of arrivals that raise or clear a fault (paper out, scanner jam)")
	fs.Float64Var(&c.OfflineShare, "offline-share", 0, "share `F` of the agents offline at any time (0 to 0.9), in outages of --offline-for on average")
	fs.DurationVar(&c.OfflineMean, "offline-for", fleet.DefaultOfflineMean, "mean length `D` of an outage")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed `N` of the simulation: the same seed gives each agent the same events")
	fs.DurationVar(&c.Day, "day", fleet.DefaultDay, "length `D` of a simulated day, after which each agent reports its Wi-Fi visitors")
	fs.DurationVar(&c.MetricsInterval, "metrics-interval", fleet.DefaultMetricsInterval, "period `D` of each agent's metrics")
	fs.IntVar(&ff.procs, "procs", 0, "share the agents out among `N` processes (default: as the open-files limit requires)")
	fs.BoolVar(&ff.verbose, "verbose", false, "log each agent's connections")
	fs.BoolVar(&ff.worker, "worker", false, "")
	fs.IntVar(&c.First, "first", 0, "")
	hidden := map[string]bool{"worker": true, "first": true}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, fleetHelp)
		fs.VisitAll(func(f *flag.Flag) {
			if hidden[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  -%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	fs.SetOutput(io.Discard)
	fail := func(format string, a ...any) (*fleetFlags, int, bool) {
		fmt.Fprintf(stderr, "relais-sim fleet: "+format+"\n", a...)
		return nil, 2, false
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, 0, false
		}
		fmt.Fprintln(stderr, "relais-sim fleet:", err)
		fmt.Fprintln(stderr, "see relais-sim fleet --help")
		return nil, 2, false
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case c.Agents <= 0:
		return fail("--agents N is required (1 to %d)", fleet.MaxAgents)
	case c.Agents > fleet.MaxAgents:
		return fail("--agents %d: at most %d", c.Agents, fleet.MaxAgents)
	case math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > fleet.MaxRate:
		return fail("--rate %v: want 0 to %d events per second", c.Rate, fleet.MaxRate)
	case c.MQTT.Broker == "":
		return fail("--broker URL is required, such as tcp://127.0.0.1:1883")
	case ff.duration < 0:
		return fail("--duration must not be negative")
	case ff.drain < 0:
		return fail("--drain must not be negative")
	case ff.procs < 0 || ff.procs > 64:
		return fail("--procs %d: want 1 to 64", ff.procs)
	case c.FaultShare < 0 || c.FaultShare > 1:
		return fail("--fault-share %v: want 0 to 1", c.FaultShare)
	case c.OfflineShare < 0 || c.OfflineShare > 0.9:
		return fail("--offline-share %v: want 0 to 0.9", c.OfflineShare)
	case c.OfflineMean <= 0:
		return fail("--offline-for must be positive")
	case c.Day < time.Second:
		return fail("--day %v: want at least 1s", c.Day)
	case c.MetricsInterval < time.Second:
		return fail("--metrics-interval %v: want at least 1s", c.MetricsInterval)
	case c.PerSite < 1 || c.PerSite > 1000:
		return fail("--per-site %d: want 1 to 1000", c.PerSite)
	}
	if err := checkBroker(c.MQTT.Broker); err != nil {
		return fail("--broker: %v", err)
	}
	if ff.ramp == "" {
		c.Ramp = time.Duration(float64(c.Agents) / rampRate * float64(time.Second))
	} else {
		d, err := time.ParseDuration(ff.ramp)
		if err != nil || d < 0 {
			return fail("--ramp %q: want a duration such as 30s", ff.ramp)
		}
		c.Ramp = d
	}
	if ff.credentials != "" {
		creds, err := fleet.LoadCredentials(ff.credentials)
		if err != nil {
			return fail("--credentials: %v", err)
		}
		c.Credentials = creds
	}
	if last := c.AgentID(c.First + c.Agents - 1); !api.ValidID(c.SitePrefix) || !api.ValidID(last.Site) {
		return fail("--site-prefix %q: site ids such as %q must match [a-z0-9-]{1,63}", c.SitePrefix, last.Site)
	}
	return ff, 0, true
}

// checkBroker accepts the broker URLs of configs' [mqtt] broker that paho
// dials over TCP or TLS.
func checkBroker(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("%q: want tcp://, mqtt://, ssl:// or mqtts://HOST:PORT", s)
	}
	if u.Hostname() == "" || u.Port() == "" || u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%q: want %s://HOST:PORT", s, u.Scheme)
	}
	return nil
}

// runFleet runs `relais-sim fleet` until ctx ends or --duration elapses,
// and returns the exit status.
func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ff, code, ok := parseFleet(args, stdout, stderr)
	if !ok {
		return code
	}
	level := slog.LevelInfo
	if ff.worker {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("sim", "fleet")
	ff.cfg.Logger = log
	// The reporters' problems are shown; their connections with --verbose.
	ff.cfg.ReportLogger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("sim", "fleet")
	if ff.verbose {
		ff.cfg.ReportLogger = log
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relais-sim fleet: "+format+"\n", a...)
		return 1
	}

	limit, err := raiseFileLimit()
	if err != nil {
		return fail("%v", err)
	}
	perProc := (int(min(limit, math.MaxInt32)) - fdReserve) / fdsPerAgent
	if perProc < 1 {
		return fail("the open-files limit is %d: too low to run an agent", limit)
	}
	procs := ff.procs
	if ff.worker {
		procs = 1
	}
	if procs == 0 {
		procs = (ff.cfg.Agents + perProc - 1) / perProc
	}
	if share := (ff.cfg.Agents + procs - 1) / procs; share > perProc {
		return fail("%d agents per process need %d open files; the limit is %d: use --procs %d or more, or raise the limit (ulimit -n, LimitNOFILE=)",
			share, share*fdsPerAgent+fdReserve, limit, (ff.cfg.Agents+perProc-1)/perProc)
	}
	procs = min(procs, ff.cfg.Agents)

	if ff.state == "" {
		dir, err := os.MkdirTemp("", "relais-sim-fleet-")
		if err != nil {
			return fail("%v", err)
		}
		defer os.RemoveAll(dir)
		ff.state = dir
	} else if err := os.MkdirAll(ff.state, 0o700); err != nil {
		return fail("--state: %v", err)
	}
	ff.cfg.StateDir = ff.state

	if procs > 1 {
		log.Info("sharing the agents out among processes", "agents", ff.cfg.Agents, "procs", procs, "open_files_limit", limit)
		return runShared(ctx, ff, procs, stdout, stderr, log)
	}
	return runOne(ctx, ff, stdout, stderr, log)
}

// timer returns a channel that fires after d, counted from now, or never
// if d is 0, and the function that releases it.
func timer(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// raiseFileLimit raises the soft limit on open files to the hard limit
// and returns it. (Go raises it at start already; this makes it explicit
// and reads it.)
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open-files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raising the open-files limit: %w", err)
		}
	}
	return uint64(lim.Cur), nil
}

// workerLine is a line of a worker process's output.
type workerLine struct {
	Stats *fleet.Stats `json:"stats,omitempty"`
	Final *fleet.Stats `json:"final,omitempty"`
}

// runOne runs the fleet in this process. A worker prints its figures as
// JSON lines for the parent process, others progress lines and a summary.
func runOne(ctx context.Context, ff *fleetFlags, stdout, stderr io.Writer, log *slog.Logger) int {
	f, err := fleet.New(ff.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "relais-sim fleet:", err)
		return 1
	}
	log.Info("opening the agents' outboxes", "agents", ff.cfg.Agents, "state", ff.state)
	if err := f.Start(); err != nil {
		fmt.Fprintln(stderr, "relais-sim fleet:", err)
		return 1
	}
	stop, release := timer(ff.duration) // from now: opening took a while
	defer release()
	every := reportEvery
	emit := func(s fleet.Stats) { fmt.Fprintln(stdout, progressLine(s)) }
	if ff.worker {
		// The first line tells the parent process that the outboxes are open.
		every = workerEvery
		emit = func(s fleet.Stats) { writeJSONLine(stdout, workerLine{Stats: &s}) }
		emit(f.Stats())
	} else {
		first, last := ff.cfg.AgentID(ff.cfg.First), ff.cfg.AgentID(ff.cfg.First+ff.cfg.Agents-1)
		fmt.Fprintf(stdout, "started %d agents (%s to %s) at %v events/s, connections over %v, state in %s\n",
			ff.cfg.Agents, first, last, ff.cfg.Rate, ff.cfg.Ramp, ff.state)
	}
	progress := time.NewTicker(every)
	defer progress.Stop()
run:
	for {
		select {
		case <-ctx.Done():
			break run
		case <-stop:
			break run
		case <-progress.C:
			emit(f.Stats())
		}
	}
	if !ff.worker {
		fmt.Fprintf(stdout, "stopping: waiting at most %v for central to acknowledge every event\n", ff.drain)
	}
	dctx, cancel := drainContext(ff.drain)
	defer cancel()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-progress.C:
				emit(f.Stats())
			}
		}
	}()
	s, err := f.Stop(dctx)
	close(done)
	if err != nil {
		log.Error("closing the outboxes", "err", err)
	}
	if ff.worker {
		writeJSONLine(stdout, workerLine{Final: &s})
		return 0
	}
	printSummary(stdout, s, ff.drain)
	return 0
}

// drainContext bounds the drain by d and by a further SIGINT or SIGTERM.
func drainContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return sctx, func() { stop(); cancel() }
}

func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain numbers
	}
	w.Write(append(b, '\n'))
}

// progressLine describes the fleet's state on one line.
func progressLine(s fleet.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s: %d/%d agents connected", (time.Duration(s.Elapsed) * time.Second).String(), s.Connected, s.Agents)
	if s.Offline > 0 {
		fmt.Fprintf(&b, " (%d in an outage)", s.Offline)
	}
	fmt.Fprintf(&b, ", events recorded %d, published %d, acked %d, pending %d, reconnects %d",
		s.Recorded, s.Published, s.Acked, s.Pending, s.Reconnects)
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", skipped %d", s.Skipped)
	}
	if s.Failures > 0 {
		fmt.Fprintf(&b, ", failed %d", s.Failures)
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, " (last problem: %s)", s.LastError)
	}
	return b.String()
}

// printSummary prints the final figures and whether every event was
// acknowledged.
func printSummary(w io.Writer, s fleet.Stats, drain time.Duration) {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Recorded) / s.Elapsed
	}
	fmt.Fprintf(w, "summary: %d agents for %v: events recorded %d (%.1f/s), published %d, acked %d, pending %d; "+
		"reconnects %d, resends %d, commands %d, skipped %d, failed %d\n",
		s.Agents, (time.Duration(s.Elapsed * float64(time.Second))).Round(100*time.Millisecond), s.Recorded, rate,
		s.Published, s.Acked, s.Pending, s.Reconnects, s.Resends, s.Commands, s.Skipped, s.Failures)
	if s.Pending == 0 {
		fmt.Fprintf(w, "all %d events acked\n", s.Recorded)
	} else {
		fmt.Fprintf(w, "%d events still pending: central did not acknowledge them within the %v drain\n", s.Pending, drain)
		if s.LastError != "" {
			fmt.Fprintf(w, "last problem: %s\n", s.LastError)
		}
	}
}

// runShared shares the agents out among procs worker processes (this
// program again, with --worker), prints their summed figures, and on
// stopping signals them to drain and waits for their final figures.
func runShared(ctx context.Context, ff *fleetFlags, procs int, stdout, stderr io.Writer, log *slog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "relais-sim fleet:", err)
		return 1
	}
	type worker struct {
		cmd     *exec.Cmd
		mu      sync.Mutex
		started bool // its outboxes are open: it sent its figures
		last    fleet.Stats
		final   *fleet.Stats
		done    chan struct{}
	}
	workers := make([]*worker, procs)
	ready := make(chan struct{}, procs)
	c := ff.cfg
	first := 0
	for i := range workers {
		n := c.Agents/procs + btoi(i < c.Agents%procs)
		args := []string{"fleet", "--worker",
			"--first", strconv.Itoa(c.First + first), "--agents", strconv.Itoa(n),
			"--rate", strconv.FormatFloat(c.Rate*float64(n)/float64(c.Agents), 'g', -1, 64),
			"--broker", c.MQTT.Broker, "--state", ff.state, "--drain", ff.drain.String(),
			"--ramp", c.Ramp.String(), "--site-prefix", c.SitePrefix, "--per-site", strconv.Itoa(c.PerSite),
			"--fault-share", strconv.FormatFloat(c.FaultShare, 'g', -1, 64),
			"--offline-share", strconv.FormatFloat(c.OfflineShare, 'g', -1, 64),
			"--offline-for", c.OfflineMean.String(), "--seed", strconv.FormatUint(c.Seed, 10),
			"--day", c.Day.String(), "--metrics-interval", c.MetricsInterval.String(),
		}
		if c.MQTT.CAFile != "" {
			args = append(args, "--ca-file", c.MQTT.CAFile)
		}
		if ff.credentials != "" {
			args = append(args, "--credentials", ff.credentials)
		}
		if ff.verbose {
			args = append(args, "--verbose")
		}
		first += n
		w := &worker{cmd: exec.Command(exe, args...), done: make(chan struct{}), last: fleet.Stats{Agents: n}}
		w.cmd.Stderr = stderr
		// In a process group of its own, a worker gets its signals from
		// here only, not also from the terminal's Ctrl-C.
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := w.cmd.StdoutPipe()
		if err != nil {
			fmt.Fprintln(stderr, "relais-sim fleet:", err)
			return 1
		}
		if err := w.cmd.Start(); err != nil {
			fmt.Fprintln(stderr, "relais-sim fleet: starting a worker process:", err)
			for _, o := range workers[:i] {
				o.cmd.Process.Kill()
			}
			return 1
		}
		workers[i] = w
		go func() {
			defer close(w.done)
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 0, 4096), maxWorkerLine)
			for sc.Scan() {
				var l workerLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					log.Warn("unreadable line from a worker process", "err", err)
					continue
				}
				w.mu.Lock()
				if l.Stats != nil {
					w.last = *l.Stats
					if !w.started {
						w.started = true
						ready <- struct{}{}
					}
				}
				if l.Final != nil {
					w.final = l.Final
				}
				w.mu.Unlock()
			}
			io.Copy(io.Discard, out)
		}()
	}
	waiting := procs // workers still opening their outboxes
	line := func() string {
		if waiting > 0 {
			return fmt.Sprintf("opening the agents' outboxes: %d of %d processes ready", procs-waiting, procs)
		}
		var s fleet.Stats
		for _, w := range workers {
			w.mu.Lock()
			s.Add(w.last)
			w.mu.Unlock()
		}
		return progressLine(s)
	}
	fmt.Fprintf(stdout, "starting %d agents (%s to %s) in %d processes at %v events/s, connections over %v, state in %s\n",
		c.Agents, c.AgentID(c.First), c.AgentID(c.First+c.Agents-1), procs, c.Rate, c.Ramp, ff.state)
	progress := time.NewTicker(reportEvery)
	defer progress.Stop()
	exited := make(chan int, procs)
	for i, w := range workers {
		go func() {
			<-w.done
			w.cmd.Wait()
			exited <- i
		}()
	}
	running := procs
	early := false
	var stop <-chan time.Time
	release := func() {}
	defer func() { release() }()
run:
	for {
		select {
		case <-ctx.Done():
			break run
		case <-stop:
			break run
		case <-ready:
			if waiting--; waiting == 0 {
				stop, release = timer(ff.duration) // from now: opening took a while
			}
		case <-exited:
			running--
			early = true
			break run
		case <-progress.C:
			fmt.Fprintln(stdout, line())
		}
	}
	if early {
		fmt.Fprintln(stderr, "relais-sim fleet: a worker process ended; stopping the others")
	}
	fmt.Fprintf(stdout, "stopping: waiting at most %v for central to acknowledge every event\n", ff.drain)
	for _, w := range workers {
		w.cmd.Process.Signal(syscall.SIGTERM)
	}
	grace := time.NewTimer(ff.drain + exitGrace)
	defer grace.Stop()
	// A further signal cuts the drain short: pass it on.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	for running > 0 {
		select {
		case <-exited:
			running--
		case <-ready:
			waiting--
		case <-progress.C:
			fmt.Fprintln(stdout, line())
		case sig := <-again:
			for _, w := range workers {
				w.cmd.Process.Signal(sig)
			}
		case <-grace.C:
			log.Error("worker processes did not stop in time; killing them")
			for _, w := range workers {
				w.cmd.Process.Kill()
			}
		}
	}
	var s fleet.Stats
	status := 0
	for i, w := range workers {
		if w.final == nil {
			fmt.Fprintf(stderr, "relais-sim fleet: worker process %d (%s) ended without its summary\n", i+1, w.cmd.ProcessState)
			status = 1
			s.Add(w.last)
			continue
		}
		s.Add(*w.final)
	}
	printSummary(stdout, s, ff.drain)
	return status
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
