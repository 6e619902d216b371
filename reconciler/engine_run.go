package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
)

// run is the state of one Engine.Run. The scheduling goroutine owns every
// field; workers only read their own resource and the inputs given to
// them, and hand back an *outcome.
type run struct {
	e       *Engine
	p       *Prepared
	opts    RunOptions
	cache   *Cache
	prior   *Memory
	out     map[ID]*outcome
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

// schedule handles the selected resources in dependency order, up to
// e.parallel at once, and fills r.out.
func (r *run) schedule(ctx context.Context, sel map[ID]bool) {
	g := r.p.Graph
	waiting := make(map[ID]int, len(sel))
	ready := &idHeap{order: g.Order, index: r.p.index}
	for id := range sel {
		n := 0
		for _, dep := range g.Before[id] {
			if sel[dep] {
				n++
			}
		}
		waiting[id] = n
		if n == 0 {
			ready.push(id)
		}
	}
	// Up to e.parallel workers, started as needed, take the resources to
	// handle: a goroutine per worker rather than per resource, whose stack
	// has grown to what handling one needs by the next. running never
	// exceeds e.parallel, so neither channel is ever full.
	type task struct {
		id ID
		in input
	}
	tasks := make(chan task, r.e.parallel)
	defer close(tasks)
	results := make(chan *outcome, r.e.parallel)
	running, workers := 0, 0
	finish := func(o *outcome) {
		id := o.res.ID
		o.res.dropOwnID()
		r.out[id] = o
		r.log(o)
		for _, next := range g.After[id] {
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
			id := ready.pop()
			if o := r.blocked(id); o != nil {
				finish(o)
				continue
			}
			in := r.inputs(id)
			running++
			if workers < running {
				workers++
				go func() {
					for t := range tasks {
						results <- r.handle(ctx, t.id, t.in)
					}
				}()
			}
			tasks <- task{id, in}
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
		if o.after != nil {
			r.staged = append(r.staged, o)
			continue
		}
		finish(o)
	}
	if r.stopped == "" {
		r.stopped = r.stopReason(ctx)
	}
	for id := range sel {
		if _, done := r.out[id]; !done {
			r.out[id] = &outcome{res: Result{ID: id, Outcome: Skipped, Reason: "not run: " + r.stopped}, blocked: true}
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

// blocked returns a skip outcome when one of id's dependencies failed or
// was skipped because of a failure, and nil when id may run.
func (r *run) blocked(id ID) *outcome {
	for _, dep := range r.p.orderedIDs(r.p.Graph.Before[id]) {
		o, ok := r.out[dep]
		if !ok || !o.blocked {
			continue
		}
		reason := fmt.Sprintf("dependency %s failed", dep)
		if o.cause != dep {
			reason = fmt.Sprintf("dependency %s was skipped because %s failed", dep, o.cause)
		}
		if o.res.Outcome == Skipped && o.cause == "" {
			reason = fmt.Sprintf("dependency %s was not run", dep)
		}
		return &outcome{res: Result{ID: id, Outcome: Skipped, Reason: reason}, blocked: true, cause: o.cause}
	}
	return nil
}

// inputs collects what id needs from its finished dependencies.
func (r *run) inputs(id ID) input {
	in := input{refreshBy: r.notifiers(id)}
	for _, dep := range r.p.orderedIDs(r.p.Graph.Before[id]) {
		if o, ok := r.out[dep]; ok && o.pending {
			in.pendingDeps = append(in.pendingDeps, dep)
		}
	}
	return in
}

// notifiers returns the resources whose change owes id a refresh: its
// notifiers that changed in this run, then those of a refresh owed from an
// earlier one.
func (r *run) notifiers(id ID) []ID {
	var by []ID
	seen := map[ID]bool{}
	for _, n := range r.p.orderedIDs(r.p.Graph.NotifiedBy[id]) {
		if o, ok := r.out[n]; ok && o.changed {
			by = append(by, n)
			seen[n] = true
		}
	}
	for _, n := range r.prior.Refresh[id] {
		if !seen[n] {
			by = append(by, n)
			seen[n] = true
		}
	}
	return by
}

// owesRefresh reports whether a refresh that id was owed and did not get
// must be kept for the next run.
func (r *run) owesRefresh(id ID, o *outcome) bool {
	if o.refreshDone || o.res.Refreshed {
		return false
	}
	if o.res.Outcome == Skipped && !o.blocked {
		return false // its kind cannot run here
	}
	res := r.p.res[id]
	_, ok := AsRefresher(r.p.kinds[id])
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
	for id, o := range r.out {
		apply(o, r.p.remembered(id))
		if by := r.notifiers(id); len(by) > 0 && r.owesRefresh(id, o) {
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

// idHeap is a min-heap of IDs by their position in the graph order, so
// that ready resources start in a stable order. It holds the positions,
// which compare without a map lookup, and is typed: container/heap would
// box every ID pushed and popped.
type idHeap struct {
	pos   []int
	order []ID
	index map[ID]int
}

func (h *idHeap) Len() int { return len(h.pos) }

// push adds id.
func (h *idHeap) push(id ID) {
	h.pos = append(h.pos, h.index[id])
	for i := len(h.pos) - 1; i > 0; {
		parent := (i - 1) / 2
		if h.pos[parent] <= h.pos[i] {
			break
		}
		h.pos[parent], h.pos[i] = h.pos[i], h.pos[parent]
		i = parent
	}
}

// pop removes and returns the ID first in the graph order.
func (h *idHeap) pop() ID {
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
	return h.order[top]
}
