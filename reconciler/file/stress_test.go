package file

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// TestRoot_ParallelFirstApplyStress runs the first apply of files that
// share new parent directories, with --parallel 4, hundreds of times under
// a fresh root each time. Siblings create the parents at the same moment;
// no run may fail. (Issue 12 item 10: a sibling creating the directory
// between two looks made the path check see "a dangling symlink".) The
// loop is bounded in time so that a slow machine runs fewer rounds rather
// than a longer test.
func TestRoot_ParallelFirstApplyStress(t *testing.T) {
	rounds, budget := 400, 20*time.Second
	if testing.Short() {
		rounds, budget = 50, 3*time.Second
	}
	var cat reconciler.Catalog
	for i := range 8 {
		dir := fmt.Sprintf("/srv/app%d/conf.d", i%2)
		cat.Resources = append(cat.Resources,
			*resource(t, "file", fmt.Sprintf("%s/f%d.conf", dir, i), map[string]any{"content": fmt.Sprintf("%d\n", i)}))
	}
	cat.Resources = append(cat.Resources,
		*resource(t, "directory", "/srv/app0/data/x", map[string]any{}),
		*resource(t, "symlink", "/srv/app1/data/current", map[string]any{"target": "../conf.d"}))
	cat.Sort()
	eng := reconciler.NewEngine(reconciler.Config{
		Registry: reconciler.NewRegistry(Kinds()...),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Parallel: 4,
	})
	start := time.Now()
	n := 0
	for ; n < rounds && time.Since(start) < budget; n++ {
		root := filepath.Join(t.TempDir(), "root")
		rep, err := eng.Apply(context.Background(), &cat, reconciler.RunOptions{Root: root})
		if err != nil {
			t.Fatalf("round %d: %v", n, err)
		}
		for _, res := range rep.Results {
			if res.Outcome != reconciler.Created {
				t.Fatalf("round %d: %s: %s %s", n, res.ID, res.Outcome, res.Error)
			}
		}
		if got := readFile(t, filepath.Join(root, "srv/app1/conf.d/f7.conf")); got != "7\n" {
			t.Fatalf("round %d: f7.conf = %q", n, got)
		}
	}
	t.Logf("%d parallel first applies in %s, none failed", n, time.Since(start).Round(time.Millisecond))
}
