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
	return s.EvaluateNodesIn(ctx, nodes, 0)
}

// EvaluateNodesIn is EvaluateNodes with at most workers workers (0: up to
// GOMAXPROCS). One worker evaluates on the site itself, building no copy:
// for a caller that evaluates two sites at once (fsgit plan).
func (s *Site) EvaluateNodesIn(ctx context.Context, nodes []string, workers int) ([]NodeResult, error) {
	var out []NodeResult
	var mu sync.Mutex // out, between the evaluation and a caller that gave up
	err := s.budget.run(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		res := s.evaluateNodes(ctx, nodes, workers)
		mu.Lock()
		out = res
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return out, err
}

// evaluateNodes is EvaluateNodes' evaluation; s.mu is held.
func (s *Site) evaluateNodes(ctx context.Context, nodes []string, maxWorkers int) []NodeResult {
	if ctx == nil {
		ctx = context.Background()
	}
	out := make([]NodeResult, len(nodes))
	for i, n := range nodes {
		out[i].Node = n
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(nodes)/minNodesPerWorker))
	if maxWorkers > 0 {
		workers = min(workers, maxWorkers)
	}
	order := s.workOrder(nodes)
	// The group keys are found by every worker, each on its own site (a
	// copy's nodes give the same keys), while the others are still
	// building their copies; they all wait for the last one, and the keys
	// are then filtered once (filterKeys). A key s already has (plan asked
	// for the input keys first) is taken from s (knownKey): each node's is
	// read by one worker only, and s's were written before the workers
	// started.
	raw := make([]string, len(nodes))
	var nextKey atomic.Int64
	var found sync.WaitGroup
	found.Add(workers)
	var filter sync.Once
	var keys []string
	findKeys := func(site *Site) {
		for {
			j := int(nextKey.Add(1)) - 1
			if j >= len(nodes) {
				break
			}
			k, ok := s.knownKey(nodes[j])
			if !ok {
				k = site.nodeKey(nodes[j])
			}
			raw[j] = k
		}
		found.Done()
		found.Wait()
		filter.Do(func() { keys = filterKeys(raw) })
	}
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
	topo := s.topoSnapshot()
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer crash.Exit()
			defer wg.Done()
			// The copy is built from the files the site was built
			// from, which evaluated: should it fail anyway, the other
			// workers find its keys and do its share.
			c, err := s.copySite(topo)
			if err != nil {
				found.Done()
				return
			}
			findKeys(c)
			work(c)
		}()
	}
	findKeys(s)
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

// topoSnapshot is what the site's topology has computed so far, for
// copySite: taken before the workers start, since a worker evaluating on
// the site may compute the rest while a copy is being built.
func (s *Site) topoSnapshot() topology {
	return topology{done: s.topo.done, out: s.topo.out, err: s.topo.err, icebergDone: s.topo.icebergDone, iceberg: s.topo.iceberg}
}

// copySite builds the site again, from the same files, in a CUE context of
// its own, with what topo (topoSnapshot) had computed. Its catalogs and
// positions are the same as the site's.
func (s *Site) copySite(topo topology) (*Site, error) {
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
	if topo.done && topo.err == nil {
		c.topo.done, c.topo.out = true, topo.out
	}
	if topo.icebergDone {
		c.topo.icebergDone, c.topo.iceberg = true, topo.iceberg
	}
	return c, nil
}
