package state

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
)

// TestRun_roundTrip: a history entry reads back exactly, every field
// filled.
func TestRun_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[Run](t, jsondoctest.Options{})
}

// TestRun_legacyDuration: an entry written before durations were seconds
// (nanoseconds under "duration") keeps its duration.
func TestRun_legacyDuration(t *testing.T) {
	var r Run
	if err := json.Unmarshal([]byte(`{"seq":3,"started":"2026-01-02T03:04:05Z","duration":224635483,"exitCode":2}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Duration.D() != 224635483*time.Nanosecond || r.Seq != 3 || r.ExitCode != 2 {
		t.Fatalf("legacy entry read as %+v", r)
	}
	b, _ := json.Marshal(r)
	var back Run
	if err := json.Unmarshal(b, &back); err != nil || back.Duration != r.Duration {
		t.Fatalf("rewritten entry %s read back as %v, %v", b, back.Duration, err)
	}
}
