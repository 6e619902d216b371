package agent

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// windowCatalog is a test catalog with maintenance windows.
func windowCatalog(tb testing.TB, ws []reconciler.Window, rs ...reconciler.Resource) string {
	tb.Helper()
	b, err := json.Marshal(reconciler.Catalog{Resources: rs, Windows: ws})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// absentRes is a file resource to remove (a destructive change, allowed).
func absentRes(p string) reconciler.Resource {
	spec, _ := json.Marshal(map[string]string{"path": p, "ensure": "absent"})
	return reconciler.Resource{ID: reconciler.ID("file:" + p), Spec: spec, AllowDestroy: true}
}

// windowFrom is a window from now+from to now+from+1h, UTC, to the second.
func windowFrom(from time.Duration) []reconciler.Window {
	start := time.Now().UTC().Add(from)
	return []reconciler.Window{{Start: start.Format("15:04:05"), End: start.Add(time.Hour).Format("15:04:05")}}
}

// TestWindow_waitsOpensOverride: outside the maintenance window a safe
// change runs and a destructive one waits, shown as waiting; fsgit run
// --now needs a reason, runs it and records the reason; a window that
// opens during the test runs what waited, with no poll (once an hour).
func TestWindow_waitsOpensOverride(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a1\n"), fileRes("/etc/b", "b1\n"))})
	n := newNode(t, "n1", s.url, "1h", "watch: enabled: false")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/b") == "b1\n" })
	cl := NewClient(n.sock)
	ctx := context.Background()

	s.push("v2", map[string]string{"n1": windowCatalog(t, windowFrom(2*time.Hour), fileRes("/etc/a", "a2\n"), absentRes("/etc/b"))})
	last, err := cl.Run(ctx, RunRequest{}, nil)
	if err != nil || last.Report == nil {
		t.Fatalf("run: %+v, %v", last, err)
	}
	if n.read("/etc/a") != "a2\n" || n.read("/etc/b") != "b1\n" {
		t.Fatalf("outside the window: a %q, b %q; want the safe change only", n.read("/etc/a"), n.read("/etc/b"))
	}
	st := n.agent.Status()
	if len(st.Drifted) != 1 || st.Drifted[0].ID != "file:/etc/b" || !strings.Contains(st.Drifted[0].Reason, "waits for the maintenance window opening") {
		t.Fatalf("drifted = %+v, want file:/etc/b waiting", st.Drifted)
	}
	if last, _ := cl.Run(ctx, RunRequest{Now: true}, nil); last == nil || !strings.Contains(last.Error, "needs a reason") {
		t.Fatalf("--now without a reason: %+v", last)
	}
	if last, err := cl.Run(ctx, RunRequest{Now: true, Reason: "disk full, b must go"}, nil); err != nil || last.Report == nil {
		t.Fatalf("--now: %+v, %v", last, err)
	}
	if _, err := os.Stat(n.path("/etc/b")); !os.IsNotExist(err) {
		t.Fatalf("--now left /etc/b: %v", err)
	}
	var runs []struct {
		Trigger string `json:"trigger"`
		Note    string `json:"note"`
	}
	if _, err := cl.Get(ctx, HistoryPath+"?n=1", &runs); err != nil || len(runs) != 1 || runs[0].Note != "disk full, b must go" {
		t.Fatalf("history: %+v, %v; want the reason recorded", runs, err)
	}

	// b back, then removed again, with a window opening in 10s (time for
	// the run before it on a slow machine).
	s.push("v3", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a2\n"), fileRes("/etc/b", "b3\n"))})
	if _, err := cl.Run(ctx, RunRequest{}, nil); err != nil || n.read("/etc/b") != "b3\n" {
		t.Fatalf("v3: b %q, %v", n.read("/etc/b"), err)
	}
	s.push("v4", map[string]string{"n1": windowCatalog(t, windowFrom(10*time.Second), fileRes("/etc/a", "a2\n"), absentRes("/etc/b"))})
	if _, err := cl.Run(ctx, RunRequest{}, nil); err != nil || n.read("/etc/b") != "b3\n" {
		t.Fatalf("v4 before its window: b %q, %v", n.read("/etc/b"), err)
	}
	waitFor(t, "the window to open and b to go", func() bool { _, err := os.Stat(n.path("/etc/b")); return os.IsNotExist(err) })
	waitFor(t, "converged in the window", func() bool { return n.agent.Status().Converged })
}
