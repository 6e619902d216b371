package status

import (
	"testing"
	"time"
)

func TestPublishBackOff_FullJitterCapped(t *testing.T) {
	base, maxDelay := 250*time.Millisecond, 8*time.Second
	var sum [12]time.Duration
	const runs = 300
	for range runs {
		b := publishBackOff(base, maxDelay)
		for n := range len(sum) {
			d := min(maxDelay, base<<n)
			got := b.NextBackOff()
			if got < 0 || got > d {
				t.Fatalf("wait %d: %s, want in [0, %s]", n, got, d)
			}
			sum[n] += got
		}
	}
	// Full jitter: the mean is about half the bound, far below it.
	if mean := sum[len(sum)-1] / runs; mean < maxDelay/4 || mean > maxDelay*3/4 {
		t.Fatalf("mean capped wait %s, want about %s", mean, maxDelay/2)
	}
}
