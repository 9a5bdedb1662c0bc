package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// form is the scenario's length and pace.
type form struct {
	name   string
	rounds int           // rounds of every fault
	settle time.Duration // traffic between two faults
	outage time.Duration // how long the broker, central or a printer stays down
	pace   pace
	drain  time.Duration // bound of the drain after the traffic stops
}

// chaosForm is the short form for CI, or the long one with
// RELAIS_CHAOS=long (`make chaos`).
func chaosForm(t *testing.T) form {
	switch v := os.Getenv("RELAIS_CHAOS"); v {
	case "":
		return form{name: "short", rounds: 1, settle: 4 * time.Second, outage: 4 * time.Second,
			pace: pace{print: time.Second, press: 2 * time.Second}, drain: 2 * time.Minute}
	case "long":
		return form{name: "long", rounds: 4, settle: 8 * time.Second, outage: 6 * time.Second,
			pace: pace{print: 700 * time.Millisecond, press: 2 * time.Second}, drain: 4 * time.Minute}
	default:
		t.Fatalf("RELAIS_CHAOS=%q: want long, or nothing for the short form", v)
		return form{}
	}
}

// scenario is the running system and the record of what was done to it.
type scenario struct {
	t       *testing.T
	form    form
	db      string
	broker  *broker
	central *proc
	sites   []*site
	injects *injections
}

// TestChaos runs the scenario: see the package documentation.
func TestChaos(t *testing.T) {
	began := time.Now()
	f := chaosForm(t)
	bin := buildBinaries(t)
	sc := &scenario{t: t, form: f, db: peertest.Postgres(t), injects: &injections{}}
	sc.broker = startBroker(t)
	sc.central = startCentral(t, bin, sc.db, sc.broker.Addr)
	sc.sites = []*site{
		newSite(t, bin, 1, sc.broker.Addr, siteOptions{tmpfs: true}),
		newSite(t, bin, 2, sc.broker.Addr, siteOptions{}),
		newSite(t, bin, 3, sc.broker.Addr, siteOptions{hostapd: true}),
	}
	sc.waitConnected()
	t.Logf("%s form: system up in %v", f.name, time.Since(began).Round(time.Second))

	ctx, stopTraffic := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	defer func() { // on a failure too: no goroutine outlives the test
		stopTraffic()
		traffic.Wait()
	}()
	for _, s := range sc.sites {
		traffic.Go(func() { s.printLoop(ctx, f.pace) })
		traffic.Go(func() { s.pressLoop(ctx, f.pace) })
	}
	chaosStart := time.Now()
	for r := range f.rounds {
		sc.round(r)
	}
	// The traffic lasts long enough for the first scans to pass the
	// inbox's retention before the count.
	sc.settle()
	if d := time.Until(chaosStart.Add(retention + scanSlack)); d > 0 {
		time.Sleep(d) // the scenario's pace
	}
	stopTraffic()
	traffic.Wait()
	t.Logf("traffic and faults for %v", time.Since(chaosStart).Round(time.Second))

	drainStart := time.Now()
	sc.drain()
	t.Logf("drained in %v", time.Since(drainStart).Round(time.Second))
	res := sc.count()
	res.report(t, f, sc.injects, time.Since(began))
	res.check(t)
}

// round injects every fault once, with traffic flowing in between. It ends
// with the broker's restart, after which every agent sends again what
// central has not acked.
func (sc *scenario) round(r int) {
	t := sc.t
	for _, s := range sc.sites {
		sc.settle()
		s.agent.kill()
		sc.injects.add("agent SIGKILL")
		s.agent.start()
	}

	sc.settle()
	sc.central.kill()
	sc.injects.add("central SIGKILL")
	sc.outage()
	sc.central.start()

	sc.settle()
	sc.deviceFaults(r)

	sc.settle()
	sc.central.stop()
	sc.injects.add("central SIGTERM")
	sc.outage()
	sc.central.start()

	// The broker goes away while a printer fault central has shown is
	// cleared: once the agents are back, central must close it.
	sc.settle()
	off := sc.sites[(r+2)%len(sc.sites)]
	off.printer.Stop(t)
	sc.injects.add("printer offline")
	sc.waitFault(off, "printer-unreachable", true)
	if err := pollUntil(60*time.Second, func() bool {
		open, err := centralOpenFaults(sc.db, off.agentID)
		return err == nil && slices.Contains(open, "printer/printer-unreachable")
	}, nil); err != nil {
		t.Fatalf("%s: central does not show printer-unreachable: %v", off.agentID, err)
	}
	sc.broker.stop()
	sc.injects.add("broker stop and restart")
	off.printer.Restart(t)
	sc.waitFault(off, "printer-unreachable", false)
	sc.outage()
	sc.broker.start()
	sc.waitConnected()
	t.Logf("round %d done", r+1)
}

// waitFault waits until the agent shows the fault (raised) or no longer
// does.
func (sc *scenario) waitFault(s *site, code string, raised bool) {
	sc.t.Helper()
	if err := pollUntil(60*time.Second, func() bool { return s.hasFault(code) == raised }, nil); err != nil {
		sc.t.Fatalf("%s: fault %s still %v: %v", s.agentID, code, !raised, err)
	}
}

// deviceFaults takes a printer offline, fills the first site's disk and
// stops the third site's hostapd, all at once, then brings them back.
func (sc *scenario) deviceFaults(r int) {
	t := sc.t
	off := sc.sites[(r+1)%len(sc.sites)]
	off.printer.Stop(t)
	sc.injects.add("printer offline")
	ap := sc.sites[2]
	ap.hostapd.Stop()
	sc.injects.add("hostapd restart")

	full := sc.sites[0]
	fillPath := filepath.Join(full.mount, "fill")
	defer os.Remove(fillPath)
	sc.injects.add("disk full")
	for range 3 {
		// Topped up before each submission: the agent frees a page
		// now and then (a finished job's document).
		if _, err := fill(fillPath); err != nil {
			t.Fatalf("filling %s: %v", full.mount, err)
		}
		mark := full.ledger.mark(full.agentID, "full")
		o, st := submit(full.ippURI, markedPDF(mark))
		full.ledger.record(mark, o, st)
		full.ledger.mu.Lock()
		full.ledger.fullDisk[mark] = describe(o, st)
		full.ledger.mu.Unlock()
		if o == accepted {
			t.Logf("%s: accepted with %d bytes free on the full disk", mark, freeBytes(full.mount))
		}
	}

	sc.waitFault(off, "printer-unreachable", true)
	sc.waitFault(ap, "wifi-ap-down", true)
	sc.outage()
	if err := os.Remove(fillPath); err != nil {
		t.Fatal(err)
	}
	off.printer.Restart(t)
	ap.hostapd.Restart()
}

// settle lets the traffic flow between two faults: the scenario's pace.
func (sc *scenario) settle() { time.Sleep(sc.form.settle) }

// outage is how long a stopped peer stays down: the scenario's pace.
func (sc *scenario) outage() { time.Sleep(sc.form.outage) }

// waitConnected waits until every agent is connected to the broker.
func (sc *scenario) waitConnected() {
	sc.t.Helper()
	for _, s := range sc.sites {
		err := pollUntil(90*time.Second, func() bool {
			st, err := s.status()
			return err == nil && st.Central != nil && st.Central.Connected
		}, nil)
		if err != nil {
			sc.t.Fatalf("%s not connected to the broker: %v", s.agentID, err)
		}
	}
}

// drain waits, within the form's bound, until every agent is idle (no job
// waiting, the scanner done), central has acked its every event, and
// central shows the same open faults as the agent.
func (sc *scenario) drain() {
	t := sc.t
	deadline := time.Now().Add(sc.form.drain)
	for _, s := range sc.sites {
		sc.drainSite(s, deadline)
	}
	for _, s := range sc.sites {
		why := ""
		err := pollUntil(time.Until(deadline)+30*time.Second, func() bool {
			st, err := s.status()
			if err != nil {
				why = err.Error()
				return false
			}
			central, err := centralOpenFaults(sc.db, s.agentID)
			if err != nil {
				why = err.Error()
				return false
			}
			var agent []string
			for _, f := range st.Faults {
				agent = append(agent, string(f.Device)+"/"+f.Code)
			}
			why = fmt.Sprintf("agent shows %v, central %v", agent, central)
			return sameSet(agent, central)
		}, nil)
		if err != nil {
			t.Errorf("%s: central's open faults differ from the agent's: %s (%v)", s.agentID, why, err)
		}
	}
}

// drainSite waits until the site is idle, and stays so for a second with
// no new event (a copy's job is queued just after its scan ends).
func (sc *scenario) drainSite(s *site, deadline time.Time) {
	var held time.Time
	var lastSeq uint64
	why, waited := "", map[string]bool{}
	began := time.Now()
	err := pollUntil(time.Until(deadline), func() bool {
		seq, reason, detail := sc.idle(s)
		if reason != "" {
			why = reason + ": " + detail
			waited[reason] = true
		}
		if reason != "" || seq != lastSeq {
			held, lastSeq = time.Time{}, seq
			return false
		}
		if held.IsZero() {
			held = time.Now()
		}
		return time.Since(held) >= time.Second
	}, nil)
	if err != nil {
		sc.t.Fatalf("%s did not drain: %s (%v)", s.agentID, why, err)
	}
	if len(waited) > 0 {
		var list []string
		for w := range waited {
			list = append(list, w)
		}
		slices.Sort(list)
		sc.t.Logf("%s drained in %v, after waiting for: %s", s.agentID, time.Since(began).Round(100*time.Millisecond), strings.Join(list, "; "))
	}
}

// idle returns the outbox's last seq and, unless s is drained, what it
// waits for (a short reason, and its detail).
func (sc *scenario) idle(s *site) (seq uint64, reason, detail string) {
	if st := s.scanner.Status(); st.Active > 0 {
		return 0, "a scan under way", ""
	}
	ok, err := s.queueIdle()
	if err != nil {
		return 0, "ctl queue", err.Error()
	}
	if !ok {
		return 0, "jobs waiting", ""
	}
	st, err := s.status()
	if err != nil {
		return 0, "ctl status", err.Error()
	}
	seq = st.Outbox.LastSeq
	switch {
	case st.Central == nil || !st.Central.Connected:
		return seq, "not connected to the broker", ""
	case st.Outbox.Depth > 0:
		return seq, "events not acked", fmt.Sprintf("%d (last seq %d, acked %d)", st.Outbox.Depth, seq, st.Outbox.LastAck)
	}
	upto, err := centralUpto(sc.db, s.agentID)
	switch {
	case err != nil:
		return seq, "central's database", err.Error()
	case upto != seq:
		return seq, "central's watermark", fmt.Sprintf("%d, the agent's last seq %d", upto, seq)
	}
	return seq, "", ""
}

// sameSet reports whether a and b hold the same strings, as many times.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		if in[x] == 0 {
			return false
		}
		in[x]--
	}
	return true
}

// injections counts the faults injected, by kind, in order of first use.
type injections struct {
	mu    sync.Mutex
	kinds []string
	n     map[string]int
}

func (in *injections) add(kind string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.n == nil {
		in.n = map[string]int{}
	}
	if in.n[kind] == 0 {
		in.kinds = append(in.kinds, kind)
	}
	in.n[kind]++
}
