package fleetsim

import (
	"context"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/status"
)

// TestRunFleet runs a small fleet in each layout: every node converges on
// the second commit and its status lands; in the refs layout, with one
// push per node.
func TestRunFleet(t *testing.T) {
	for _, layout := range []string{status.LayoutBranch, status.LayoutRefs} {
		t.Run(layout, func(t *testing.T) {
			res, err := RunFleet(context.Background(), Fleet{Nodes: 5, Interval: time.Second, Jitter: 500 * time.Millisecond,
				Idle: 2 * time.Second, Layout: layout, Timeout: 2 * time.Minute, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Note != "" || res.Converged[3] == 0 || res.Landed == 0 {
				t.Fatalf("result: %+v", res)
			}
			if layout == status.LayoutRefs && res.PushesPerNode != 1 {
				t.Fatalf("refs layout: %.2f pushes per node, want 1", res.PushesPerNode)
			}
			if res.IdleRequestsPerSecond == 0 {
				t.Fatalf("no idle polls measured: %+v", res)
			}
			t.Logf("%+v", res)
		})
	}
}

// BenchmarkFleet runs 100 agents with the refs layout and reports the
// figures of one simulation (scripts/fleet-sim.sh runs the larger ones).
func BenchmarkFleet(b *testing.B) {
	for b.Loop() {
		res, err := RunFleet(context.Background(), Fleet{Nodes: 100, Interval: 10 * time.Second, Jitter: 5 * time.Second,
			Idle: 20 * time.Second, Layout: status.LayoutRefs, Timeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.IdleRequestsPerSecond, "idle-req/s")
		b.ReportMetric(res.Converged[3].Seconds(), "s-all-converged")
		b.ReportMetric(res.Landed.Seconds(), "s-all-landed")
		b.ReportMetric(res.PushesPerNode, "pushes/node")
		b.ReportMetric(res.FleetRead.Seconds(), "s-fleet-read")
	}
}
