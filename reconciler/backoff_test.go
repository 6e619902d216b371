package reconciler

import (
	"testing"
	"time"
)

func TestRetryBackOff_EqualJitterCapped(t *testing.T) {
	first, maxDelay := 100*time.Millisecond, 1600*time.Millisecond
	for run := range 200 {
		b := RetryBackOff(first, maxDelay)
		for n := range 10 {
			d := min(maxDelay, first<<n)
			got := b.NextBackOff()
			if got < d/2 || got > d {
				t.Fatalf("run %d, wait %d: %s, want in [%s, %s]", run, n, got, d/2, d)
			}
		}
		b.Reset()
		if got := b.NextBackOff(); got < first/2 || got > first {
			t.Fatalf("after Reset: %s, want in [%s, %s]", got, first/2, first)
		}
	}
}

func TestRetryBackOff_Jittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[RetryBackOff(time.Second, time.Minute).NextBackOff()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 first waits took %d values: not jittered", len(seen))
	}
}
