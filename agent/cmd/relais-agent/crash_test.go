package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/peertest"
)

// TestCrashExactlyOnce submits 200 jobs while the agent is killed with
// SIGKILL at random moments and restarted: ippeveprinter must receive every
// accepted job exactly once. A job whose submission got no answer may have
// been spooled or not; it is printed at most once.
func TestCrashExactlyOnce(t *testing.T) {
	const jobs, kills = 200, 6
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	// One client sends every job here: no per-client rate limit.
	agent := startAgent(t, printer.URI, "ipp.jobs_per_client_per_minute=10000")
	rng := rand.New(rand.NewPCG(7, 2026)) // the same kill points on every run
	var killAt []int
	for range kills {
		killAt = append(killAt, 1+rng.IntN(jobs-1))
	}
	slices.Sort(killAt)

	// The submitter sends job after job, as PCs would, while the killer
	// cuts the agent off when the count of accepted jobs reaches each kill
	// point: in the middle of a submission, of a forward, or of both.
	var mu sync.Mutex
	accepted := map[string]bool{}
	unknown := map[string]bool{}
	progress := make(chan int, jobs*2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			mu.Lock()
			count := len(accepted)
			mu.Unlock()
			if count >= jobs {
				return
			}
			mark := fmt.Sprintf("job-%d", n)
			err := submit(agent.URI, markedPDF(mark))
			mu.Lock()
			if err != nil {
				unknown[mark] = true
			} else {
				accepted[mark] = true
			}
			count = len(accepted)
			mu.Unlock()
			if err == nil {
				progress <- count
			}
		}
	}()
	for _, at := range killAt {
		for count := range progress {
			if count >= at {
				break
			}
		}
		agent.kill()
		agent.start()
	}
	<-done
	agent.waitFor("every job forwarded", 5*time.Minute, agent.drained)

	counts := map[string]int{}
	where := map[string][]string{}
	for _, d := range printer.Documents(t) {
		m := markOf(t, d.Path)
		counts[m]++
		where[m] = append(where[m], fmt.Sprintf("run %d job %d", d.Run, d.JobID))
	}
	var lost, doubled []string
	for mark := range accepted {
		switch counts[mark] {
		case 0:
			lost = append(lost, mark)
		case 1:
		default:
			doubled = append(doubled, mark)
		}
	}
	for mark := range unknown {
		if counts[mark] > 1 {
			doubled = append(doubled, mark)
		}
	}
	t.Logf("%d jobs accepted, %d without an answer, %d documents printed, %d kills", len(accepted), len(unknown), len(printer.Documents(t)), kills)
	if len(lost) > 0 || len(doubled) > 0 {
		for _, m := range doubled {
			t.Logf("%s printed as %v", m, where[m])
		}
		t.Errorf("lost %v, printed twice %v\nagent log:\n%s", lost, doubled, agent.stderr)
	}
}
