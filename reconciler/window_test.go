package reconciler

import (
	"strings"
	"testing"
	"time"
)

// TestOpen: windows by day and time of day, across midnight, in a time
// zone; the next opening when closed; no window is always open.
func TestOpen(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	night := []Window{{Days: []string{"sat", "sun"}, Start: "22:00", End: "04:00", Timezone: "Europe/Paris"}}
	for _, c := range []struct {
		t    string
		open bool
		next string
	}{
		{"2026-12-05T21:30:00Z", true, ""},                      // Sat 22:30 Paris
		{"2026-12-06T02:59:00Z", true, ""},                      // Sun 03:59 Paris, Saturday's window
		{"2026-12-06T03:00:00Z", false, "2026-12-06T21:00:00Z"}, // Sun 04:00 Paris: closed until Sun 22:00
		{"2026-12-07T12:00:00Z", false, "2026-12-12T21:00:00Z"}, // Monday: next Saturday
	} {
		open, next := Open(night, at(c.t))
		if open != c.open || (c.next != "" && !next.Equal(at(c.next))) {
			t.Errorf("at %s: open %v next %s, want %v %s", c.t, open, next.UTC().Format(time.RFC3339), c.open, c.next)
		}
	}
	if open, _ := Open(nil, time.Now()); !open {
		t.Error("no window: not open")
	}
	if err := (Window{Start: "25:00", End: "01:00"}).Check(); err == nil {
		t.Error("25:00 accepted")
	}
}

// TestEngine_Waiting: outside the window a disruptive change and a
// restart wait (the restart is owed); a safe change runs; in the window
// both run.
func TestEngine_Waiting(t *testing.T) {
	h := newHarness(t)
	svc := ID("tservice:mariadb")
	cat := catalog(res("tfile:/a.cnf", spec{"content": "a"}, notifies(svc)), res(string(svc), nil),
		res("tfile:/old", spec{"content": "x"}))
	e := h.engine(Config{})
	first := mustRun(t, e, cat, RunOptions{Root: h.root})
	cat2 := catalog(res("tfile:/a.cnf", spec{"content": "a2"}, notifies(svc)), res(string(svc), nil),
		res("tfile:/old", spec{"content": "x2", "destructive": true}, func(r *Resource) { r.AllowDestroy = true }))
	const why = "disruptive change waits for the maintenance window (opens 2026-12-06T22:00:00Z)"
	rep := mustRun(t, e, cat2, RunOptions{Root: h.root, Prior: first.Next, Waiting: why})
	if got := result(t, rep, "tfile:/a.cnf").Outcome; got != Changed {
		t.Fatalf("safe change: %s, want changed", got)
	}
	old := result(t, rep, "tfile:/old")
	if old.Outcome != Drifted || old.Reason != why {
		t.Fatalf("disruptive change: %+v, want drifted, waiting", old)
	}
	s := result(t, rep, svc)
	if s.Refreshed || !strings.Contains(s.Reason, "restart waits") || rep.Next.Refresh[svc] == nil {
		t.Fatalf("restart outside the window: %+v, owed %v", s, rep.Next.Refresh)
	}
	in := mustRun(t, e, cat2, RunOptions{Root: h.root, Prior: rep.Next})
	if !result(t, in, svc).Refreshed || result(t, in, "tfile:/old").Outcome != Changed {
		t.Fatal("in the window: the restart or the disruptive change did not run")
	}
}
