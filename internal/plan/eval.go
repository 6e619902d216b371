package plan

import (
	"context"
	"fmt"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// Sides are the catalogs of a plan's two revisions.
type Sides struct {
	// Base and Head are the planned nodes' catalogs. Base is empty when
	// the base has no site or a planned node of it does not validate (see
	// BaseErr): the head is then what gets applied.
	Base, Head map[string]*reconciler.Catalog
	// BaseErr says why Base is empty: a *desired.InvalidError.
	BaseErr error
	// HeadAll is every head node's catalog with its sources, for the
	// checks across nodes; nil when a node left out of the plan does not
	// validate (the checks would report what is only missing).
	HeadAll []desired.NodeCatalog
	// BaseEvaluated are the planned nodes evaluated at base: the others
	// have the same inputs at both revisions (desired.Site.InputKey), so
	// their head catalog is their base catalog too.
	BaseEvaluated []string
}

// Evaluate evaluates the catalogs a plan compares. Every head node is
// evaluated (the checks across nodes need them all), in parallel; at base
// (nil when the base has no site) only the planned nodes (only, or every
// node) whose inputs differ from the head's. A planned head node that does
// not validate is an error (*desired.InvalidError).
func Evaluate(ctx context.Context, base, head *desired.Site, only []string) (*Sides, error) {
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	planned := func(n string) bool { return len(want) == 0 || want[n] }

	res, err := head.EvaluateNodes(ctx, head.Nodes())
	if err != nil {
		return nil, err
	}
	s := &Sides{Base: map[string]*reconciler.Catalog{}, Head: map[string]*reconciler.Catalog{}}
	var all []desired.NodeCatalog
	var problems []desired.Problem
	for _, r := range res {
		if !r.Evaluated {
			return nil, fmt.Errorf("evaluate %s: %w", r.Node, ctx.Err())
		}
		if !r.Valid() {
			if planned(r.Node) {
				problems = append(problems, errorsOf(r.Problems)...)
			}
			continue
		}
		all = append(all, desired.NodeCatalog{Catalog: r.Catalog, Sources: r.Sources})
		if planned(r.Node) {
			s.Head[r.Node] = r.Catalog
		}
	}
	if len(problems) > 0 {
		return nil, &desired.InvalidError{Problems: problems}
	}
	if len(all) == len(res) {
		s.HeadAll = all
	}
	if base == nil {
		return s, nil
	}

	for _, n := range base.Nodes() {
		if !planned(n) {
			continue
		}
		if hc := s.Head[n]; hc != nil {
			hk, hok := head.InputKey(n)
			bk, bok := base.InputKey(n)
			if hok && bok && hk == bk {
				c := *hc
				c.Revision = base.Revision()
				s.Base[n] = &c
				continue
			}
		}
		s.BaseEvaluated = append(s.BaseEvaluated, n)
	}
	res, err = base.EvaluateNodes(ctx, s.BaseEvaluated)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if !r.Evaluated {
			return nil, fmt.Errorf("evaluate %s at base: %w", r.Node, ctx.Err())
		}
		if !r.Valid() {
			problems = append(problems, errorsOf(r.Problems)...)
			continue
		}
		s.Base[r.Node] = r.Catalog
	}
	if len(problems) > 0 {
		s.Base = map[string]*reconciler.Catalog{}
		s.BaseErr = &desired.InvalidError{Problems: problems}
	}
	return s, nil
}

// errorsOf are the problems that are not warnings.
func errorsOf(probs []desired.Problem) []desired.Problem {
	var out []desired.Problem
	for _, p := range probs {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}
