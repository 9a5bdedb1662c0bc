package outbox_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// childEnv makes the test binary run recordForever on the outbox it names
// instead of the tests.
const childEnv = "RELAIS_OUTBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(recordForever(path))
	}
	os.Exit(m.Run())
}

// recordForever is the child of TestKill9: three goroutines record events
// and print each seq once Record has returned, while a fourth raises and
// clears a fault, until the parent kills the process. Its clock starts at
// 20:00 UTC and moves a minute per reading, so that events span days.
func recordForever(path string) int {
	var ticks atomic.Int64
	start := time.Date(2026, 3, 10, 20, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Minute) }
	o, err := outbox.Open(path, outbox.Options{Now: now, Location: time.UTC, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out sync.Mutex
	fail := make(chan error, 4)
	for range 3 {
		go func() {
			for {
				e, err := o.RecordEvent(printed(1))
				if err != nil {
					fail <- err
					return
				}
				out.Lock()
				_, err = fmt.Fprintln(os.Stdout, e.Seq)
				out.Unlock()
				if err != nil {
					fail <- err
					return
				}
			}
		}()
	}
	go func() {
		for i := 0; ; i++ {
			err := o.Raise(api.DevicePrinter, "media-jam", api.SeverityFault)
			if i%2 == 1 {
				err = o.Clear(api.DevicePrinter, "media-jam")
			}
			if err != nil {
				fail <- err
				return
			}
		}
	}()
	fmt.Fprintln(os.Stderr, <-fail)
	return 3
}

// TestKill9 kills a process recording events at points drawn from a seeded
// random source, then checks that every event it acknowledged is there,
// that seqs have no gap, that faults and counters agree with the events,
// and that the next event continues the sequence.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	r := rand.New(rand.NewPCG(20260310, 9))
	for round := range 5 {
		killAfter := 1 + r.IntN(300)
		acked := runAndKill(t, path, killAfter)
		last := verifyAfterKill(t, path, acked)
		t.Logf("round %d: killed after %d acknowledged events (%d printed); last seq now %d, faults included",
			round, killAfter, len(acked), last)
	}
}

// runAndKill starts recordForever on path, SIGKILLs it once it has printed
// killAfter seqs, and returns every seq it printed.
func runAndKill(t *testing.T, path string, killAfter int) map[uint64]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // after the kill, read what the child printed before dying
		seq, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Errorf("child printed %q", sc.Text())
		}
		acked[seq] = true
		if len(acked) == killAfter {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by SIGKILL, after %d events; stderr:\n%s", err, len(acked), stderr.Bytes())
	}
	return acked
}

// verifyAfterKill checks the outbox at path and returns its last seq
// before the one event it records.
func verifyAfterKill(t *testing.T, path string, acked map[uint64]bool) uint64 {
	t.Helper()
	o := reopen(t, path, nil, outbox.Options{Location: time.UTC})
	defer o.Close()
	checkAccounting(t, o)
	s := stats(t, o)
	es := all(t, o) // nothing is ever acked here: every event is pending
	if uint64(len(es)) != s.LastSeq {
		t.Fatalf("%d events stored, last seq %d", len(es), s.LastSeq)
	}
	ids := map[string]bool{}
	perDay := map[string]map[api.EventType]int64{}
	lastFault := api.EventType("")
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: seqs are not contiguous", i, e.Seq)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
		if ids[e.ID] {
			t.Fatalf("event %d: id %s seen before", e.Seq, e.ID)
		}
		ids[e.ID] = true
		day := e.Time.Format(time.DateOnly)
		if perDay[day] == nil {
			perDay[day] = map[api.EventType]int64{}
		}
		perDay[day][e.Type]++
		if e.Fault != nil {
			if e.Type == lastFault {
				t.Fatalf("event %d: %s twice in a row", e.Seq, e.Type)
			}
			lastFault = e.Type
		}
	}
	for seq := range acked {
		if seq > s.LastSeq {
			t.Fatalf("acknowledged seq %d lost: last seq %d", seq, s.LastSeq)
		}
	}
	// The open fault agrees with the last fault event.
	faults, err := o.OpenFaults()
	if err != nil {
		t.Fatal(err)
	}
	if open := len(faults) == 1; open != (lastFault == api.EventFaultRaised) || len(faults) > 1 {
		t.Fatalf("open faults %+v, last fault event %q", faults, lastFault)
	}
	// The counters agree with the events: both are in every transaction.
	for day, types := range perDay {
		cs := counters(t, o, day)
		for typ, n := range types {
			if cs[typ].Count != n {
				t.Fatalf("%s %s: counted %d, %d events", day, typ, cs[typ].Count, n)
			}
		}
	}
	if e := record(t, o, printed(1)); e.Seq != s.LastSeq+1 {
		t.Fatalf("next seq %d, want %d", e.Seq, s.LastSeq+1)
	}
	return s.LastSeq
}
