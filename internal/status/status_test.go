package status

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

func TestNode_Update(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &reconciler.Report{Node: "db1", Revision: "abc", Started: t0, Duration: jsondoc.Seconds(time.Second), Results: []reconciler.Result{
		{ID: "file:/a", Outcome: reconciler.Unchanged},
		{ID: "file:/b", Outcome: reconciler.Drifted, Changes: []reconciler.Change{{Field: "content", Before: "sha256:1", After: "sha256:2"}}},
		{ID: "mariadb.user:x@localhost", Outcome: reconciler.Failed, Error: "connect: refused"},
		{ID: "mariadb.database:old", Outcome: reconciler.PendingDestroy, Reason: "allowDestroy is false"},
	}}
	n := &Node{Node: "db1", DesiredRevision: "abc"}
	n.Update(rep, rep.Results, "commit", t0)
	if n.Converged || n.AppliedRevision != "" || len(n.Drifted) != 1 || len(n.Failed) != 1 || len(n.PendingDestroy) != 1 {
		t.Fatalf("node = %+v", n)
	}
	if n.LastRun.Counts[reconciler.Unchanged] != 1 || n.LastRun.ExitCode != 6 || n.Failed[0].Reason != "connect: refused" {
		t.Fatalf("last run = %+v, failed = %+v", n.LastRun, n.Failed)
	}
	if !n.Since.Equal(t0) {
		t.Fatalf("since = %v", n.Since)
	}

	clean := &reconciler.Report{Node: "db1", Revision: "abc", Results: []reconciler.Result{{ID: "file:/a", Outcome: reconciler.Unchanged}}}
	t1 := t0.Add(time.Hour)
	n.Update(clean, clean.Results, "poll", t1)
	if !n.Converged || n.AppliedRevision != "abc" || !n.Since.Equal(t1) || n.Drifted != nil || n.Failed != nil {
		t.Fatalf("after a clean run: %+v", n)
	}
	n.Update(clean, clean.Results, "poll", t1.Add(time.Hour))
	if !n.Since.Equal(t1) {
		t.Fatalf("since moved on a run that did not change convergence: %v", n.Since)
	}

	// A run over one resource updates the view, not the applied revision.
	one := &reconciler.Report{Node: "db1", Revision: "abc", Only: []reconciler.ID{"file:/b"},
		Results: []reconciler.Result{{ID: "file:/b", Outcome: reconciler.Drifted}}}
	view := []reconciler.Result{{ID: "file:/a", Outcome: reconciler.Unchanged}, one.Results[0]}
	n.Update(one, view, "watch", t1)
	if n.Converged || len(n.Drifted) != 1 || n.LastRun.Counts[reconciler.Drifted] != 1 || n.LastRun.Counts[reconciler.Unchanged] != 0 {
		t.Fatalf("after a drift report: %+v %+v", n, n.LastRun)
	}

	n.DesiredRevision = "def"
	n.Update(clean, clean.Results, "poll", t1)
	if n.Converged {
		t.Fatal("converged while the applied revision is not the desired one")
	}
}

func TestNode_Fingerprint(t *testing.T) {
	base := func() *Node {
		return &Node{Node: "n", AppliedRevision: "a", DesiredRevision: "a", Converged: true, Source: Source{Reachable: true},
			LastRun: &Run{Started: time.Unix(1, 0), Duration: jsondoc.Seconds(time.Second), Counts: map[reconciler.Outcome]int{reconciler.Unchanged: 3}}}
	}
	fp := base().Fingerprint()
	cases := []struct {
		name   string
		mutate func(*Node)
		same   bool
	}{
		{"times and durations", func(n *Node) {
			n.Updated = time.Now()
			n.LastRun.Started = time.Now()
			n.LastRun.Duration = jsondoc.Seconds(time.Minute)
			n.Since = time.Now()
			n.Source.LastSuccess = time.Now()
		}, true},
		{"drift", func(n *Node) { n.Drifted = []Item{{ID: "file:/x"}} }, false},
		{"failure reason", func(n *Node) { n.Failed = []Item{{ID: "file:/x", Reason: "boom"}} }, false},
		{"source down", func(n *Node) { n.Source.Reachable = false }, false},
		{"new revision", func(n *Node) { n.DesiredRevision = "b" }, false},
		{"refusal", func(n *Node) { n.Refuse("c", "unsigned", time.Now()) }, false},
		{"run error", func(n *Node) { n.LastRun.Error = "load: bad cue" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.mutate(n)
			if got := n.Fingerprint() == fp; got != tc.same {
				t.Fatalf("same fingerprint = %v, want %v", got, tc.same)
			}
		})
	}
}

func TestNode_Refuse(t *testing.T) {
	n := &Node{}
	for i := range 8 {
		n.Refuse(string(rune('a'+i)), "unsigned", time.Now())
	}
	n.Refuse("h", "again", time.Now())
	if len(n.Refused) != 5 || n.Refused[0].Commit != "h" || n.Refused[4].Commit != "d" {
		t.Fatalf("refused = %+v", n.Refused)
	}
}

// TestReadFleetFS: the documents of a status tree, sorted; one that does
// not decode is kept with Unreadable set and named in the error; files
// that are not documents are left out.
func TestReadFleetFS(t *testing.T) {
	b, _ := (&Node{Node: "b", Converged: true}).Marshal()
	a, _ := (&Node{Node: "a"}).Marshal()
	fsys := fstest.MapFS{
		"nodes/b.json":   {Data: b},
		"nodes/a.json":   {Data: a},
		"nodes/bad.json": {Data: []byte("{")},
		"nodes/README":   {Data: []byte("x")},
	}
	nodes, err := ReadFleetFS(fsys)
	if err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("error %v, want one naming bad.json", err)
	}
	if len(nodes) != 3 || nodes[0].Node != "a" || nodes[1].Node != "b" || !nodes[1].Converged || nodes[2].Node != "bad" || nodes[2].Unreadable == "" {
		t.Fatalf("nodes %+v", nodes)
	}
	if nodes, err := ReadFleetFS(fstest.MapFS{}); err != nil || nodes != nil {
		t.Fatalf("no nodes directory: %v, %v", nodes, err)
	}
}
