package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngine_Held: a held resource is observed and its drift reported
// with the hold's sentence, never changed; the refresh a change owes it
// waits for the hold's end, and happens on the first run after it.
func TestEngine_Held(t *testing.T) {
	h := newHarness(t)
	svc := ID("tservice:mariadb")
	cat := catalog(res("tfile:/a.cnf", spec{"content": "a"}, notifies(svc)), res(string(svc), nil))
	e := h.engine(Config{})
	first := mustRun(t, e, cat, RunOptions{Root: h.root})

	cat2 := catalog(res("tfile:/a.cnf", spec{"content": "a2"}, notifies(svc)), res(string(svc), nil))
	hold := "held by alice until 2026-12-06T14:00:00Z: load test"
	held := mustRun(t, e, cat2, RunOptions{Root: h.root, Prior: first.Next, Held: map[ID]string{"tfile:/a.cnf": hold, svc: hold}})
	a := result(t, held, "tfile:/a.cnf")
	if a.Outcome != Drifted || a.Reason != hold || len(a.Changes) == 0 {
		t.Fatalf("held file: %+v, want drifted with the hold's sentence", a)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, "a.cnf")); string(b) != "a" {
		t.Fatalf("held file changed to %q", b)
	}

	// The file released, the service still held: the file changes, the
	// service's restart waits and is owed.
	partly := mustRun(t, e, cat2, RunOptions{Root: h.root, Prior: held.Next, Held: map[ID]string{svc: hold}})
	if got := result(t, partly, "tfile:/a.cnf").Outcome; got != Changed {
		t.Fatalf("released file: %s, want changed", got)
	}
	s := result(t, partly, svc)
	if s.Refreshed || !strings.Contains(s.Reason, "refresh waits for the hold's end") || h.rec.count("refresh "+string(svc)) != 1 {
		t.Fatalf("held service: %+v (refreshes %d), want its refresh waiting", s, h.rec.count("refresh "+string(svc)))
	}
	if _, owed := partly.Next.Refresh[svc]; !owed {
		t.Fatalf("the held service's refresh is not owed: %v", partly.Next.Refresh)
	}
	after := mustRun(t, e, cat2, RunOptions{Root: h.root, Prior: partly.Next})
	if !result(t, after, svc).Refreshed || h.rec.count("refresh "+string(svc)) != 2 {
		t.Fatalf("the owed refresh did not happen after the hold")
	}
}
