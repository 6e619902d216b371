package artifact

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestArtifact_KeptForRollback: a jar replaced by another version stays in
// place while one of the node's last N applied catalogs (3 by default, as
// the catalog says otherwise) uses it, so that a rollback finds it, and is
// removed after; the report says for how many more catalogs it is kept.
func TestArtifact_KeptForRollback(t *testing.T) {
	dir := t.TempDir()
	jar := func(name string, content []byte) reconciler.Resource {
		src := filepath.Join(dir, name)
		if err := os.WriteFile(src, content, 0o644); err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(map[string]any{
			"path": "/opt/spark/jars/" + name, "url": "file://" + src, "sha256": hexSum(content),
			"maxSize": 1 << 30, "owner": "root", "group": "root", "mode": "0644", "ensure": "present",
		})
		if err != nil {
			t.Fatal(err)
		}
		return reconciler.Resource{ID: reconciler.ID("artifact:/opt/spark/jars/" + name), Spec: raw}
	}
	old, cur := jar("bundle-1.jar", v1), jar("bundle-2.jar", v2)

	for _, tc := range []struct {
		keep   int
		keptIn []string // the revisions whose run keeps bundle-1
		reason []string
	}{
		{0, []string{"c2", "c3"}, []string{"kept for rollback: 2 more catalogs", "kept for rollback: 1 more catalog"}},
		{1, nil, nil},
		{2, []string{"c2"}, []string{"kept for rollback: 1 more catalog"}},
	} {
		f := newFixture(t)
		e := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(f.kind)})
		var prior *reconciler.Memory
		apply := func(rev string, rs ...reconciler.Resource) *reconciler.Report {
			cat := &reconciler.Catalog{Node: "offline-1", Revision: rev, Resources: rs, KeepCatalogs: tc.keep}
			rep, err := e.Apply(context.Background(), cat, reconciler.RunOptions{Root: f.root, Prior: prior})
			if err != nil {
				t.Fatal(err)
			}
			prior = rep.Next
			return rep
		}
		oldPath := filepath.Join(f.root, "opt/spark/jars/bundle-1.jar")
		if rep := apply("c1", old); rep.Results[0].Outcome != reconciler.Created {
			t.Fatalf("c1: %+v", rep.Results[0])
		}
		deletedIn := ""
		for i, rev := range []string{"c2", "c3", "c4"} {
			rep := apply(rev, cur)
			var r reconciler.Result
			for _, res := range rep.Results {
				if res.ID == old.ID {
					r = res
				}
			}
			_, err := os.Stat(oldPath)
			if i < len(tc.keptIn) {
				if r.Outcome != reconciler.Unchanged || !strings.Contains(r.Reason, tc.reason[i]) || err != nil {
					t.Fatalf("keep %d, %s: %s %q (stat %v), want kept: %q", tc.keep, rev, r.Outcome, r.Reason, err, tc.reason[i])
				}
				continue
			}
			if deletedIn == "" {
				if r.Outcome != reconciler.Deleted || err == nil {
					t.Fatalf("keep %d, %s: %s %q (stat %v), want deleted", tc.keep, rev, r.Outcome, r.Reason, err)
				}
				deletedIn = rev
			}
		}
		t.Logf("keepCatalogs %d: bundle-1.jar deleted in the run of %s", tc.keep, deletedIn)
	}
}
