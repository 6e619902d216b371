package agent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"
)

// BenchmarkAgent_PushToConverged measures the time from a push to the node
// reporting itself converged on it, with a 2 s poll interval (and a jitter
// of a fifth of it). Each push comes at a random moment of the poll cycle,
// as a person's would.
func BenchmarkAgent_PushToConverged(b *testing.B) {
	s := newSite(b)
	c := s.push("v0", map[string]string{"n1": catalogJSON(b, fileRes("/etc/a", "v0\n"))})
	n := newNode(b, "n1", s.url, "2s", "")
	n.start()
	waitFor(b, "first convergence", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c })
	var total, worst time.Duration
	i := 0
	for b.Loop() {
		i++
		v := fmt.Sprintf("v%d\n", i)
		b.StopTimer()
		time.Sleep(rand.N(2 * time.Second))
		b.StartTimer()
		c := s.push(v, map[string]string{"n1": catalogJSON(b, fileRes("/etc/a", v))})
		start := time.Now()
		waitEvery(b, "convergence", time.Millisecond, func() bool {
			st := n.agent.Status()
			return st.Converged && st.AppliedRevision == c
		})
		d := time.Since(start)
		total += d
		worst = max(worst, d)
	}
	b.ReportMetric(total.Seconds()/float64(i), "s-mean")
	b.ReportMetric(worst.Seconds(), "s-max")
}

// BenchmarkAgent_DriftToCorrected measures the time from a hand edit of a
// managed file to the file being correct again, through the watch (the
// poll interval is an hour).
func BenchmarkAgent_DriftToCorrected(b *testing.B) {
	s := newSite(b)
	c := s.push("v", map[string]string{"n1": catalogJSON(b, fileRes("/etc/app/app.conf", "managed\n"))})
	n := newNode(b, "n1", s.url, "1h", `drift: maxCorrections: 1000000`)
	n.start()
	waitFor(b, "first convergence", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c })
	p := n.path("/etc/app/app.conf")
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := os.WriteFile(p, []byte("hand edit\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		for {
			if got, _ := os.ReadFile(p); string(got) == "managed\n" {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("not corrected")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "ms-p50")
	b.ReportMetric(q(0.99), "ms-p99")
	b.ReportMetric(q(1), "ms-max")
}
