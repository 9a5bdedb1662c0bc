package dashboard

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// BenchmarkFleetLive measures the live part of the fleet page for a fleet
// of 1000 agents, one in ten with a fault: what each open page fetches
// after an update. "changed" renders it after each change; "cached" is
// what the other open pages get for the same change.
func BenchmarkFleetLive(b *testing.B) {
	e := newEnv(b, envOptions{})
	for i := range 1000 {
		site, agent := fmt.Sprintf("site-%03d", i/2), fmt.Sprintf("agent-%d", i%2)
		e.agent(site, agent)
		var faults []api.Fault
		if i%10 == 0 {
			faults = append(faults, fault(api.DevicePrinter, "media-empty", api.SeverityFault, t0.Add(-time.Hour)))
		}
		e.status(site, agent, t0.Add(-time.Minute), faults...)
	}
	c := e.loggedIn("tech", store.Technician)
	for _, bc := range []struct {
		name    string
		changed bool
	}{{"changed", true}, {"cached", false}} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				if bc.changed {
					e.d.Changed("site-000", "agent-0")
				}
				r := c.get("/fleet/live")
				if r.code != http.StatusOK {
					b.Fatalf("GET /fleet/live: %d", r.code)
				}
				size = len(r.body)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
