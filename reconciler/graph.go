package reconciler

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// EdgeError is a problem with the edges of a catalog: a duplicate ID, an
// edge to a resource that does not exist, or a cycle.
type EdgeError struct {
	// ID is the resource the problem was found on.
	ID ID
	// Field is "require", "notify" or "" for a duplicate or a cycle.
	Field string
	// Target is the dangling reference, for a dangling edge.
	Target ID
	// Cycle lists the resources of a cycle, first repeated at the end.
	Cycle []ID
	// Duplicate is set for a duplicate ID.
	Duplicate bool
}

// Error describes the problem in a sentence.
func (e *EdgeError) Error() string {
	switch {
	case e.Duplicate:
		return fmt.Sprintf("resource %s is declared more than once", e.ID)
	case len(e.Cycle) > 0:
		parts := make([]string, len(e.Cycle))
		for i, id := range e.Cycle {
			parts[i] = string(id)
		}
		return "dependency cycle: " + strings.Join(parts, " -> ")
	default:
		return fmt.Sprintf("resource %s: %s names %s, which is not in the catalog", e.ID, e.Field, e.Target)
	}
}

// Graph is a catalog's resources ordered by their edges. An edge A -> B
// means A runs before B: B requires A, or A notifies B.
type Graph struct {
	// Order lists every resource ID in a dependency order that is stable
	// (ties broken by ID).
	Order []ID
	// Before maps a resource to the resources that must finish before it.
	Before map[ID][]ID
	// After maps a resource to the resources that wait for it.
	After map[ID][]ID
	// NotifiedBy maps a resource to the resources that notify it.
	NotifiedBy map[ID][]ID
}

// BuildGraph checks the catalog's IDs and edges and orders it. It returns
// every problem found, as *EdgeError values, so that vet can report them
// all; the graph is nil when there is any.
func BuildGraph(c *Catalog) (*Graph, []error) {
	var errs []error
	seen := make(map[ID]bool, len(c.Resources))
	for _, r := range c.Resources {
		if seen[r.ID] {
			errs = append(errs, &EdgeError{ID: r.ID, Duplicate: true})
		}
		seen[r.ID] = true
	}
	g := &Graph{Before: map[ID][]ID{}, After: map[ID][]ID{}, NotifiedBy: map[ID][]ID{}}
	// Edges are collected with repeats (a require and a notify of the same
	// pair, a name listed twice) and deduplicated once at the end: checking
	// on every append is quadratic in a resource's degree (a directory
	// that a thousand files require).
	addEdge := func(from, to ID) {
		g.Before[to] = append(g.Before[to], from)
		g.After[from] = append(g.After[from], to)
	}
	for _, r := range c.Resources {
		for _, dep := range r.Require {
			if !seen[dep] {
				errs = append(errs, &EdgeError{ID: r.ID, Field: "require", Target: dep})
				continue
			}
			addEdge(dep, r.ID)
		}
		for _, n := range r.Notify {
			if !seen[n] {
				errs = append(errs, &EdgeError{ID: r.ID, Field: "notify", Target: n})
				continue
			}
			addEdge(r.ID, n)
			g.NotifiedBy[n] = append(g.NotifiedBy[n], r.ID)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	ids := make([]ID, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for id, l := range g.After {
		slices.Sort(l)
		g.After[id] = slices.Compact(l)
	}
	for _, m := range []map[ID][]ID{g.Before, g.NotifiedBy} {
		for id, l := range m {
			m[id] = dedupe(l)
		}
	}

	// Kahn's algorithm, always taking the smallest ready ID, gives a
	// stable order; a heap keeps that O(n log n) when many resources are
	// ready at once (a thousand users, each freeing its grants).
	indeg := make(map[ID]int, len(ids))
	for _, id := range ids {
		indeg[id] = len(g.Before[id])
	}
	ready := &byID{}
	for _, id := range ids {
		if indeg[id] == 0 {
			ready.ids = append(ready.ids, id) // ids is sorted: already a heap
		}
	}
	if len(ids) > 0 {
		g.Order = make([]ID, 0, len(ids))
	}
	for ready.Len() > 0 {
		id := heap.Pop(ready).(ID)
		g.Order = append(g.Order, id)
		for _, next := range g.After[id] {
			indeg[next]--
			if indeg[next] == 0 {
				heap.Push(ready, next)
			}
		}
	}
	if len(g.Order) < len(ids) {
		return nil, []error{&EdgeError{Cycle: findCycle(ids, indeg, g.After)}}
	}
	return g, nil
}

// findCycle walks the resources left with incoming edges after Kahn's
// algorithm and returns one cycle, its first element repeated at the end.
func findCycle(ids []ID, indeg map[ID]int, after map[ID][]ID) []ID {
	const (
		white = iota
		grey
		black
	)
	color := map[ID]int{}
	var stack []ID
	var cycle []ID
	var visit func(id ID) bool
	visit = func(id ID) bool {
		color[id] = grey
		stack = append(stack, id)
		for _, next := range after[id] {
			if indeg[next] == 0 {
				continue
			}
			switch color[next] {
			case grey:
				for i, s := range stack {
					if s == next {
						cycle = append(append([]ID{}, stack[i:]...), next)
						return true
					}
				}
			case white:
				if visit(next) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, id := range ids {
		if indeg[id] > 0 && color[id] == white && visit(id) {
			break
		}
	}
	return cycle
}

// byID is a min-heap of IDs.
type byID struct{ ids []ID }

func (h *byID) Len() int           { return len(h.ids) }
func (h *byID) Less(i, j int) bool { return h.ids[i] < h.ids[j] }
func (h *byID) Swap(i, j int)      { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *byID) Push(x any)         { h.ids = append(h.ids, x.(ID)) }
func (h *byID) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}

// dedupe drops repeats from l, keeping the first of each, in place.
func dedupe(l []ID) []ID {
	if len(l) < 2 {
		return l
	}
	if len(l) <= 16 {
		out := l[:1]
		for _, id := range l[1:] {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out
	}
	seen := make(map[ID]bool, len(l))
	out := l[:0]
	for _, id := range l {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
