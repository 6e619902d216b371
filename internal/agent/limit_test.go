package agent

import (
	"testing"
	"time"
)

func TestCorrections(t *testing.T) {
	c := newCorrections(2, time.Minute)
	t0 := time.Unix(1000, 0)
	for i, tc := range []struct {
		at     time.Duration
		allow  bool
		record bool
	}{
		{0, true, true},
		{time.Second, true, true},
		{2 * time.Second, false, false},
		{59 * time.Second, false, false},
		{60 * time.Second, true, true}, // the first left the window
		{61 * time.Second, true, true}, // and the second
		{62 * time.Second, false, false},
	} {
		now := t0.Add(tc.at)
		if got := c.allow("file:/x", now); got != tc.allow {
			t.Fatalf("step %d at +%v: allow = %v, want %v", i, tc.at, got, tc.allow)
		}
		if tc.record {
			c.record("file:/x", now)
		}
	}
	if !c.allow("file:/other", t0) {
		t.Fatal("limits leak between resources")
	}
}
