package agent

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestRollback_gitDown: with the git server stopped, the node rolls back
// to the catalog it applied before, from its state file, and stays there:
// a newer commit does not undo the pin, nor does a restart; the release
// returns it to the branch's newest commit.
func TestRollback_gitDown(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "1h", "")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	cl := NewClient(n.sock)
	ctx := context.Background()
	c2 := s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"), fileRes("/etc/app/new.conf", "n\n"))})
	if last, err := cl.Run(ctx, RunRequest{}, nil); err != nil || last.Report == nil || last.Report.Revision != c2 {
		t.Fatalf("run to c2: %+v, %v", last, err)
	}

	s.srv.Stop()
	var notes []string
	last, err := cl.Run(ctx, RunRequest{Rollback: &RollbackRequest{Previous: true, Reason: "bad deploy", By: "alice"}},
		func(ev RunEvent) { notes = append(notes, ev.Note) })
	if err != nil || last.Report == nil || last.Report.Revision != c1 {
		t.Fatalf("rollback: %+v, %v", last, err)
	}
	if n.read("/etc/app/app.conf") != "v1\n" || n.read("/etc/app/new.conf") != "" {
		t.Fatalf("after the rollback: app.conf %q, new.conf %q", n.read("/etc/app/app.conf"), n.read("/etc/app/new.conf"))
	}
	st := n.agent.Status()
	if st.Pinned == nil || st.Pinned.Revision != c1 || !strings.HasPrefix(st.Pinned.By, "alice (as ") || st.AppliedRevision != c1 ||
		!strings.Contains(statusLine(&st), "rolled back by hand to "+c1[:12]+" because bad deploy") {
		t.Fatalf("status after the rollback: pinned %+v, applied %s, line %q", st.Pinned, st.AppliedRevision, statusLine(&st))
	}
	if !strings.Contains(strings.Join(notes, "\n"), "rolled back by hand to") {
		t.Fatalf("notes streamed: %q", notes)
	}

	// Git back, a newer commit: the pin holds.
	s.srv.Start()
	c3 := s.push("v3", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v3\n"))})
	if last, err := cl.Run(ctx, RunRequest{}, nil); err != nil || last.Report == nil || last.Report.Revision != c1 {
		t.Fatalf("run while pinned: %+v, %v; want c1 again", last, err)
	}
	if n.read("/etc/app/app.conf") != "v1\n" || n.agent.Status().DesiredRevision != c3 {
		t.Fatalf("while pinned: app.conf %q, desired %s", n.read("/etc/app/app.conf"), n.agent.Status().DesiredRevision)
	}
	n.stop()
	n.start()
	waitFor(t, "pinned again after a restart", func() bool { p := n.agent.Status().Pinned; return p != nil && p.Revision == c1 })
	waitFor(t, "the socket", func() bool { _, err := os.Stat(n.sock); return err == nil })
	if last, err := NewClient(n.sock).Run(ctx, RunRequest{}, nil); err != nil || last.Report.Revision != c1 || n.read("/etc/app/app.conf") != "v1\n" {
		t.Fatalf("run after a restart while pinned: %+v, %v", last, err)
	}

	last, err = NewClient(n.sock).Run(ctx, RunRequest{Rollback: &RollbackRequest{Release: true, By: "alice"}}, nil)
	if err != nil || last.Report == nil || last.Report.Revision != c3 {
		t.Fatalf("release: %+v, %v; want c3", last, err)
	}
	if n.read("/etc/app/app.conf") != "v3\n" || n.agent.Status().Pinned != nil {
		t.Fatalf("after the release: %q, pinned %+v", n.read("/etc/app/app.conf"), n.agent.Status().Pinned)
	}
}
