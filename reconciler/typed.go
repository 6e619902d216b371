package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
	"time"
)

// KindOf is a resource kind written against its decoded spec S. Wrapped by
// [NewTyped], it becomes a [Kind]: the engine decodes each resource's spec
// once, when the catalog is prepared, and hands the decoded *S to every
// method of the run. The schema (schema/kinds.cue) is the single source of
// S's fields, defaults and constraints: a catalog comes out of CUE with
// every default filled, so S carries no default of its own.
//
// A KindOf may also implement, on *S, [SpecChecker], [SpecPruner],
// [SpecRefresher], [SpecTimeouter] and [SpecRememberer]; on resources,
// [Previewer] and [Retainer]. The wrapper has exactly the abilities its
// implementation has.
type KindOf[S any] interface {
	// Kind returns the kind's name, as [Kind.Kind].
	Kind() string
	// Plan is [Kind.Plan] with r's spec decoded.
	Plan(ctx context.Context, env *Env, r *Resource, s *S) (*Plan, error)
}

// SpecChecker checks, once per resource and without I/O, what the schema
// cannot (a secret reference's shape, a name taken from the ID).
type SpecChecker[S any] interface {
	Check(r *Resource, s *S) error
}

// SpecPruner is [Pruner] on a decoded spec: s is the resource's spec as
// the node last applied it.
type SpecPruner[S any] interface {
	PlanDelete(ctx context.Context, env *Env, r *Resource, s *S) (*Plan, error)
}

// SpecRefresher is [Refresher] on a decoded spec.
type SpecRefresher[S any] interface {
	Refresh(ctx context.Context, env *Env, r *Resource, s *S, changed bool) error
}

// SpecTimeouter is [Timeouter] on a decoded spec.
type SpecTimeouter[S any] interface {
	Timeout(s *S) time.Duration
}

// SpecRememberer is [Rememberer] on a decoded spec.
type SpecRememberer[S any] interface {
	RememberSpec(r *Resource, s *S) (json.RawMessage, error)
}

// Typed adapts a [KindOf] to [Kind]. Its methods that take a resource
// decode its spec (tests and fsgit plan call them); the engine decodes once
// per resource at [Engine.Prepare] and calls the implementation directly.
// It implements [Pruner], [Refresher], [Previewer], [Timeouter],
// [Rememberer], [Retainer] and io.Closer as methods, but only those its
// implementation has count: ask [AsPruner], [AsPreviewer] and the like,
// not a type assertion.
type Typed[S any] struct {
	impl    KindOf[S]
	decodes atomic.Int64
	// specs reuses decoders from one spec to the next.
	specs specDecoders
}

// NewTyped wraps impl.
func NewTyped[S any](impl KindOf[S]) *Typed[S] { return &Typed[S]{impl: impl} }

// Impl returns the wrapped implementation.
func (t *Typed[S]) Impl() KindOf[S] { return t.impl }

// Kind returns the kind's name.
func (t *Typed[S]) Kind() string { return t.impl.Kind() }

// SpecType returns the type of the kind's spec, S (tests compare it with
// the schema).
func (t *Typed[S]) SpecType() reflect.Type { return reflect.TypeFor[S]() }

// Decodes returns how many specs the kind has decoded so far (a run
// should decode each of its resources once).
func (t *Typed[S]) Decodes() int64 { return t.decodes.Load() }

// Decode decodes r's spec strictly (as [Resource.DecodeSpec]) and checks
// it with the implementation's [SpecChecker], if it has one.
func (t *Typed[S]) Decode(r *Resource) (*S, error) {
	t.decodes.Add(1)
	s := new(S)
	if err := r.specError(t.specs.decode(r.Spec, s)); err != nil {
		return nil, err
	}
	if c, ok := t.impl.(SpecChecker[S]); ok {
		if err := c.Check(r, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Validate decodes and checks r's spec.
func (t *Typed[S]) Validate(r *Resource) error {
	_, err := t.Decode(r)
	return err
}

// Plan decodes r's spec and plans it.
func (t *Typed[S]) Plan(ctx context.Context, env *Env, r *Resource) (*Plan, error) {
	s, err := t.Decode(r)
	if err != nil {
		return nil, err
	}
	return t.impl.Plan(ctx, env, r, s)
}

// PlanDelete decodes r's spec and plans its removal.
func (t *Typed[S]) PlanDelete(ctx context.Context, env *Env, r *Resource) (*Plan, error) {
	s, err := t.Decode(r)
	if err != nil {
		return nil, err
	}
	return t.planDelete(ctx, env, r, s)
}

func (t *Typed[S]) planDelete(ctx context.Context, env *Env, r *Resource, s *S) (*Plan, error) {
	p, ok := t.impl.(SpecPruner[S])
	if !ok {
		return nil, fmt.Errorf("%s: kind %s does not remove resources", r.ID, t.Kind())
	}
	return p.PlanDelete(ctx, env, r, s)
}

// Refresh decodes r's spec and refreshes it.
func (t *Typed[S]) Refresh(ctx context.Context, env *Env, r *Resource, changed bool) error {
	s, err := t.Decode(r)
	if err != nil {
		return err
	}
	return t.refresh(ctx, env, r, s, changed)
}

func (t *Typed[S]) refresh(ctx context.Context, env *Env, r *Resource, s *S, changed bool) error {
	rf, ok := t.impl.(SpecRefresher[S])
	if !ok {
		return fmt.Errorf("%s: kind %s does not refresh", r.ID, t.Kind())
	}
	return rf.Refresh(ctx, env, r, s, changed)
}

// Timeout decodes r's spec and returns its time limit (zero: the
// engine's default, also for a spec that does not decode).
func (t *Typed[S]) Timeout(r *Resource) time.Duration {
	tm, ok := t.impl.(SpecTimeouter[S])
	if !ok {
		return 0
	}
	s, err := t.Decode(r)
	if err != nil {
		return 0
	}
	return tm.Timeout(s)
}

// RememberSpec decodes r's spec and returns its remembered form; r.Spec
// when the kind keeps the spec as it is.
func (t *Typed[S]) RememberSpec(r *Resource) (json.RawMessage, error) {
	s, err := t.Decode(r)
	if err != nil {
		return nil, err
	}
	return t.remember(r, s)
}

func (t *Typed[S]) remember(r *Resource, s *S) (json.RawMessage, error) {
	rm, ok := t.impl.(SpecRememberer[S])
	if !ok {
		return r.Spec, nil
	}
	return rm.RememberSpec(r, s)
}

// Preview classes a change (see [Previewer]); a kind without its own
// preview is previewed as [DefaultPreview] does.
func (t *Typed[S]) Preview(old, new *Resource) (Class, string) {
	if pv, ok := t.impl.(Previewer); ok {
		return pv.Preview(old, new)
	}
	return DefaultPreview(old, new)
}

// Retain reports whether r is kept for rollback (see [Retainer]).
func (t *Typed[S]) Retain(r *Resource) bool {
	rt, ok := t.impl.(Retainer)
	return ok && rt.Retain(r)
}

// Close closes the implementation's clients, if it keeps any.
func (t *Typed[S]) Close() error {
	if cl, ok := t.impl.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// DefaultPreview is the preview of a kind that has none of its own:
// creates and updates are Safe, removals Destructive.
func DefaultPreview(_, new *Resource) (Class, string) {
	if new == nil {
		return Destructive, "remove"
	}
	return Safe, ""
}

// typedKind is what the engine uses of a [Typed]: a spec decoded once and
// the implementation's abilities.
type typedKind interface {
	Kind
	Timeouter
	decodeAny(r *Resource) (any, error)
	planSpec(ctx context.Context, env *Env, r *Resource, spec any) (*Plan, error)
	planDeleteSpec(ctx context.Context, env *Env, r *Resource, spec any) (*Plan, error)
	refreshSpec(ctx context.Context, env *Env, r *Resource, spec any, changed bool) error
	timeoutSpec(spec any) time.Duration
	rememberSpec(r *Resource, spec any) (json.RawMessage, bool, error)
	can(a ability) bool
}

// ability is one of a kind's optional abilities.
type ability int

const (
	canPrune ability = iota
	canRefresh
	canPreview
	canTimeout
	canRemember
	canRetain
	canClose
)

func (t *Typed[S]) can(a ability) bool {
	var ok bool
	switch a {
	case canPrune:
		_, ok = t.impl.(SpecPruner[S])
	case canRefresh:
		_, ok = t.impl.(SpecRefresher[S])
	case canPreview:
		_, ok = t.impl.(Previewer)
	case canTimeout:
		_, ok = t.impl.(SpecTimeouter[S])
	case canRemember:
		_, ok = t.impl.(SpecRememberer[S])
	case canRetain:
		_, ok = t.impl.(Retainer)
	case canClose:
		_, ok = t.impl.(io.Closer)
	}
	return ok
}

func (t *Typed[S]) decodeAny(r *Resource) (any, error) { return t.Decode(r) }

func (t *Typed[S]) planSpec(ctx context.Context, env *Env, r *Resource, spec any) (*Plan, error) {
	return t.impl.Plan(ctx, env, r, spec.(*S))
}

func (t *Typed[S]) planDeleteSpec(ctx context.Context, env *Env, r *Resource, spec any) (*Plan, error) {
	return t.planDelete(ctx, env, r, spec.(*S))
}

func (t *Typed[S]) refreshSpec(ctx context.Context, env *Env, r *Resource, spec any, changed bool) error {
	return t.refresh(ctx, env, r, spec.(*S), changed)
}

func (t *Typed[S]) timeoutSpec(spec any) time.Duration {
	if tm, ok := t.impl.(SpecTimeouter[S]); ok {
		return tm.Timeout(spec.(*S))
	}
	return 0
}

func (t *Typed[S]) rememberSpec(r *Resource, spec any) (json.RawMessage, bool, error) {
	rm, ok := t.impl.(SpecRememberer[S])
	if !ok {
		return nil, false, nil
	}
	b, err := rm.RememberSpec(r, spec.(*S))
	return b, true, err
}

// has reports whether k has ability a: a [Typed] kind when its
// implementation does, another kind when it implements the interface.
func has[I any](k Kind, a ability) (I, bool) {
	i, ok := k.(I)
	if tk, typed := k.(typedKind); typed && ok {
		ok = tk.can(a)
	}
	return i, ok
}

// AsPruner returns k as a [Pruner] if it removes resources.
func AsPruner(k Kind) (Pruner, bool) { return has[Pruner](k, canPrune) }

// AsRefresher returns k as a [Refresher] if it reacts to notify edges.
func AsRefresher(k Kind) (Refresher, bool) { return has[Refresher](k, canRefresh) }

// AsPreviewer returns k as a [Previewer] if it previews changes itself.
func AsPreviewer(k Kind) (Previewer, bool) { return has[Previewer](k, canPreview) }

// AsTimeouter returns k as a [Timeouter] if it sets its own time limits.
func AsTimeouter(k Kind) (Timeouter, bool) { return has[Timeouter](k, canTimeout) }

// AsRememberer returns k as a [Rememberer] if it remembers another form
// of its specs.
func AsRememberer(k Kind) (Rememberer, bool) { return has[Rememberer](k, canRemember) }

// AsRetainer returns k as a [Retainer] if it keeps resources for rollback.
func AsRetainer(k Kind) (Retainer, bool) { return has[Retainer](k, canRetain) }

// Close closes every registered kind that keeps clients (an io.Closer):
// Docker Engine API clients, MariaDB pools. It returns the errors joined.
func (r *Registry) Close() error {
	var errs []error
	for _, name := range r.Kinds() {
		k := r.kinds[name]
		if tk, ok := k.(typedKind); ok && !tk.can(canClose) {
			continue
		}
		cl, ok := k.(io.Closer)
		if !ok {
			continue
		}
		if err := cl.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing kind %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Ensure is the ensure field of the kinds whose resources are present or
// absent. The schema defaults it to present; a spec decoded outside a
// catalog may leave it empty, which means present too. Decoding refuses
// any other value.
type Ensure string

// The values of [Ensure].
const (
	EnsurePresent Ensure = "present"
	EnsureAbsent  Ensure = "absent"
)

// Absent reports whether the resource is to be removed.
func (e Ensure) Absent() bool { return e == EnsureAbsent }

// UnmarshalJSON reads "present", "absent" or "".
func (e *Ensure) UnmarshalJSON(b []byte) error {
	// The values as a catalog spells them, without a json.Unmarshal of
	// their own: it was 3 of the 11 allocations of a file spec's decode
	// (BenchmarkDecodeSpec).
	switch string(b) {
	case `"present"`:
		*e = EnsurePresent
		return nil
	case `"absent"`:
		*e = EnsureAbsent
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ensure: %w", err)
	}
	switch Ensure(s) {
	case "", EnsurePresent, EnsureAbsent:
		*e = Ensure(s)
		return nil
	}
	return fmt.Errorf("ensure %q is neither present nor absent", s)
}

// DecodeAs decodes and checks r's spec as kind k does, outside a run (a
// preview compares two versions of a resource).
func DecodeAs[S any](k KindOf[S], r *Resource) (*S, error) { return NewTyped(k).Decode(r) }
