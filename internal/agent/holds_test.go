package agent

import (
	"context"
	"errors"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// TestHold_expires: a held resource is observed and reported, never
// changed; the hold shows in the status and metrics, survives a restart,
// and ends by itself at its time (the agent polls once an hour: nothing
// but the hold's end makes the change happen), after which the node
// converges. A hold longer than the site allows is refused.
func TestHold_expires(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"), fileRes("/etc/app/other.conf", "o1\n"))})
	n := newNode(t, "n1", s.url, "1h", "")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	cl := NewClient(n.sock)
	ctx := context.Background()

	var ans HoldAnswer
	err := cl.Post(ctx, HoldPath, HoldRequest{IDs: []reconciler.ID{"file:/etc/app/app.conf"}, For: jsondoc.Seconds(25 * time.Hour), Reason: "r", By: "alice"}, &ans)
	if !errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), "24h0m0s at most") {
		t.Fatalf("a 25h hold: %v, want refused", err)
	}
	err = cl.Post(ctx, HoldPath, HoldRequest{IDs: []reconciler.ID{"file:/nowhere"}, For: jsondoc.Seconds(time.Hour), Reason: "r", By: "alice"}, &ans)
	if !errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), "not in the catalog") {
		t.Fatalf("a hold on an unknown resource: %v, want refused", err)
	}
	const holdFor = 3 * time.Second
	if err := cl.Post(ctx, HoldPath, HoldRequest{IDs: []reconciler.ID{"file:/etc/app/app.conf"}, For: jsondoc.Seconds(holdFor), Reason: "load test", By: "alice"}, &ans); err != nil {
		t.Fatal(err)
	}
	placed := time.Now()
	if len(ans.Holds) != 1 || !strings.HasPrefix(ans.Holds[0].By, "alice (as ") || ans.Holds[0].Until.Sub(ans.Holds[0].Since) != holdFor {
		t.Fatalf("holds = %+v", ans.Holds)
	}

	s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"), fileRes("/etc/app/other.conf", "o2\n"))})
	last, err := cl.Run(ctx, RunRequest{}, nil)
	if err != nil || last.Report == nil {
		t.Fatalf("run: %+v, %v", last, err)
	}
	if n.read("/etc/app/app.conf") != "v1\n" || n.read("/etc/app/other.conf") != "o2\n" {
		t.Fatalf("held file %q, other %q: want the held one unchanged, the other changed", n.read("/etc/app/app.conf"), n.read("/etc/app/other.conf"))
	}
	st := n.agent.Status()
	if len(st.Holds) != 1 || st.Holds[0].Reason != "load test" || len(st.Drifted) != 1 ||
		!strings.Contains(st.Drifted[0].Reason, "held by alice (as ") || st.Converged {
		t.Fatalf("status: holds %+v, drifted %+v, converged %v", st.Holds, st.Drifted, st.Converged)
	}
	m, err := cl.Get(ctx, MetricsPath, nil)
	if err != nil || !strings.Contains(string(m), `fsgit_hold_until_timestamp_seconds{resource="file:/etc/app/app.conf"}`) {
		t.Fatalf("metrics lack the hold: %v\n%s", err, m)
	}

	// A restart keeps the hold.
	n.stop()
	n.start()
	waitFor(t, "the hold back after a restart", func() bool { return len(n.agent.Status().Holds) == 1 })
	if n.read("/etc/app/app.conf") != "v1\n" {
		t.Fatal("the held file changed after a restart")
	}

	waitEvery(t, "the hold to end and the file to converge", 50*time.Millisecond, func() bool { return n.read("/etc/app/app.conf") == "v2\n" })
	if d := time.Since(placed); d < holdFor {
		t.Fatalf("the held file changed %s after the hold, before its end (%s)", d, holdFor)
	}
	waitFor(t, "converged without the hold", func() bool { st := n.agent.Status(); return st.Converged && len(st.Holds) == 0 })
	m, _ = cl.Get(ctx, MetricsPath, nil)
	if !strings.Contains(string(m), "fsgit_holds_expired_total 1") || strings.Contains(string(m), "fsgit_hold_until_timestamp_seconds{") {
		t.Fatalf("metrics after the end:\n%s", m)
	}
}

// TestHold_nodeAndRelease: a hold on the node keeps every resource, and
// prunes nothing; release ends it and the node converges at once.
func TestHold_nodeAndRelease(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a1\n"), fileRes("/etc/b", "b1\n"))})
	n := newNode(t, "n1", s.url, "1h", "")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/b") == "b1\n" })
	cl := NewClient(n.sock)
	ctx := context.Background()
	var ans HoldAnswer
	if err := cl.Post(ctx, HoldPath, HoldRequest{Node: true, For: jsondoc.Seconds(time.Hour), Reason: "incident 42", By: "bob"}, &ans); err != nil {
		t.Fatal(err)
	}
	s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a2\n"))})
	if last, err := cl.Run(ctx, RunRequest{}, nil); err != nil || last.Report == nil || last.ExitCode != 2 {
		t.Fatalf("run under a node hold: %+v, %v", last, err)
	}
	if n.read("/etc/a") != "a1\n" || n.read("/etc/b") != "b1\n" {
		t.Fatal("a node hold let a change or a prune through")
	}
	if err := cl.Post(ctx, ReleasePath, ReleaseRequest{Node: true, By: "bob"}, &ans); err != nil || len(ans.Released) != 1 || len(ans.Holds) != 0 {
		t.Fatalf("release: %+v, %v", ans, err)
	}
	waitFor(t, "converged after the release", func() bool { return n.read("/etc/a") == "a2\n" && n.read("/etc/b") == "" })
}

// TestHold_who: the agent records who asks as the kernel says
// (SO_PEERCRED), beside the name the client gives when they differ.
func TestHold_who(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a\n"))})
	n := newNode(t, "n1", s.url, "1h", "")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/a") == "a\n" })
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for claimed, want := range map[string]string{"mallory": "mallory (as " + me.Username + ")", me.Username: me.Username, "": me.Username} {
		var ans HoldAnswer
		if err := NewClient(n.sock).Post(context.Background(), HoldPath, HoldRequest{Node: true, For: jsondoc.Seconds(time.Hour), Reason: "r", By: claimed}, &ans); err != nil {
			t.Fatalf("claimed %q: %v", claimed, err)
		}
		if ans.Holds[0].By != want {
			t.Errorf("claimed %q: recorded %q, want %q", claimed, ans.Holds[0].By, want)
		}
	}
}
