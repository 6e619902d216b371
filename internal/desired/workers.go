package desired

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/reconciler"
)

// minNodesPerWorker is how many nodes make another worker worth its cost:
// a worker builds the site once in its own CUE context, which costs about
// as much as a few nodes' catalogs.
const minNodesPerWorker = 16

// NodeResult is one node's evaluation: its catalog and where its values
// come from when it is valid, and every problem found (warnings too).
type NodeResult struct {
	Node     string
	Catalog  *reconciler.Catalog
	Sources  *Sources
	Problems []Problem
	// Evaluated is false when the evaluation stopped (the context ended)
	// before this node.
	Evaluated bool
}

// Valid reports whether the node's catalog is valid: evaluated, with no
// problem but warnings.
func (r *NodeResult) Valid() bool {
	return r.Evaluated && r.Catalog != nil && !HasErrors(r.Problems)
}

// EvaluateNodes evaluates the catalogs of nodes, in parallel: up to
// GOMAXPROCS workers, each with its own CUE context (a CUE value must not
// be evaluated from two goroutines at once), the site itself and copies
// built from the same files. Results are in the order of nodes. It runs
// under the site's time budget (Limits.EvalTimeout): past it, the error
// is a *BudgetError; when ctx ends, the nodes not evaluated yet are
// returned with Evaluated false.
func (s *Site) EvaluateNodes(ctx context.Context, nodes []string) ([]NodeResult, error) {
	var out []NodeResult
	var mu sync.Mutex // out, between the evaluation and a caller that gave up
	err := s.budget.run(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		res := s.evaluateNodes(ctx, nodes)
		mu.Lock()
		out = res
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return out, err
}

// evaluateNodes is EvaluateNodes' evaluation; s.mu is held.
func (s *Site) evaluateNodes(ctx context.Context, nodes []string) []NodeResult {
	if ctx == nil {
		ctx = context.Background()
	}
	out := make([]NodeResult, len(nodes))
	for i, n := range nodes {
		out[i].Node = n
	}
	keys := s.groupKeys(nodes)
	workers := min(runtime.GOMAXPROCS(0), len(nodes)/minNodesPerWorker)
	order := s.workOrder(nodes)
	var next atomic.Int64
	work := func(site *Site) {
		for ctx.Err() == nil {
			j := int(next.Add(1)) - 1
			if j >= len(nodes) {
				return
			}
			i := order[j]
			var cat *reconciler.Catalog
			var src *Sources
			var probs []Problem
			ok := false
			if keys[i] != "" {
				cat, src, probs, ok = site.groupCatalog(nodes[i], keys[i])
			}
			if !ok {
				cat, src, probs = site.catalogFor(nodes[i])
			}
			out[i] = NodeResult{Node: nodes[i], Catalog: cat, Sources: src, Problems: probs, Evaluated: true}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer crash.Exit()
			defer wg.Done()
			// The copy is built from the files the site was built
			// from, which evaluated: should it fail anyway, the other
			// workers do its share.
			if c, err := s.copySite(); err == nil {
				work(c)
			}
		}()
	}
	work(s)
	wg.Wait()
	return out
}

// workOrder is the order the workers take nodes in (indexes into nodes):
// first those whose catalog evaluates the topology (the prometheus_server
// nodes, which list the whole fleet), so that one worker does it while the
// others go on, rather than all of them waiting for it at the end.
func (s *Site) workOrder(nodes []string) []int {
	first, rest := []int{}, make([]int, 0, len(nodes))
	for i, name := range nodes {
		n := s.nodes[name]
		if n != nil && s.roles[n.role] != nil && (!s.topo.builtin || slices.Contains(s.roles[n.role].profiles, builtinPart)) {
			first = append(first, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(first, rest...)
}

// copySite builds the site again, from the same files, in a CUE context of
// its own. Its catalogs and positions are the same as the site's.
func (s *Site) copySite() (*Site, error) {
	c := &Site{
		src:      s.src,
		revision: s.revision,
		key:      s.key,
		files:    s.files,
		srcFiles: s.srcFiles,
		display:  s.display,
		shown:    s.shown,
		budget:   s.budget,
		// A site loaded for one node leaves the same nodes out.
		whole: s.pruned == 0,
	}
	c.docs.src = s.docs.src
	if err := c.evaluate(c.srcFiles); err != nil {
		return nil, err
	}
	// What the topology computed is plain data: the copy reads it too.
	// (It is not computed for the copies up front: only the nodes of the
	// roles that need it do, and one worker evaluating it while the
	// others go on costs less than all of them waiting for it.)
	if s.topo.done && s.topo.err == nil {
		c.topo.done, c.topo.out = true, s.topo.out
	}
	if s.topo.icebergDone {
		c.topo.icebergDone, c.topo.iceberg = true, s.topo.iceberg
	}
	return c, nil
}
