package docker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/fsgit/fsgit/reconciler"
)

func TestLimiter(t *testing.T) {
	var mu sync.Mutex
	var got []time.Time
	l := newLimiter(2, 100*time.Millisecond, func(reconciler.ID) {
		mu.Lock()
		got = append(got, time.Now())
		mu.Unlock()
	})
	defer l.stop()
	start := time.Now()
	for range 10 {
		l.notify("docker.container:x")
	}
	l.notify("docker.container:other") // its own bucket
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	// 2 at once for x, 1 for other, then exactly one deferred delivery for
	// the 8 dropped ones (not 8).
	if len(got) != 4 {
		t.Fatalf("%d deliveries, want 4 (burst 2 + other 1 + one deferred)", len(got))
	}
	if d := got[3].Sub(start); d < 50*time.Millisecond {
		t.Errorf("deferred delivery after %s, want after the refill", d)
	}
}

// watcher returns the container kind that a Typed wraps, for its Watch.
func watcher(k *reconciler.Typed[ContainerSpec]) *Container { return k.Impl().(*Container) }

// watchAndCorrect runs Watch with an onChange that plans and applies the
// resource, as the agent does.
func watchAndCorrect(tb testing.TB, k *reconciler.Typed[ContainerSpec], r *reconciler.Resource) (corrections *atomic.Int64, stop func()) {
	tb.Helper()
	c, _, stop := watchAndCorrectTimed(tb, k, r)
	return c, stop
}

// watchAndCorrectTimed is watchAndCorrect that also records when onChange
// was last called (unix nanoseconds).
func watchAndCorrectTimed(tb testing.TB, k *reconciler.Typed[ContainerSpec], r *reconciler.Resource) (corrections, notified *atomic.Int64, stop func()) {
	tb.Helper()
	corrections, notified = &atomic.Int64{}, &atomic.Int64{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = watcher(k).Watch(ctx, slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug})), func(id reconciler.ID) {
			if id != r.ID {
				return
			}
			notified.Store(time.Now().UnixNano())
			env := newEnv(nil, nil)
			p, err := k.Plan(ctx, env, r)
			if err != nil || !p.HasChanges() {
				return
			}
			if err := p.Apply(ctx); err == nil {
				corrections.Add(1)
			}
		})
	}()
	time.Sleep(300 * time.Millisecond) // let the stream connect
	return corrections, notified, func() { cancel(); <-done }
}

// waitRunning polls the engine until the container runs with a new start
// time; it returns how long that took.
func waitRunning(tb testing.TB, k *kinds, st *stack, oldStarted string, limit time.Duration) time.Duration {
	tb.Helper()
	cl := dockerClient(tb)
	start := time.Now()
	for time.Since(start) < limit {
		c, err := cl.ContainerInspect(context.Background(), st.ctrName)
		if err == nil && c.State.Running && c.State.StartedAt != oldStarted {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("container %s not running again within %s", st.ctrName, limit)
	return 0
}

func TestContainer_WatchCorrectsKilledAndRemoved(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	// restart "no": Docker itself must not be the one that restarts it.
	r := st.with(t, "restart", "no", "healthcheck", nil)
	st.converge(t, k, nil, r)
	corrections, stop := watchAndCorrect(t, k.container, r)
	defer stop()

	_, started, _ := inspect(t, cl, st.ctrName)
	if err := cl.ContainerKill(context.Background(), st.ctrName, "KILL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed container running again after %s", waitRunning(t, k, st, started, 30*time.Second))

	_, started, _ = inspect(t, cl, st.ctrName)
	if err := cl.ContainerRemove(context.Background(), st.ctrName, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed container running again after %s", waitRunning(t, k, st, started, 30*time.Second))
	// Apply returns a little after the container runs; then echoes of
	// fsgit's own changes must not start a loop of corrections.
	time.Sleep(time.Second)
	n := corrections.Load()
	if n < 2 {
		t.Errorf("%d corrections, want at least 2", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if m := corrections.Load(); m != n {
		t.Errorf("corrections went on by themselves: %d -> %d", n, m)
	}
}

// BenchmarkWatch_CorrectKilled measures from `docker kill` to the container
// running again, corrected through the events path (no poll).
func BenchmarkWatch_CorrectKilled(b *testing.B) {
	cl := dockerClient(b)
	st := newBenchStack(b)
	k := newKinds(b)
	watcher(k.container).EventBurst, watcher(k.container).EventEvery = 1000, time.Millisecond
	r := st.ctr
	env := newEnv(nil, nil)
	apply(b, k.network, env, st.net)
	apply(b, k.container, env, r)
	_, notified, stop := watchAndCorrectTimed(b, k.container, r)
	defer stop()
	var total, toEvent time.Duration
	b.ResetTimer()
	for range b.N {
		_, started, _ := inspect(b, cl, st.ctrName)
		killed := time.Now()
		if err := cl.ContainerKill(context.Background(), st.ctrName, "KILL"); err != nil {
			b.Fatal(err)
		}
		total += waitRunning(b, k, st, started, 30*time.Second)
		toEvent += time.Unix(0, notified.Load()).Sub(killed)
		time.Sleep(600 * time.Millisecond) // past the busy grace period
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/correction")
	b.ReportMetric(float64(toEvent.Microseconds())/1000/float64(b.N), "ms/kill-to-notify")
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// BenchmarkContainer_PlanQuiet measures one run's observation of a
// converged container (list, inspect, image inspect, diff): the cost of a
// quiet poll for this kind.
func BenchmarkContainer_PlanQuiet(b *testing.B) {
	st := newBenchStack(b)
	k := newKinds(b)
	env := newEnv(nil, nil)
	apply(b, k.network, env, st.net)
	apply(b, k.container, env, st.ctr)
	b.ResetTimer()
	for range b.N {
		p, err := k.container.Plan(context.Background(), newEnv(nil, nil), st.ctr)
		if err != nil || p.HasChanges() {
			b.Fatalf("%v %+v", err, p)
		}
	}
}

// A container that crashes at once (the stand-in refuses -dims 1) cannot
// spin the reconciler: Watch's notifications stay within the token bucket.
func TestContainer_WatchCrashLoopIsRateLimited(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	watcher(k.container).EventBurst, watcher(k.container).EventEvery = 2, time.Second
	crashing := st.with(t, "command", []string{"-dims", "1"}, "restart", "no", "healthcheck", nil)
	env := newEnv(nil, nil)
	apply(t, k.network, env, st.net)
	apply(t, k.volume, env, st.vol)
	p, err := k.container.Plan(context.Background(), env, crashing)
	if err != nil {
		t.Fatal(err)
	}
	// It may die before or after Apply looks: either way it exits.
	_ = p.Apply(context.Background())
	var mu sync.Mutex
	var calls []time.Time
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = watcher(k.container).Watch(ctx, nil, func(id reconciler.ID) {
			if ctx.Err() != nil || id != crashing.ID {
				return
			}
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			p, err := k.container.Plan(ctx, newEnv(nil, nil), crashing)
			if err == nil && p.HasChanges() {
				_ = p.Apply(ctx) // fails or dies again
			}
		})
	}()
	time.Sleep(300 * time.Millisecond)
	// Kick it once by hand: start it, it dies, the loop begins.
	_ = cl.ContainerStart(context.Background(), st.ctrName, container.StartOptions{})
	const window = 4 * time.Second
	time.Sleep(window)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	n := len(calls)
	if n < 3 {
		t.Fatalf("%d notifications in %s of crash loop, want at least 3", n, window)
	}
	// A token bucket of 2, refilled once a second, allows at most 2 plus
	// one per second of the span between the first and the last call.
	span := calls[n-1].Sub(calls[0])
	if limit := 2 + int(span/time.Second) + 1; n > limit {
		t.Errorf("%d notifications over %s, more than the bucket allows (%d)", n, span, limit)
	}
	t.Logf("%d notifications over %s of crash loop", n, span.Round(time.Millisecond))
}
