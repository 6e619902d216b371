package agent

import (
	"testing"
	"time"
)

func TestNextPoll_DoublesUpToMaxBackoffPlusJitter(t *testing.T) {
	s := SourceConfig{PollInterval: Duration(30 * time.Second), MaxBackoff: Duration(5 * time.Minute)}
	for failures, want := range []time.Duration{
		30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute,
	} {
		if got := nextPoll(s, failures); got != want {
			t.Fatalf("%d failures: %s, want %s", failures, got, want)
		}
	}
	if got := nextPoll(s, 1000); got != 5*time.Minute {
		t.Fatalf("1000 failures: %s, want the cap", got)
	}
	// A cap below the interval caps the first retry too.
	small := SourceConfig{PollInterval: Duration(time.Second), MaxBackoff: Duration(400 * time.Millisecond)}
	if got := nextPoll(small, 1); got != 400*time.Millisecond {
		t.Fatalf("cap below the interval: %s, want 400ms", got)
	}
	s.Jitter = Duration(10 * time.Second)
	for range 100 {
		if got := nextPoll(s, 2); got < 2*time.Minute || got >= 2*time.Minute+10*time.Second {
			t.Fatalf("2 failures with jitter: %s, want in [2m, 2m10s)", got)
		}
	}
}
