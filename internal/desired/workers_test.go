package desired

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// TestEvaluateNodesParallel checks that the catalogs and problems vet
// finds on several workers (a fleet big enough for two) are the ones one
// context finds node after node, positions included. Run with -race.
func TestEvaluateNodesParallel(t *testing.T) {
	extra := fleetFS(t, 4*minNodesPerWorker)
	// One invalid node, so that problems are compared too.
	extra["sites/example/bad.cue"] = "package example\n\nnodes: \"node-007\": data: mariadb: port: \"x\"\n"
	fsys := exampleFS(t, extra)
	par, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example", Limits: Limits{EvalTimeout: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ser, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example", Limits: Limits{EvalTimeout: -1}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := par.EvaluateNodes(context.Background(), par.Nodes())
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, r := range res {
		cat, _, probs := ser.catalogFor(r.Node)
		got, _ := json.Marshal([]any{r.Catalog, r.Problems})
		want, _ := json.Marshal([]any{cat, probs})
		if string(got) != string(want) {
			t.Errorf("node %s: in parallel\n%s\nnode after node\n%s", r.Node, got, want)
		}
		if !r.Valid() {
			bad++
		}
		if r.Valid() {
			if p := r.Sources.Resource(r.Catalog.Resources[0].ID); p == "" {
				t.Errorf("node %s: no position for %s", r.Node, r.Catalog.Resources[0].ID)
			}
		}
	}
	if bad != 1 {
		t.Errorf("%d invalid nodes, want 1 (node-007)", bad)
	}
	probs, cats := par.VetCatalogs(context.Background())
	if len(cats) != len(res)-1 || !HasErrors(probs) {
		t.Errorf("vet: %d catalogs of %d nodes, problems %v", len(cats), len(res), fmt.Sprint(probs))
	}
}
