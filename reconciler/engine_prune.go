package reconciler

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
)

// prune handles the resources of the prior inventory that left the
// catalog, one at a time, dependents first (a grant before its user, a user
// before its database). A removal that would destroy data runs only if the
// resource allowed destroy when it was last applied; otherwise it is held
// as pending-destroy and stays in the inventory. A failed removal stays in
// the inventory too, for the next run. A resource a rollback needs is kept
// while the node's last applied catalogs reference it (see [Retainer]), and
// one a container uses is kept while it does ([KeepError]).
func (r *run) prune(ctx context.Context) []*outcome {
	var gone []Resource
	for id, res := range r.prior.Inventory {
		if _, ok := r.p.res[id]; !ok {
			gone = append(gone, res)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	order := pruneOrder(gone)
	for _, res := range order {
		if reason := r.stopReason(ctx); reason != "" {
			r.stopped = reason
			break
		}
		start := time.Now()
		o := r.pruneOne(ctx, &res)
		o.res.Pruned = true
		o.res.Duration = jsondoc.Seconds(time.Since(start))
		o.res.dropOwnID()
		r.log(o)
		r.pruned = append(r.pruned, o)
	}
	// Report in a stable order.
	sort.Slice(r.pruned, func(i, j int) bool { return r.pruned[i].res.ID < r.pruned[j].res.ID })
	return r.pruned
}

func (r *run) pruneOne(ctx context.Context, res *Resource) *outcome {
	o := &outcome{res: Result{ID: res.ID}}
	k, ok := r.e.reg.Lookup(res.Kind())
	if !ok {
		o.res.Outcome = Skipped
		o.res.Reason = fmt.Sprintf("left the catalog, but this fsgit has no kind %q to remove it: left in place", res.Kind())
		return o
	}
	pr, ok := AsPruner(k)
	if !ok {
		o.res.Outcome = Skipped
		o.res.Reason = fmt.Sprintf("left the catalog; kind %s does not remove resources: left in place, no longer managed", k.Kind())
		o.inventory, o.forget = invRemove, true
		return o
	}
	if reason, ok := r.retained(res, k); ok {
		o.res.Outcome, o.res.Reason = Unchanged, "left the catalog; "+reason
		return o
	}
	// A Typed kind decodes the remembered spec once, for its time limit
	// and its removal; one that does not decode fails in PlanDelete.
	limit := r.e.timeout
	tk, typed := k.(typedKind)
	var spec any
	var decodeErr error
	if typed {
		if spec, decodeErr = validate(k, res); decodeErr == nil {
			if d := tk.timeoutSpec(spec); d > 0 {
				limit = d
			}
		}
	} else {
		limit = r.p.timeout(k, res, limit)
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	env := r.env(res.ID, r.cache)
	plan, err := contain(r.steps, rctx, limit, "plan delete", func(ctx context.Context) (*Plan, error) {
		switch {
		case !typed:
			return pr.PlanDelete(ctx, env, res)
		case decodeErr != nil:
			return nil, decodeErr
		}
		return tk.planDeleteSpec(ctx, env, res, spec)
	})
	switch {
	case IsKeep(err):
		o.res.Outcome, o.res.Reason = Unchanged, "left the catalog; "+err.Error()
		return o
	case IsSkip(err):
		o.res.Outcome, o.res.Reason = Skipped, "left the catalog; "+skipReason(err)
		return o
	case err != nil:
		o.res.Outcome, o.res.Error = Failed, "left the catalog; removing it: "+err.Error()
		return o
	}
	if plan == nil {
		plan = &Plan{}
	}
	o.res.Action, o.res.Changes, o.res.Observed = plan.Action, plan.Changes, plan.Observed
	switch {
	case !plan.HasChanges():
		o.res.Outcome, o.res.Action = Unchanged, ActionNone
		o.res.Reason = "left the catalog; already absent"
		o.inventory, o.forget = invRemove, true
		return o
	case plan.MaxClass() == Destructive && !res.AllowDestroy:
		o.res.Outcome = PendingDestroy
		o.res.Reason = "left the catalog, and removing it is destructive (" + destructiveFields(plan) +
			"); it did not allow destroy when last applied: put it back with allowDestroy: true " +
			"and ensure absent to remove it, or remove it by hand"
		return o
	case r.opts.Noop:
		o.res.Outcome, o.res.Reason = Drifted, "left the catalog; would be removed"
		return o
	case plan.Apply == nil:
		o.res.Outcome = Failed
		o.res.Error = fmt.Sprintf("left the catalog; plan has changes but no apply function (a bug in kind %s)", k.Kind())
		return o
	}
	if _, err := contain(r.steps, rctx, limit, "delete", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, plan.Apply(ctx)
	}); err != nil {
		if IsSkip(err) {
			o.res.Outcome, o.res.Reason = Skipped, "left the catalog; "+skipReason(err)
			return o
		}
		o.res.Outcome, o.res.Error = Failed, "left the catalog; removing it: "+err.Error()
		return o
	}
	o.res.Outcome, o.res.Action = Deleted, ActionDelete
	o.res.Reason = "left the catalog"
	o.inventory, o.forget = invRemove, true
	return o
}

// pruneOrder orders resources that left the catalog so that a resource is
// removed before the ones it required or notified. Edges to resources
// outside the set are dropped; should the old edges not form a graph, the
// reverse ID order is used.
func pruneOrder(gone []Resource) []Resource {
	in := make(map[ID]Resource, len(gone))
	for _, r := range gone {
		in[r.ID] = r
	}
	keep := func(ids []ID) []ID {
		var out []ID
		for _, id := range ids {
			if _, ok := in[id]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	cat := &Catalog{}
	for _, r := range gone {
		cat.Resources = append(cat.Resources, Resource{ID: r.ID, Require: keep(r.Require), Notify: keep(r.Notify)})
	}
	var ids []ID
	if g, errs := BuildGraph(cat); len(errs) == 0 {
		ids = g.Order
	} else {
		for _, r := range gone {
			ids = append(ids, r.ID)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	}
	out := make([]Resource, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, in[ids[i]])
	}
	return out
}
