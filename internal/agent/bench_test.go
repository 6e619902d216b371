package agent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
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

// BenchmarkAgent_IdlePoll measures what a poll that finds nothing new costs
// an agent managing 1,000 files (in 10 directories, all watched): CPU time
// of the whole test process per poll (the agent and the test's git
// server), and bytes it wrote to disk (/proc/self/io write_bytes) per
// poll. The agent polls every 100 ms; the benchmark counts the polls its
// source loop started.
func BenchmarkAgent_IdlePoll(b *testing.B) {
	s := newSite(b)
	var rs []reconciler.Resource
	for i := 0; i < 1000; i++ {
		rs = append(rs, fileRes(fmt.Sprintf("/srv/d%d/f%04d.conf", i%10, i), fmt.Sprintf("id = %d\n", i)))
	}
	c := s.push("v", map[string]string{"n1": catalogJSON(b, rs...)})
	n := newNode(b, "n1", s.url, "100ms", "")
	n.start()
	waitFor(b, "first convergence", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c })
	polls := func() uint64 {
		n.agent.mu.Lock()
		defer n.agent.mu.Unlock()
		return n.agent.pollsStarted
	}
	// Let the first polls after convergence pass (the first full check).
	time.Sleep(time.Second)
	for b.Loop() {
		p0, cpu0, w0 := polls(), cpuTime(b), writeBytes(b)
		time.Sleep(3 * time.Second)
		p1, cpu1, w1 := polls(), cpuTime(b), writeBytes(b)
		if p1 == p0 {
			b.Fatal("no poll in 3 s")
		}
		np := float64(p1 - p0)
		b.ReportMetric((cpu1-cpu0).Seconds()*1000/np, "ms-cpu/poll")
		b.ReportMetric(float64(w1-w0)/np, "B-written/poll")
		b.ReportMetric(np, "polls")
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeBytes returns the bytes the process caused to be written to disk.
func writeBytes(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no write_bytes in /proc/self/io")
	return 0
}
