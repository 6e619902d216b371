package agent

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// cueLoader is what cmd/fsgit wires: the CUE site loader.
func cueLoader(ctx context.Context, fsys fs.FS, siteDir, rev, node string) (*reconciler.Catalog, error) {
	site, err := desired.Load(ctx, desired.Source{FS: fsys, SiteDir: siteDir, Revision: rev, Node: node})
	if err != nil {
		return nil, err
	}
	return site.Catalog(node)
}

// cueSite is a site whose role holds one file; content is CUE text.
func cueSite(content string) map[string]string {
	return map[string]string{"sites/test/site.cue": `package test

import "github.com/fsgit/fsgit/schema"

schema.#Site

schemaVersion: "v1"
name:          "test"
roles: web: {
	profiles: []
	resources: "file:/etc/app/app.conf": {content: ` + content + `}
}
nodes: n1: role: "web"
`}
}

// TestAgent_CUESite runs the loop on a real CUE site: a commit whose CUE
// does not validate is refused with the CUE error (and its position) in
// the status, and the node stays converged on the previous commit.
func TestAgent_CUESite(t *testing.T) {
	s := newSite(t)
	c1 := s.work.CommitAndPush("v1", cueSite(`"v1\n"`))
	n := newNode(t, "n1", s.url, "100ms", "")
	n.load = cueLoader
	n.start()
	waitFor(t, "converged on c1", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c1 })
	if got := n.read("/etc/app/app.conf"); got != "v1\n" {
		t.Fatalf("app.conf = %q", got)
	}

	c2 := s.work.CommitAndPush("not a string", cueSite(`42`))
	waitFor(t, "c2 refused", func() bool { st := n.agent.Status(); return len(st.Refused) > 0 && st.Refused[0].Commit == c2 })
	st := n.agent.Status()
	if !st.Converged || st.AppliedRevision != c1 || st.DesiredRevision != c1 {
		t.Fatalf("after the invalid commit: %+v", st)
	}
	t.Logf("refusal: %s", st.Refused[0].Reason)
	if r := st.Refused[0].Reason; !strings.Contains(r, "sites/test/site.cue:") || !strings.Contains(r, "content") {
		t.Fatalf("refusal does not carry the CUE error with its position: %q", r)
	}
	waitFor(t, "refusal on the status branch", func() bool {
		d := fleetNode(t, s.url, "n1")
		return d != nil && len(d.Refused) > 0 && d.Refused[0].Commit == c2
	})

	// A label chain 100,000 levels deep (issue 12): refused at once, with
	// the file, the position and the limit in the status, not evaluated
	// for minutes.
	deep := s.work.CommitAndPush("deep", cueSite(`"v1\n", _deep: `+strings.Repeat("a: ", 100_000)+"1"))
	waitFor(t, "the deep commit refused", func() bool { st := n.agent.Status(); return len(st.Refused) > 0 && st.Refused[0].Commit == deep })
	st = n.agent.Status()
	t.Logf("refusal: %.300s", st.Refused[0].Reason)
	if r := st.Refused[0].Reason; !strings.Contains(r, "sites/test/site.cue:11:236:") || !strings.Contains(r, "nested deeper than the limit of 64 levels") {
		t.Fatalf("refusal does not name the file, the position and the limit: %q", r)
	}
	if !st.Converged || st.AppliedRevision != c1 {
		t.Fatalf("after the deep commit: %+v", st)
	}

	c3 := s.work.CommitAndPush("v3", cueSite(`"v3\n"`))
	waitFor(t, "converged on c3", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c3 })
	if got := n.read("/etc/app/app.conf"); got != "v3\n" {
		t.Fatalf("app.conf = %q", got)
	}

	// Another node's mistake is that node's: n1 applies the commit.
	site := cueSite(`"v4\n"`)
	site["sites/test/site.cue"] += "nodes: n2: {role: \"web\", address: \"not an address\"}\n"
	c4 := s.work.CommitAndPush("v4, n2 broken", site)
	waitFor(t, "converged on c4", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c4 })
	if got := n.read("/etc/app/app.conf"); got != "v4\n" {
		t.Fatalf("app.conf = %q", got)
	}
}
