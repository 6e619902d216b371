package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/status"
)

// TestAgent_FiftyAgents runs 50 agents, each with its own state, cache,
// socket and root, against one repository, publishing their status as a
// fleet does (layout "refs": a ref per node in a status repository of its
// own): they converge at the same moment after each push, and every one's
// status lands. Contention on one status branch is tested in
// internal/status (TestPublisher_FiftyAtOnce).
func TestAgent_FiftyAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("50 agents: skipped in -short")
	}
	const count = 50
	s := newSite(t)
	names := make([]string, count)
	catalogs := func(v string) map[string]string {
		m := map[string]string{}
		for _, name := range names {
			m[name] = catalogJSON(t, fileRes("/etc/node.conf", name+" "+v+"\n"))
		}
		return m
	}
	for i := range names {
		names[i] = fmt.Sprintf("node%02d", i)
	}
	c1 := s.push("v1", catalogs("v1"))
	s.srv.NewRepo("status.git")
	statusURL := s.srv.URL("status.git")
	nodes := make([]*node, count)
	for i, name := range names {
		nodes[i] = newNode(t, name, s.url, "2s", fmt.Sprintf("status: {url: %q, layout: \"refs\"}", statusURL))
	}
	for _, n := range nodes {
		n.start()
	}
	allLanded := func(rev string) func() bool {
		return func() bool {
			docs, _, err := status.ReadFleet(context.Background(), statusURL, "", nil)
			if err != nil || len(docs) != count {
				return false
			}
			for _, d := range docs {
				if !d.Converged || d.AppliedRevision != rev {
					return false
				}
			}
			return true
		}
	}
	start := time.Now()
	waitEvery(t, "50 agents converged on c1 in their status refs", time.Second, allLanded(c1))
	t.Logf("c1: all %d statuses landed %v after the agents started", count, time.Since(start))

	c2 := s.push("v2", catalogs("v2"))
	start = time.Now()
	waitEvery(t, "50 agents converged on c2 in their status refs", time.Second, allLanded(c2))
	t.Logf("c2: all %d statuses landed %v after the push", count, time.Since(start))
	for _, n := range nodes {
		if got, want := n.read("/etc/node.conf"), n.name+" v2\n"; got != want {
			t.Fatalf("%s: node.conf = %q, want %q", n.name, got, want)
		}
	}
}
