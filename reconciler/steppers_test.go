package reconciler

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSteppers: steps one after another share one goroutine; a step that
// does not end (abandoned by contain) does not hold the next one back;
// closing ends the idle goroutines, and the stuck one when its step ends.
func TestSteppers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := &steppers{}
	for i := range 100 {
		done := make(chan int)
		p.run(func() { done <- i })
		if got := <-done; got != i {
			t.Fatalf("step %d ran %d", i, got)
		}
	}
	// A goroutine goes back to the idle ones just after its step.
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) == 1 })
	if p.started != 1 {
		t.Fatalf("100 steps in turn started %d goroutines, want 1", p.started)
	}
	stuck, release := make(chan struct{}), make(chan struct{})
	p.run(func() { close(stuck); <-release })
	<-stuck
	var wg sync.WaitGroup
	wg.Add(1)
	p.run(wg.Done)
	wg.Wait()
	if p.started != 2 {
		t.Fatalf("a step beside a stuck one: %d goroutines started, want 2", p.started)
	}
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) == 1 })
	p.close()
	close(release)
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
	// Steps after the close still run, each on a goroutine that leaves.
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

// waitFor waits for cond, failing after a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after a minute")
		}
	}
}
