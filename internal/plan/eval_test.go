package plan

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// fleet is the repository's sites/example with n more nodes, a third per
// role, and edit applied to roles.cue.
func fleet(t *testing.T, n int, edit func(string) string) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	root := os.DirFS("../..")
	err := fs.WalkDir(root, "sites/example", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "/roles.cue") {
			b = []byte(edit(string(b)))
		}
		m[name] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{"feature_store_online", "feature_store_offline", "feature_store_vector"}
	var b strings.Builder
	b.WriteString("package example\n\nnodes: {\n")
	for i := range n {
		fmt.Fprintf(&b, "\t\"gen-%03d\": {role: %q}\n", i, roles[i%3])
	}
	b.WriteString("}\n")
	m["sites/example/generated.cue"] = &fstest.MapFile{Data: []byte(b.String())}
	return m
}

func load(t *testing.T, fsys fs.FS, rev string) *desired.Site {
	t.Helper()
	s, err := desired.Load(context.Background(), desired.Source{FS: fsys, SiteDir: "sites/example", Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEvaluate_OneRoleChanged checks that a change to one role is planned
// by evaluating, at base, exactly that role's nodes, and that the plan is
// the one evaluating every node at both revisions gives: the role's nodes
// changed, every other node unchanged (left out), and a plan of an
// unchanged node alone still reports no change.
func TestEvaluate_OneRoleChanged(t *testing.T) {
	same := func(s string) string { return s }
	bigger := func(s string) string {
		return strings.Replace(s, `innodbBufferPoolSize: "2G"`, `innodbBufferPoolSize: "4G"`, 1)
	}
	if !strings.Contains(bigger(readRoles(t)), `"4G"`) {
		t.Fatal("the edit does not apply to roles.cue")
	}
	base := load(t, fleet(t, 12, same), "base")
	head := load(t, fleet(t, 12, bigger), "head")

	sides, err := Evaluate(context.Background(), base, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	var online []string
	for _, n := range head.Nodes() {
		if head.Role(n) == "feature_store_online" {
			online = append(online, n)
		}
	}
	if !slices.Equal(sides.BaseEvaluated, online) {
		t.Errorf("evaluated at base: %v, want the online nodes %v", sides.BaseEvaluated, online)
	}
	if len(sides.HeadAll) != len(head.Nodes()) {
		t.Errorf("%d head catalogs for the checks across nodes, want %d", len(sides.HeadAll), len(head.Nodes()))
	}

	// The same plan as evaluating every node at both revisions.
	full := map[string]bool{}
	for _, n := range Compute(catalogs(t, base), catalogs(t, head), nil).Nodes {
		full[n.Node] = true
	}
	got := Compute(sides.Base, sides.Head, nil)
	var changed []string
	for _, n := range got.Nodes {
		changed = append(changed, n.Node)
		if n.Status != NodeChanged {
			t.Errorf("node %s: %s, want changed", n.Node, n.Status)
		}
	}
	if !slices.Equal(changed, online) || len(full) != len(online) {
		t.Errorf("changed nodes %v (evaluating everything: %v), want %v", changed, full, online)
	}

	// An unchanged node alone: no change, and nothing evaluated at base.
	sides, err = Evaluate(context.Background(), base, head, []string{"vector-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := Compute(sides.Base, sides.Head, nil); len(p.Nodes) != 0 || len(sides.BaseEvaluated) != 0 || sides.Base["vector-1"] == nil {
		t.Errorf("plan of vector-1: %+v, evaluated at base %v", p.Nodes, sides.BaseEvaluated)
	}
	if sides.Base["vector-1"].Revision != "base" {
		t.Errorf("vector-1's base catalog has revision %q", sides.Base["vector-1"].Revision)
	}
}

func readRoles(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../sites/example/roles.cue")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// catalogs evaluates every node of s, one by one.
func catalogs(t *testing.T, s *desired.Site) map[string]*reconciler.Catalog {
	t.Helper()
	out := map[string]*reconciler.Catalog{}
	for _, n := range s.Nodes() {
		c, err := s.Catalog(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}
