package agent

import (
	"testing"
	"time"
)

// TestWatchdog_PingsOnlyWhenAsked: the watchdog sends nothing by itself;
// ping sends WATCHDOG=1, throttled; off, it does nothing.
func TestWatchdog_PingsOnlyWhenAsked(t *testing.T) {
	var sent []string
	w := &watchdog{every: time.Hour, notify: func(s string) { sent = append(sent, s) }}
	time.Sleep(20 * time.Millisecond)
	if len(sent) != 0 {
		t.Fatalf("sent %v without a ping", sent)
	}
	w.ping()
	w.ping()
	if len(sent) != 1 || sent[0] != "WATCHDOG=1" {
		t.Fatalf("sent %v, want one WATCHDOG=1 (the second ping is within a second)", sent)
	}
	off := &watchdog{}
	off.ping()
	if off.due() != nil {
		t.Fatal("an off watchdog wakes the loop")
	}
	var nilW *watchdog
	nilW.ping()
}
