package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/crash"
)

// run is the state of one Engine.Run. The scheduling goroutine owns every
// field; workers only read their own resource and the inputs given to
// them, and hand back an *outcome.
type run struct {
	e     *Engine
	p     *Prepared
	opts  RunOptions
	cache *Cache
	prior *Memory
	// out holds the outcomes of the catalog's resources, by position in
	// the graph order; nil for one not handled (yet).
	out     []*outcome
	pruned  []*outcome
	stopped string
	// steps runs the contained steps of the run's resources (see
	// [contain]).
	steps *steppers
	// batch stages the file writes of the resources in hand; staged holds
	// their outcomes until it commits (see [run.commit]).
	batch  *atomicfile.Batch
	staged []*outcome
}

// outcome is a resource's result plus what the scheduler and the memory
// need to know about it.
type outcome struct {
	res Result
	// pos is the resource's position in the graph order.
	pos int
	// changed: the resource changed, or was refreshed (in noop: would be),
	// so resources it notifies are refreshed.
	changed bool
	// blocked: the resource failed, or was skipped because a dependency
	// failed; its dependents are skipped. cause names the failed resource.
	blocked bool
	cause   ID
	// pending: in noop, the resource has changes that were not applied, so
	// what depends on it may not be observable yet.
	pending bool
	// remember is the converged observed state to keep; forget drops the
	// one kept. Neither: keep what was there.
	remember *ObservedState
	forget   bool
	// inventory says how the run changes the resource's inventory entry.
	inventory inventoryAction
	// refreshDone: the refresh owed to the resource ran, or cannot run
	// here; nothing is owed any more.
	refreshDone bool
	// after, when set, verifies and refreshes a resource whose apply
	// staged file writes, once they are committed.
	after func(ctx context.Context)
	// lostWorker: the outcome was sent in place of a worker abandoned to
	// a plan step that outlived its limit (planOnWorker).
	lostWorker bool
}

type inventoryAction int

const (
	invKeep       inventoryAction = iota
	invUpsert                     // fsgit manages it as it is now
	invAddMissing                 // an apply was attempted: it may exist in part
	invRemove                     // pruned, gone, or no longer manageable
)

// input is what a worker needs from the resources handled before it.
type input struct {
	// refreshBy lists the notifiers that changed, and those of a refresh
	// owed from an earlier run.
	refreshBy []ID
	// pendingDeps lists dependencies with unapplied changes (noop).
	pendingDeps []ID
}

// commitDelay is how long staged file writes wait for the resources in
// hand when nothing else is ready to start, before they are committed
// without them.
const commitDelay = 20 * time.Millisecond

// schedule handles the selected resources (by position) in dependency
// order, up to e.parallel at once, and fills r.out.
func (r *run) schedule(ctx context.Context, sel []bool) {
	at := r.p.at
	waiting := make([]int, len(sel))
	ready := &posHeap{}
	for i, in := range sel {
		if !in {
			continue
		}
		n := 0
		for _, dep := range at[i].before {
			if sel[dep] {
				n++
			}
		}
		waiting[i] = n
		if n == 0 {
			ready.push(i)
		}
	}
	// Up to e.parallel workers, started as needed, take the resources to
	// handle: a goroutine per worker rather than per resource, whose stack
	// has grown to what handling one needs by the next. running never
	// exceeds e.parallel, so neither channel is ever full.
	type task struct {
		pos int
		in  input
	}
	tasks := make(chan task, r.e.parallel)
	defer close(tasks)
	results := make(chan *outcome, r.e.parallel)
	running, workers := 0, 0
	finish := func(o *outcome) {
		o.res.dropOwnID()
		r.out[o.pos] = o
		r.log(o)
		for _, next := range at[o.pos].after {
			if !sel[next] {
				continue
			}
			waiting[next]--
			if waiting[next] == 0 {
				ready.push(next)
			}
		}
	}
	// A resource whose apply staged file writes is finished (and what
	// depends on it may start) when the batch commits: as soon as nothing
	// else is ready to start, so that one commit serves many resources.
	for {
		for ready.Len() > 0 && running < r.e.parallel && r.stopped == "" {
			if reason := r.stopReason(ctx); reason != "" {
				r.stopped = reason
				break
			}
			i := ready.pop()
			if o := r.blocked(i); o != nil {
				finish(o)
				continue
			}
			in := r.inputs(i)
			running++
			if workers < running {
				workers++
				go func() {
					defer crash.Exit()
					for t := range tasks {
						o := r.handle(ctx, t.pos, t.in, results)
						if o == nil {
							// Abandoned: its outcome was sent for it.
							return
						}
						results <- o
					}
				}()
			}
			tasks <- task{i, in}
		}
		if len(r.staged) > 0 && (running == 0 || r.stopped != "") {
			for _, o := range r.commit(ctx) {
				finish(o)
			}
			continue
		}
		if running == 0 {
			break
		}
		var o *outcome
		if len(r.staged) > 0 && ready.Len() == 0 {
			// Only resources in hand are left: commit if they take a
			// while, so that what depends on the staged ones need not
			// wait for them.
			select {
			case o = <-results:
			case <-time.After(commitDelay):
				for _, o := range r.commit(ctx) {
					finish(o)
				}
				continue
			}
		} else {
			o = <-results
		}
		running--
		if o.lostWorker {
			// Its worker is abandoned to a step that outlived its limit:
			// the next resource to start starts another.
			workers--
		}
		if o.after != nil {
			r.staged = append(r.staged, o)
			continue
		}
		finish(o)
	}
	if r.stopped == "" {
		r.stopped = r.stopReason(ctx)
	}
	for i, in := range sel {
		if in && r.out[i] == nil {
			r.out[i] = &outcome{res: Result{ID: r.p.Graph.Order[i], Outcome: Skipped, Reason: "not run: " + r.stopped}, pos: i, blocked: true}
		}
	}
}

// stopReason says why no more resources may start, or "" if they may.
func (r *run) stopReason(ctx context.Context) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("run cancelled (%v)", context.Cause(ctx))
	}
	select {
	case <-r.opts.Stop:
		return "run stopped on request"
	default:
		return ""
	}
}

// blocked returns a skip outcome when one of the dependencies of the
// resource at position i failed or was skipped because of a failure, and
// nil when it may run.
func (r *run) blocked(i int) *outcome {
	id := r.p.Graph.Order[i]
	for _, d := range r.p.at[i].before {
		o := r.out[d]
		if o == nil || !o.blocked {
			continue
		}
		dep := o.res.ID
		reason := fmt.Sprintf("dependency %s failed", dep)
		if o.cause != dep {
			reason = fmt.Sprintf("dependency %s was skipped because %s failed", dep, o.cause)
		}
		if o.res.Outcome == Skipped && o.cause == "" {
			reason = fmt.Sprintf("dependency %s was not run", dep)
		}
		return &outcome{res: Result{ID: id, Outcome: Skipped, Reason: reason}, pos: i, blocked: true, cause: o.cause}
	}
	return nil
}

// inputs collects what the resource at position i needs from its
// finished dependencies.
func (r *run) inputs(i int) input {
	in := input{refreshBy: r.notifiers(i)}
	for _, d := range r.p.at[i].before {
		if o := r.out[d]; o != nil && o.pending {
			in.pendingDeps = append(in.pendingDeps, o.res.ID)
		}
	}
	return in
}

// notifiers returns the resources whose change owes id a refresh: its
// notifiers that changed in this run, then those of a refresh owed from an
// earlier one.
func (r *run) notifiers(i int) []ID {
	var by []ID
	for _, n := range r.p.at[i].notifiedBy {
		if o := r.out[n]; o != nil && o.changed {
			by = append(by, o.res.ID)
		}
	}
	owed := r.prior.Refresh[r.p.Graph.Order[i]]
	if len(owed) == 0 {
		return by
	}
	seen := make(map[ID]bool, len(by)+len(owed))
	for _, n := range by {
		seen[n] = true
	}
	for _, n := range owed {
		if !seen[n] {
			by = append(by, n)
			seen[n] = true
		}
	}
	return by
}

// owesRefresh reports whether a refresh that the resource at position i
// was owed and did not get must be kept for the next run.
func (r *run) owesRefresh(i int, o *outcome) bool {
	if o.refreshDone || o.res.Refreshed {
		return false
	}
	if o.res.Outcome == Skipped && !o.blocked {
		return false // its kind cannot run here
	}
	res := r.p.at[i].res
	_, ok := AsRefresher(r.p.at[i].kind)
	return ok && res.Mode != ModeDetect
}

// log writes one line for a resource's outcome.
func (r *run) log(o *outcome) {
	res := &o.res
	if r.opts.LogResult != nil && !r.opts.LogResult(res) {
		return
	}
	level := slog.LevelInfo
	switch {
	case res.Outcome == Failed, res.Warning != "":
		level = slog.LevelWarn
	case res.Outcome == Unchanged && !res.Refreshed, res.Outcome == Skipped:
		level = slog.LevelDebug
	}
	if !r.e.log.Enabled(context.Background(), level) {
		return // a quiet run's thousand unchanged lines cost nothing
	}
	attrs := []any{"id", string(res.ID), "outcome", string(res.Outcome)}
	if res.Refreshed {
		attrs = append(attrs, "refreshed", true)
	}
	if res.Corrective {
		attrs = append(attrs, "corrective", true)
	}
	if res.Reason != "" {
		attrs = append(attrs, "reason", res.Reason)
	}
	if res.Error != "" {
		attrs = append(attrs, "err", res.Error)
	}
	if res.Warning != "" {
		attrs = append(attrs, "warning", res.Warning)
	}
	r.e.log.Log(context.Background(), level, "resource", attrs...)
}

// next computes what the node remembers after this run: the prior memory
// updated with every outcome. After a full run, observed states of
// resources that are neither in the catalog nor in the inventory go.
func (r *run) next(full bool) *Memory {
	m := r.prior.Clone()
	apply := func(o *outcome, res *Resource) {
		id := o.res.ID
		switch o.inventory {
		case invUpsert:
			m.Inventory[id] = *res
		case invAddMissing:
			if _, ok := m.Inventory[id]; !ok {
				m.Inventory[id] = *res
			}
		case invRemove:
			delete(m.Inventory, id)
		}
		switch {
		case o.remember != nil:
			m.Observed[id] = *o.remember
		case o.forget:
			delete(m.Observed, id)
		}
	}
	for i, o := range r.out {
		if o == nil {
			continue
		}
		id := o.res.ID
		apply(o, r.p.at[i].mem)
		if by := r.notifiers(i); len(by) > 0 && r.owesRefresh(i, o) {
			m.Refresh[id] = by
		} else {
			delete(m.Refresh, id)
		}
	}
	for _, o := range r.pruned {
		apply(o, nil)
	}
	if full {
		m.Applied = r.appliedAfter()
		for id := range m.Observed {
			_, inCatalog := r.p.res[id]
			_, inInventory := m.Inventory[id]
			if !inCatalog && !inInventory {
				delete(m.Observed, id)
			}
		}
		for id := range m.Refresh {
			if _, inCatalog := r.p.res[id]; !inCatalog {
				delete(m.Refresh, id)
			}
		}
	}
	return m
}

// posHeap is a min-heap of positions in the graph order, so that ready
// resources start in a stable order.
type posHeap struct{ pos []int }

func (h *posHeap) Len() int { return len(h.pos) }

// push adds position i.
func (h *posHeap) push(i int) {
	h.pos = append(h.pos, i)
	for i := len(h.pos) - 1; i > 0; {
		parent := (i - 1) / 2
		if h.pos[parent] <= h.pos[i] {
			break
		}
		h.pos[parent], h.pos[i] = h.pos[i], h.pos[parent]
		i = parent
	}
}

// pop removes and returns the least position.
func (h *posHeap) pop() int {
	top := h.pos[0]
	n := len(h.pos) - 1
	h.pos[0] = h.pos[n]
	h.pos = h.pos[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && h.pos[l] < h.pos[least] {
			least = l
		}
		if r < n && h.pos[r] < h.pos[least] {
			least = r
		}
		if least == i {
			break
		}
		h.pos[i], h.pos[least] = h.pos[least], h.pos[i]
		i = least
	}
	return top
}
