package plan

import (
	"context"
	"fmt"

	"github.com/fsgit/fsgit/internal/crash"
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
//
// The two sites are worked on at once, each in its own CUE contexts: the
// input keys of both, then the head's nodes (its workers) beside the
// base's (one worker, on the base site itself, unless most nodes changed).
func Evaluate(ctx context.Context, base, head *desired.Site, only []string) (*Sides, error) {
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	planned := func(n string) bool { return len(want) == 0 || want[n] }

	// The nodes to evaluate at base: those whose inputs differ, or that
	// are not at head (a node removed), or whose key is in doubt.
	var atBase []string
	if base != nil {
		var baseNodes []string
		for _, n := range base.Nodes() {
			if planned(n) {
				baseNodes = append(baseNodes, n)
			}
		}
		baseKeys := make([]string, len(baseNodes))
		done := make(chan struct{})
		go func() {
			defer crash.Exit()
			defer close(done)
			for i, n := range baseNodes {
				if k, ok := base.InputKey(n); ok {
					baseKeys[i] = k
				}
			}
		}()
		headKeys := make([]string, len(baseNodes))
		for i, n := range baseNodes {
			if k, ok := head.InputKey(n); ok {
				headKeys[i] = k
			}
		}
		<-done
		for i, n := range baseNodes {
			if baseKeys[i] == "" || baseKeys[i] != headKeys[i] {
				atBase = append(atBase, n)
			}
		}
	}
	var baseRes []desired.NodeResult
	var baseErr error
	baseDone := make(chan struct{})
	go func() {
		defer crash.Exit()
		defer close(baseDone)
		if len(atBase) > 0 {
			// A few nodes: one worker, on the base site itself. Many
			// (a change every node sees): workers of their own, or
			// the base would be left alone on one core at the end.
			workers := 1
			if 2*len(atBase) > len(head.Nodes()) {
				workers = 0
			}
			baseRes, baseErr = base.EvaluateNodesIn(ctx, atBase, workers)
		}
	}()
	res, err := head.EvaluateNodes(ctx, head.Nodes())
	<-baseDone
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
	if baseErr != nil {
		return nil, baseErr
	}
	s.BaseEvaluated = atBase
	evaluated := map[string]bool{}
	for _, n := range atBase {
		evaluated[n] = true
	}
	// The others have the same inputs at both revisions: their head
	// catalog is their base catalog.
	var late []string
	for _, n := range base.Nodes() {
		if !planned(n) || evaluated[n] {
			continue
		}
		hc := s.Head[n]
		if hc == nil {
			// No catalog at head to take (not valid there, without
			// an error to report): evaluated at base after all.
			late = append(late, n)
			continue
		}
		c := *hc
		c.Revision = base.Revision()
		s.Base[n] = &c
	}
	if len(late) > 0 {
		more, err := base.EvaluateNodes(ctx, late)
		if err != nil {
			return nil, err
		}
		baseRes = append(baseRes, more...)
		s.BaseEvaluated = append(s.BaseEvaluated, late...)
	}
	for _, r := range baseRes {
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
