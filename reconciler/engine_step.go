package reconciler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/jsondoc"
)

// handle runs the resource at position i through plan, apply, verify and
// refresh, and returns its outcome. It runs on a worker goroutine.
//
// It returns nil when the worker is abandoned: the plan step, which runs
// on the worker itself (planOnWorker), outlived its time limit or the
// run, and its outcome was sent to results in the worker's place. The
// worker must then leave: the scheduler starts another in its place.
func (r *run) handle(ctx context.Context, i int, in input, results chan<- *outcome) (o *outcome) {
	start := time.Now()
	id := r.p.Graph.Order[i]
	// The kinds' steps run contained; a panic in the engine's own handling
	// fails the resource rather than the process (whose exit code 2 would
	// say "changes applied").
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("engine panicked handling a resource", "id", string(id), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			o = &outcome{res: Result{ID: id, Outcome: Failed, Error: fmt.Sprintf("fsgit panicked handling it: %v", p)}, pos: i, blocked: true, cause: id}
		}
		if o != nil {
			o.res.Duration = jsondoc.Seconds(time.Since(start))
		}
	}()
	escape := func(o *outcome) {
		o.res.Duration = jsondoc.Seconds(time.Since(start))
		o.lostWorker = true
		results <- o
	}
	return r.step(ctx, i, in, escape)
}

// step is handle's work. escape sends the outcome of a resource whose
// plan step outlived its limit, in place of the abandoned worker; step
// then returns nil.
func (r *run) step(ctx context.Context, i int, in input, escape func(*outcome)) *outcome {
	at := &r.p.at[i]
	res := at.res
	id := res.ID
	o := &outcome{res: Result{ID: id}, pos: i}
	fail := func(err error) *outcome {
		var pe *PanicError
		if errors.As(err, &pe) {
			r.e.log.Error("resource panicked", "id", string(id), "step", pe.Step, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
		if ctx.Err() != nil {
			// The run was cancelled under the resource: it may be half done.
			err = fmt.Errorf("interrupted, the run was cancelled (%v): %w", context.Cause(ctx), err)
		}
		o.res.Outcome = Failed
		o.res.Error = err.Error()
		o.blocked, o.cause = true, id
		return o
	}
	if err := at.invalid; err != nil {
		return fail(err)
	}
	k := at.kind
	limit := r.p.timeoutAt(i, r.e.timeout)
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	env := r.env(id, r.cache)

	// planFailed is the outcome of a plan step that failed.
	planFailed := func(err error) *outcome {
		switch {
		case IsSkip(err):
			o.res.Outcome, o.res.Reason = Skipped, skipReason(err)
			return o
		case r.opts.Noop && len(in.pendingDeps) > 0:
			// A dependency would change first (a package not yet
			// installed): this resource cannot be observed honestly
			// before that.
			o.res.Outcome = Skipped
			o.res.Reason = fmt.Sprintf("cannot be observed before %s is applied: %v", joinIDs(in.pendingDeps), err)
			o.pending = true
			return o
		}
		return fail(err)
	}
	plan, err, abandoned := planOnWorker(rctx, limit, func(ctx context.Context) (*Plan, error) { return r.p.planAt(ctx, i, env) },
		func(err error) { escape(planFailed(err)) })
	switch {
	case abandoned:
		return nil
	case err != nil:
		return planFailed(err)
	}
	if plan == nil {
		plan = &Plan{}
	}
	o.res.Action = plan.Action
	o.res.Changes = plan.Changes
	o.res.Observed = plan.Observed
	o.res.Warning = plan.Warning
	observed := NewObservedState(plan.Observed)
	detect := res.Mode == ModeDetect
	held, isHeld := r.opts.Held[id]
	if plan.HasChanges() {
		o.res.Corrective = r.corrective(res, observed)
	}

	switch {
	case !plan.HasChanges():
		o.res.Outcome, o.res.Action = Unchanged, ActionNone
		if !r.opts.Noop {
			remembered := observed.compact()
			o.remember = &remembered
			if !detect {
				o.inventory = invUpsert
			}
		}
	case detect:
		o.res.Outcome = Drifted
		o.res.Reason = reasonDetect
	case isHeld:
		o.res.Outcome = Drifted
		o.res.Reason = held
	case plan.MaxClass() == Destructive && !res.AllowDestroy:
		o.res.Outcome = PendingDestroy
		o.res.Reason = "destructive change held (" + destructiveFields(plan) +
			"): set allowDestroy: true on this resource to let it run"
	case r.opts.Waiting != "" && plan.MaxClass() >= Disruptive && !r.opts.Noop:
		o.res.Outcome = Drifted
		o.res.Reason = r.opts.Waiting
	case r.opts.Noop:
		o.res.Outcome = Drifted
		o.changed, o.pending = true, true
	default:
		if plan.Apply == nil {
			return fail(fmt.Errorf("plan has changes but no apply function (a bug in kind %s)", k.Kind()))
		}
		o.inventory = invAddMissing
		o.forget = true
		if _, err := contain(r.steps, rctx, limit, "apply", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, plan.Apply(ctx)
		}); err != nil {
			if IsSkip(err) {
				o.res.Outcome, o.res.Reason = Skipped, skipReason(err)
				o.inventory, o.forget = invKeep, false
				return o
			}
			return fail(err)
		}
		switch plan.Action {
		case ActionCreate:
			o.res.Outcome = Created
		case ActionDelete:
			o.res.Outcome = Deleted
		default:
			o.res.Outcome = Changed
		}
		o.changed = true
		o.inventory = invUpsert
		if r.batch.Pending(string(id)) {
			// The apply staged file writes: the resource is verified
			// and refreshed once the run's batch commits them.
			refreshBy := in.refreshBy
			o.after = func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, limit)
				defer cancel()
				r.verify(ctx, limit, k, res, o)
				if len(refreshBy) > 0 {
					r.refresh(ctx, limit, k, res, env, refreshBy, o)
				}
			}
			return o
		}
		r.verify(rctx, limit, k, res, o)
	}

	if len(in.refreshBy) > 0 {
		r.refresh(rctx, limit, k, res, env, in.refreshBy, o)
	}
	return o
}

// reasonDetect is the reason of a drifted resource in detect mode; reports
// tell it from a noop's drift by it.
const reasonDetect = "drift is detect on this resource: reported, not corrected"

// verify plans the resource again after its apply, with a fresh cache (the
// run's holds what was observed before the apply; only its stable values
// are shared) and Env.Verify set, to learn the observed state to remember and to notice an
// apply that did not converge.
func (r *run) verify(ctx context.Context, limit time.Duration, k Kind, res *Resource, o *outcome) {
	cache := newVerifyCache(r.cache)
	defer func() {
		if err := cache.Close(); err != nil {
			r.e.log.Warn("closing cached clients after verify", "id", string(res.ID), "err", err)
		}
	}()
	env := r.env(res.ID, cache)
	env.Verify = true
	plan, err := contain(r.steps, ctx, limit, "verify", func(ctx context.Context) (*Plan, error) { return r.p.plan(ctx, k, env, res) })
	switch {
	case err != nil:
		o.res.Warning = fmt.Sprintf("applied, but observing it again failed: %v", err)
	case plan.HasChanges():
		var fields []string
		for _, c := range plan.Changes {
			fields = append(fields, c.Field)
		}
		if len(fields) == 0 {
			fields = append(fields, string(plan.Action))
		}
		o.res.Warning = "applied, but still differs: " + strings.Join(fields, ", ")
		o.res.Observed = plan.Observed
	default:
		o.res.Observed = plan.Observed
		st := NewObservedState(plan.Observed)
		o.remember, o.forget = &st, false
	}
}

// refresh sends the refresh of a notify edge to a resource, once, after its
// own plan: in noop it records what would happen.
func (r *run) refresh(ctx context.Context, limit time.Duration, k Kind, res *Resource, env *Env, by []ID, o *outcome) {
	rf, ok := AsRefresher(k)
	if !ok {
		// Notify on a kind that cannot refresh is only an ordering edge.
		return
	}
	switch o.res.Outcome {
	case Failed, Skipped:
		return
	}
	o.res.RefreshedBy = by
	if r.opts.Waiting != "" && !r.opts.Noop {
		note := "restart waits (" + r.opts.Waiting + "): notified by " + joinIDs(by)
		if o.res.Reason == "" {
			o.res.Reason = note
		} else {
			o.res.Reason += "; " + note
		}
		return
	}
	if held, ok := r.opts.Held[res.ID]; ok && !r.opts.Noop {
		note := "refresh waits for the hold's end (" + held + "): notified by " + joinIDs(by)
		if o.res.Reason == "" {
			o.res.Reason = note
		} else if !strings.Contains(o.res.Reason, held) {
			o.res.Reason += "; " + note
		} else {
			o.res.Reason += "; refresh waits: notified by " + joinIDs(by)
		}
		return
	}
	if res.Mode == ModeDetect {
		note := "not refreshed (drift is detect): notified by " + joinIDs(by)
		if o.res.Reason == "" {
			o.res.Reason = note
		} else {
			o.res.Reason += "; " + note
		}
		return
	}
	if r.opts.Noop {
		o.res.Refreshed, o.changed = true, true
		return
	}
	ownChange := o.res.Outcome == Created || o.res.Outcome == Changed
	if _, err := contain(r.steps, ctx, limit, "refresh", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.p.refresh(ctx, k, rf, env, res, ownChange)
	}); err != nil {
		if IsSkip(err) {
			o.res.Reason = "refresh skipped: " + skipReason(err)
			o.refreshDone = true
			return
		}
		o.res.Outcome = Failed
		o.res.Error = fmt.Sprintf("refresh (notified by %s): %v", joinIDs(by), err)
		o.blocked, o.cause = true, res.ID
		o.remember, o.forget = nil, true
		return
	}
	o.res.Refreshed, o.changed, o.refreshDone = true, true, true
}

// corrective reports whether changes on res correct drift: the desired
// state is the one last applied, and the observed state differs from the
// one remembered when it last converged.
func (r *run) corrective(res *Resource, now ObservedState) bool {
	last, ok := r.prior.Observed[res.ID]
	if !ok || last.Hash == now.Hash {
		return false
	}
	inv, ok := r.prior.Inventory[res.ID]
	// A state file written before kinds remembered digests holds the
	// whole spec.
	return ok && (SameDesired(&inv, r.p.remembered(res.ID)) || SameDesired(&inv, res))
}

// env returns the Env a kind sees for one resource.
func (r *run) env(id ID, cache *Cache) *Env {
	return &Env{
		Root:          r.opts.Root,
		Noop:          r.opts.Noop,
		Secrets:       r.opts.Secrets,
		Log:           resourceLogger(r.e.log, id),
		Cache:         cache,
		OnProgress:    r.opts.Progress,
		ProgressEvery: r.opts.ProgressEvery,
		batch:         r.batch,
		owner:         id,
	}
}

// commit commits the run's staged file writes, then verifies and
// refreshes the resources that staged them, up to e.parallel at once, and
// returns their outcomes. A resource whose writes could not be committed
// fails: its target holds its old content.
func (r *run) commit(ctx context.Context) []*outcome {
	staged := r.staged
	r.staged = nil
	errs := r.batch.Commit()
	var wg sync.WaitGroup
	slots := make(chan struct{}, r.e.parallel)
	for _, o := range staged {
		after := o.after
		o.after = nil
		if err := errs[string(o.res.ID)]; err != nil {
			o.res.Outcome = Failed
			o.res.Error = fmt.Sprintf("apply: %v", err)
			o.blocked, o.cause = true, o.res.ID
			o.inventory, o.remember, o.forget = invAddMissing, nil, true
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			start := time.Now()
			defer func() {
				if p := recover(); p != nil {
					r.e.log.Error("engine panicked verifying a resource", "id", string(o.res.ID), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					o.res.Warning = fmt.Sprintf("applied, but fsgit panicked verifying it: %v", p)
				}
				o.res.Duration += jsondoc.Seconds(time.Since(start))
			}()
			after(ctx)
		}()
	}
	wg.Wait()
	return staged
}

// planOnWorker runs a resource's plan step, f, on the calling goroutine
// (the run's worker), where contain runs a step on another: the plan is
// the step every resource takes in every run, and handing each to a kept
// goroutine and back is what a no-op of 1,000 files spends most on
// between its steps. Measured (docs/scale.md, session 11): 34.4 → 33.7
// ms wall, 45.3 → 44.7 ms task-clock (61 interleaved runs); the
// context.AfterFunc below costs ~460 ns a step of what the hop did. A
// panic becomes a *PanicError, as in contain.
//
// The protection contain gives, that a step which ignores its context
// cannot hold the run past its time limit, is kept the other way round:
// should ctx end (the limit, or the run cancelled) while f runs, escape
// runs at once on a goroutine of its own with the step's error and sends
// the resource's outcome in the worker's place. The worker is abandoned:
// when f returns at last, planOnWorker drops its result and returns
// abandoned true, and the worker leaves. Exactly one of the two goes on
// (context.AfterFunc's stop decides).
func planOnWorker(ctx context.Context, limit time.Duration, f func(context.Context) (*Plan, error), escape func(error)) (plan *Plan, err error, abandoned bool) {
	stop := context.AfterFunc(ctx, func() {
		defer crash.Exit()
		escape(stepError("plan", ctx, limit, ctx.Err()))
	})
	func() {
		defer func() {
			if p := recover(); p != nil {
				plan, err = nil, &PanicError{Step: "plan", Value: p, Stack: debug.Stack()}
			}
		}()
		plan, err = f(ctx)
	}()
	if !stop() {
		return nil, nil, true
	}
	return plan, stepError("plan", ctx, limit, err), false
}

// stepError says, of a step's error when the step's context ended by its
// deadline, that the step timed out after limit; any other error is
// returned as it is.
func stepError(step string, ctx context.Context, limit time.Duration, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("%s %w after %s: %w", step, ErrTimeout, limit, err)
		}
	}
	return err
}

// contain runs one step of a resource on a goroutine of its own (one of
// sp's), so that a step that ignores its context cannot hold the run past
// its time limit, and turns a panic into an error. The goroutine of a step
// that timed out is abandoned; it may finish later, and its result is
// dropped.
func contain[T any](sp *steppers, ctx context.Context, limit time.Duration, step string, f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	sp.run(func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: &PanicError{Step: step, Value: p, Stack: debug.Stack()}}
			}
		}()
		v, err := f(ctx)
		ch <- result{v: v, err: err}
	})
	var out result
	select {
	case out = <-ch:
	case <-ctx.Done():
		select {
		case out = <-ch: // finished at the deadline: keep its answer
		default:
			out.err = ctx.Err()
		}
	}
	return out.v, stepError(step, ctx, limit, out.err)
}

// PanicError is the error of a resource whose kind panicked. The run goes
// on; the resource fails and its dependents are skipped.
type PanicError struct {
	// Step is "plan", "apply", "verify" or "refresh".
	Step string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

// Error describes the panic without its stack.
func (e *PanicError) Error() string { return fmt.Sprintf("panic in %s: %v", e.Step, e.Value) }

func skipReason(err error) string {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason
	}
	return err.Error()
}

func destructiveFields(p *Plan) string {
	var parts []string
	for _, c := range p.Changes {
		if c.Class == Destructive {
			parts = append(parts, c.Field)
		}
	}
	if len(parts) == 0 {
		return string(p.Action)
	}
	return strings.Join(parts, ", ")
}

func joinIDs(ids []ID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = string(id)
	}
	return strings.Join(parts, ", ")
}
