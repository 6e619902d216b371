package desired

import (
	"context"
	"sort"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// Vet evaluates every node's catalog and returns every problem found: the
// site's own first, then each node's in node order, warnings last. A
// problem shared by several nodes (a mistake in site or role data) is
// reported once, naming them all. The site is valid when no returned
// problem is an error (Warning false).
//
// The evaluation runs under the site's time budget (Limits.EvalTimeout):
// past it, one problem says so (the others are not known).
func (s *Site) Vet(ctx context.Context) []Problem {
	probs, _ := s.VetCatalogs(ctx)
	return probs
}

// NodeCatalog is one node's valid catalog and where its values come from.
type NodeCatalog struct {
	Catalog *reconciler.Catalog
	Sources *Sources
}

// VetCatalogs is Vet that also returns the valid catalogs it evaluated, in
// node order, so that checks across nodes need not evaluate them again.
// Nodes are evaluated in parallel (EvaluateNodes).
func (s *Site) VetCatalogs(ctx context.Context) ([]Problem, []NodeCatalog) {
	res, err := s.EvaluateNodes(ctx, s.order)
	if err != nil {
		return []Problem{{Pos: displayName(s.src, s.src.SiteDir), Msg: strings.TrimPrefix(err.Error(), displayName(s.src, s.src.SiteDir)+": ")}}, nil
	}
	var cats []NodeCatalog
	return s.vet(ctx, res, &cats), cats
}

// vet gathers the problems of the site and of the evaluated nodes, and
// their valid catalogs into cats (when not nil).
func (s *Site) vet(ctx context.Context, res []NodeResult, cats *[]NodeCatalog) []Problem {
	var all []Problem
	index := map[string]int{}
	add := func(p Problem) {
		key := p.Pos + "\x00" + string(p.Resource) + "\x00" + p.Msg
		if i, ok := index[key]; ok {
			if p.Node != "" && !containsNode(all[i].Node, p.Node) {
				all[i].Node += ", " + p.Node
			}
			return
		}
		index[key] = len(all)
		all = append(all, p)
	}
	for _, sp := range s.siteProblems {
		add(sp.Problem)
	}
	for _, r := range res {
		if !r.Evaluated {
			if err := ctx.Err(); err != nil {
				add(Problem{Msg: "vet interrupted: " + err.Error()})
			}
			break
		}
		for _, p := range r.Problems {
			add(p)
		}
		if r.Valid() && cats != nil {
			*cats = append(*cats, NodeCatalog{Catalog: r.Catalog, Sources: r.Sources})
		}
	}
	all = dropConsequences(all, s.roleProblems())
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Warning != all[j].Warning {
			return !all[i].Warning
		}
		return false
	})
	return all
}

func containsNode(list, node string) bool {
	for _, n := range strings.Split(list, ", ") {
		if n == node {
			return true
		}
	}
	return false
}

// HasErrors reports whether any problem is an error, not a warning.
func HasErrors(probs []Problem) bool {
	for _, p := range probs {
		if !p.Warning {
			return true
		}
	}
	return false
}
