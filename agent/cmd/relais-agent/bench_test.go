package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/upstream"
	"github.com/relais-fr/relais/central/peertest"
)

// TestBenchPrintAccept is the print load scenario of `make bench`, not a
// unit test: it runs only with RELAIS_BENCH=1. It measures how fast jobs of
// 1 MB PDFs are accepted (Print-Job answered) through the agent, next to
// the same upstream ippeveprinter taking them directly and CUPS accepting
// them for that upstream, all in one run on this machine, and prints the
// figures with the agent's ratio to each peer.
func TestBenchPrintAccept(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a load scenario for make bench (RELAIS_BENCH=1)")
	}
	const jobs, clients = 60, 4
	doc := megabytePDF()

	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	agent := startAgent(t, printer.URI, "ipp.jobs_per_client_per_minute=10000")
	cups := peertest.CUPS(t)
	cups.AddQueue(t, "relais", printer.URI)
	cupsURI := "ipp://" + cups.Addr + "/printers/relais"

	results := []loadResult{load(t, "relais-agent (fsync before answer)", agent.URI, doc, jobs, clients)}
	// The upstream printer must be idle again before it is measured alone.
	agent.waitFor("the agent's jobs printed", 5*time.Minute, agent.drained)
	results = append(results,
		load(t, "ippeveprinter direct", printer.URI, doc, jobs, clients),
		load(t, "CUPS (cupsd, same upstream)", cupsURI, doc, jobs, clients))
	var b strings.Builder
	fmt.Fprintf(&b, "\nPrint accept: %d jobs of %d KiB PDF, %d concurrent clients, loopback\n", jobs, len(doc)>>10, clients)
	fmt.Fprintf(&b, "%-36s %10s %10s %10s %14s\n", "target", "jobs/s", "p50 ms", "p99 ms", "agent ratio")
	for _, r := range results {
		fmt.Fprintf(&b, "%-36s %10.1f %10.1f %10.1f %14s\n", r.name, r.rate, ms(r.p50), ms(r.p99),
			fmt.Sprintf("%.2fx jobs/s", results[0].rate/r.rate))
	}
	fmt.Print(b.String())
	for _, r := range results[1:] {
		peertest.BenchRow(t, "print accept, 1 MiB PDF, 4 clients (jobs/s)", fmt.Sprintf("%.1f", results[0].rate),
			r.name, fmt.Sprintf("%.1f", r.rate), fmt.Sprintf("%.2fx", results[0].rate/r.rate))
	}
}

// TestBenchIdle is the idle load scenario of `make bench` (RELAIS_BENCH=1):
// an agent with its printer, scanner and broker connection doing nothing,
// next to cupsd with one queue doing nothing, over the same minute: the
// resident memory at the end and the CPU time used during it.
func TestBenchIdle(t *testing.T) {
	if os.Getenv("RELAIS_BENCH") != "1" {
		t.Skip("a load scenario for make bench (RELAIS_BENCH=1)")
	}
	window := time.Minute
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	broker := peertest.Mosquitto(t, "allow_anonymous true")
	agent := startAgent(t, printer.URI, "mqtt.broker=mqtt://"+broker)
	cups := peertest.CUPS(t)
	cups.AddQueue(t, "relais", printer.URI)
	agent.waitFor("the agent connected", time.Minute, func() bool { s := agent.status(); return s.Central != nil && s.Central.Connected })

	pids := []int{agent.cmd.Process.Pid, cups.PID()}
	var before, after [2]peertest.ProcUsage
	for i, pid := range pids {
		u, err := peertest.Usage(pid)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = u
	}
	time.Sleep(window) // the measurement window itself, not synchronisation
	for i, pid := range pids {
		u, err := peertest.Usage(pid)
		if err != nil {
			t.Fatal(err)
		}
		after[i] = u
	}
	cpu := func(i int) float64 { return float64(after[i].CPU-before[i].CPU) / float64(window) * 100 }
	mib := func(i int) float64 { return float64(after[i].RSS) / (1 << 20) }
	fmt.Printf("\nIdle over %v: relais-agent RSS %.1f MiB, CPU %.2f %%; cupsd (one queue) RSS %.1f MiB, CPU %.2f %%\n",
		window, mib(0), cpu(0), mib(1), cpu(1))
	peertest.BenchRow(t, "agent idle RSS (MiB)", fmt.Sprintf("%.1f", mib(0)), "cupsd idle, one queue",
		fmt.Sprintf("%.1f", mib(1)), fmt.Sprintf("%.2fx", mib(0)/mib(1)))
	ratio := "n/a (cupsd used no CPU)"
	if cpu(1) > 0 {
		ratio = fmt.Sprintf("%.2fx", cpu(0)/cpu(1))
	}
	peertest.BenchRow(t, fmt.Sprintf("agent idle CPU over %v (%% of a core)", window), fmt.Sprintf("%.2f", cpu(0)),
		"cupsd idle, one queue", fmt.Sprintf("%.2f", cpu(1)), ratio)
}

type loadResult struct {
	name     string
	rate     float64 // jobs accepted per second
	p50, p99 time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// load submits jobs copies of doc to uri from clients goroutines and times
// each Print-Job until its answer.
func load(t *testing.T, name, uri string, doc []byte, jobs, clients int) loadResult {
	t.Helper()
	var (
		mu    sync.Mutex
		lat   []time.Duration
		wg    sync.WaitGroup
		next  = make(chan int, jobs)
		fails []error
	)
	for i := range jobs {
		next <- i
	}
	close(next)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				err := submitUntilAccepted(uri, doc)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					fails = append(fails, err)
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if len(fails) > 0 {
		t.Fatalf("%s: %d of %d jobs refused, first: %v", name, len(fails), jobs, fails[0])
	}
	slices.Sort(lat)
	return loadResult{
		name: name,
		rate: float64(jobs) / wall.Seconds(),
		p50:  lat[len(lat)/2],
		p99:  lat[(len(lat)*99+99)/100-1],
	}
}

// submitUntilAccepted submits doc as a PC's IPP client does: a printer
// that answers server-error-busy (ippeveprinter takes one job at a time) is
// asked again a moment later, and the job's latency includes the waits.
func submitUntilAccepted(uri string, doc []byte) error {
	for {
		err := submit(uri, doc)
		var se *upstream.StatusError
		if !errors.As(err, &se) || se.Status != goipp.StatusErrorBusy {
			return err
		}
		time.Sleep(100 * time.Millisecond) // the client's retry delay
	}
}

// megabytePDF is a valid one-page A4 PDF of about 1 MB, the weight of a
// scanned attestation: its content stream draws a line and carries 1 MB of
// comments.
func megabytePDF() []byte {
	content := "0 0 m 595 842 l S\n" + strings.Repeat("% relais bench padding ..........................................\n", (1<<20)/64)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(content), content),
	}
	return peertest.PDFObjects(objs)
}
