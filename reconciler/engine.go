package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/jsondoc"
)

// Default engine settings.
const (
	// DefaultParallel is how many resources run at once by default.
	DefaultParallel = 4
	// DefaultTimeout bounds the handling of one resource by default.
	DefaultTimeout = 10 * time.Minute
)

// Config configures an [Engine].
type Config struct {
	// Registry holds the kinds the engine knows. A resource of a kind not
	// in it fails, with its dependents skipped.
	Registry *Registry
	// Log receives one line per resource that did something, and errors.
	// Nil discards.
	Log *slog.Logger
	// Parallel bounds how many independent resources are handled at once
	// (zero: DefaultParallel).
	Parallel int
	// Timeout bounds the handling (plan, apply, verify, refresh) of one
	// resource, unless its kind says otherwise through [Timeouter] (zero:
	// DefaultTimeout).
	Timeout time.Duration
}

// Engine reconciles catalogs. One engine serves many runs, one after
// another or at once; it keeps nothing between runs (see [Memory]).
//
// A run handles each resource in dependency order, independent resources
// in parallel up to a bound:
//
//  1. a resource whose dependency failed (or was skipped because one did)
//     is skipped, naming the failure;
//  2. Plan observes and diffs (bounded in time, its panics contained);
//  3. in detect mode, or in noop, changes are reported as drifted;
//  4. a destructive change on a resource that does not allow destroy is
//     held: the resource is reported as pending-destroy and nothing runs;
//  5. otherwise the plan's Apply runs, and a fresh Plan (with
//     [Env.Verify] set) checks that the resource converged (its observed
//     state is what the node remembers);
//  6. if a resource it notifies changed (or was refreshed), the resource
//     is refreshed once, after its own apply; in noop it is reported as
//     what would be refreshed.
//
// Only a failure holds back dependents: a resource that is held
// (pending-destroy), drifted in detect mode, or skipped because its kind
// cannot run here (a package under --root) does not.
//
// After the catalog, resources of the prior inventory that left it are
// pruned under the same rules.
//
// A daemon prepares a catalog once per revision ([Engine.Prepare]) and runs
// it as often as it needs ([Engine.Run]), passing each run the memory the
// previous one left ([Report.Next]) and cancelling the context when a newer
// revision arrives. Runs over the same node must not overlap: the engine
// does not serialize them.
type Engine struct {
	reg      *Registry
	log      *slog.Logger
	parallel int
	timeout  time.Duration
}

// NewEngine returns an engine with the given configuration.
func NewEngine(cfg Config) *Engine {
	e := &Engine{reg: cfg.Registry, log: cfg.Log, parallel: cfg.Parallel, timeout: cfg.Timeout}
	if e.reg == nil {
		e.reg = NewRegistry()
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.parallel <= 0 {
		e.parallel = DefaultParallel
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	return e
}

// RunOptions are the inputs of one run besides the catalog.
type RunOptions struct {
	// Noop runs everything but Apply and Refresh, and reports what would
	// change and what would be refreshed.
	Noop bool
	// Root prefixes every managed path (see [Env.Root]).
	Root string
	// Secrets resolves secret references. Nil: every secret is missing.
	Secrets SecretResolver
	// Progress receives every progress update of long steps (see
	// [Env.StartProgress]); they are logged every ProgressEvery (zero:
	// [DefaultProgressEvery]) whether it is set or not.
	Progress      func(ProgressUpdate)
	ProgressEvery time.Duration
	// Prior is what the node remembered after its last run (nil: nothing,
	// as on a new node). It drives pruning and the marking of corrective
	// changes.
	Prior *Memory
	// Only, when not empty, restricts the run to these resources and every
	// resource that depends on them, directly or not (a file changed on
	// disk: re-run it and what it notifies). Their own dependencies are
	// taken as done. Such a run prunes nothing.
	Only []ID
	// NoPrune turns pruning off.
	NoPrune bool
	// Stop, when closed, lets the resources in hand finish and starts no
	// other: the rest are skipped. Cancelling the run's context instead
	// also cancels the resources in hand.
	Stop <-chan struct{}
	// LogResult, when set, is asked before a resource's outcome is logged,
	// and may say no (nil: every outcome is logged). A daemon running the
	// same catalog on every poll uses it to log a held destroy or a
	// failure when it appears or changes, not on every run. It may be
	// called from several goroutines at once.
	LogResult func(res *Result) bool
	// Held lists the resources an operator holds (fsgit hold), with the
	// sentence that says by whom and until when: a held resource is
	// observed and its drift reported, never changed nor refreshed; a
	// refresh it is owed waits for the hold's end.
	Held map[ID]string
	// Waiting, when set, says that disruptive changes must wait (outside
	// the maintenance window): resources whose changes are disruptive or
	// destructive are reported as drifted with this reason, and restarts
	// wait, owed, as under a hold. Safe changes run.
	Waiting string
}

// CatalogError holds the problems with a catalog's IDs and edges that keep
// it from the engine: duplicates, dangling edges, a cycle.
type CatalogError struct {
	// Errs are the *EdgeError values found.
	Errs []error
}

// Error lists the problems, one per line after the first.
func (e *CatalogError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		parts[i] = err.Error()
	}
	return "invalid catalog: " + strings.Join(parts, "; ")
}

// Unwrap returns the problems, for errors.As.
func (e *CatalogError) Unwrap() []error { return e.Errs }

// Prepared is a catalog checked and ordered for the engine. Preparing is
// done once per catalog; the daemon runs a prepared catalog many times.
type Prepared struct {
	// Catalog is the catalog as given; it must not be modified.
	Catalog *Catalog
	// Graph is its dependency graph.
	Graph *Graph

	res     map[ID]*Resource
	mem     map[ID]*Resource // remembered forms (Rememberer), where they differ
	kinds   map[ID]Kind
	specs   map[ID]any // decoded specs of Typed kinds, decoded once here
	invalid map[ID]error
	index   map[ID]int
	// at holds, by position in Graph.Order, what a run looks up for each
	// resource (the maps above hold it by ID for the rest): a run does so
	// for every resource, several times, and thousands of string lookups
	// in maps of thousands cost more than the rest of a quiet run.
	at []prepared
}

// prepared is what a run needs of one resource, found by its position.
type prepared struct {
	res     *Resource
	mem     *Resource // as the inventory keeps it (see [Prepared.remembered])
	kind    Kind
	spec    any // decoded spec of a Typed kind, nil for others
	invalid error
	// before, after and notifiedBy are the positions of the resource's
	// edges in Graph, ascending: in the graph order.
	before, after, notifiedBy []int
}

// Prepare checks the catalog's edges and each resource's spec. Problems
// with edges (a dangling edge, a duplicate, a cycle) are returned as a
// *CatalogError and the catalog never runs. A resource of an unknown kind
// or with an invalid spec does not stop the catalog: it fails in every run,
// and its dependents are skipped (see [Prepared.Invalid]).
func (e *Engine) Prepare(cat *Catalog) (*Prepared, error) {
	return e.PrepareBeside(cat, nil)
}

// PrepareBeside is Prepare, with beside (when not nil) run on a goroutine
// of its own while the specs are checked: once the catalog's edges are
// found sound, that is once Prepare cannot fail any more. It returns
// after beside did. A catalog refused for its edges returns without
// beside having run: the work beside does (opening the node's state)
// happens only for a catalog that will run, as it would after Prepare.
// A panic in beside ends the process as one in Prepare would (exit code
// 1 and a crash file: internal/crash).
func (e *Engine) PrepareBeside(cat *Catalog, beside func()) (*Prepared, error) {
	g, errs := BuildGraph(cat)
	if len(errs) > 0 {
		return nil, &CatalogError{Errs: errs}
	}
	if beside != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer crash.Exit()
			beside()
		}()
		defer func() { <-done }()
	}
	p := &Prepared{
		Catalog: cat,
		Graph:   g,
		res:     make(map[ID]*Resource, len(cat.Resources)),
		mem:     map[ID]*Resource{},
		kinds:   make(map[ID]Kind, len(cat.Resources)),
		specs:   make(map[ID]any, len(cat.Resources)),
		invalid: map[ID]error{},
		index:   make(map[ID]int, len(g.Order)),
	}
	for i, id := range g.Order {
		p.index[id] = i
	}
	for i := range cat.Resources {
		r := &cat.Resources[i]
		p.res[r.ID] = r
		if !r.ID.Valid() {
			p.invalid[r.ID] = fmt.Errorf("malformed ID %q: want kind:name", r.ID)
			continue
		}
		k, ok := e.reg.Lookup(r.Kind())
		if !ok {
			p.invalid[r.ID] = fmt.Errorf("unknown kind %q: this fsgit has no such resource kind (it knows %s)",
				r.Kind(), strings.Join(e.reg.Kinds(), ", "))
			continue
		}
		p.kinds[r.ID] = k
		spec, err := validate(k, r)
		if err != nil {
			p.invalid[r.ID] = fmt.Errorf("invalid spec: %w", err)
			continue
		}
		if spec != nil {
			p.specs[r.ID] = spec
		}
		mspec, ok, err := remember(k, r, spec)
		if err != nil {
			p.invalid[r.ID] = fmt.Errorf("invalid spec: %w", err)
			continue
		}
		if ok {
			m := *r
			m.Spec = mspec
			p.mem[r.ID] = &m
		}
	}
	p.at = make([]prepared, len(g.Order))
	for i, id := range g.Order {
		p.at[i] = prepared{
			res: p.res[id], mem: p.remembered(id), kind: p.kinds[id], spec: p.specs[id], invalid: p.invalid[id],
			before: p.positions(g.Before[id]), after: p.positions(g.After[id]), notifiedBy: p.positions(g.NotifiedBy[id]),
		}
	}
	return p, nil
}

// positions returns the positions of ids in the graph order, ascending.
func (p *Prepared) positions(ids []ID) []int {
	if len(ids) == 0 {
		return nil
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = p.index[id]
	}
	slices.Sort(out)
	return out
}

// timeoutAt returns the time limit of the resource at position i (see
// [Prepared.timeout]).
func (p *Prepared) timeoutAt(i int, def time.Duration) time.Duration {
	e := &p.at[i]
	if tk, ok := e.kind.(typedKind); ok && e.spec != nil {
		if d := tk.timeoutSpec(e.spec); d > 0 {
			return d
		}
		return def
	}
	return p.timeout(e.kind, e.res, def)
}

// planAt plans the resource at position i (see [Prepared.plan]).
func (p *Prepared) planAt(ctx context.Context, i int, env *Env) (*Plan, error) {
	e := &p.at[i]
	if tk, ok := e.kind.(typedKind); ok && e.spec != nil {
		return tk.planSpec(ctx, env, e.res, e.spec)
	}
	return e.kind.Plan(ctx, env, e.res)
}

// remembered returns the resource as the node's inventory keeps it: its
// kind's remembered form (content replaced by digests) if it has one.
func (p *Prepared) remembered(id ID) *Resource {
	if m, ok := p.mem[id]; ok {
		return m
	}
	return p.res[id]
}

// remember returns r's remembered form, if k has one (see [Rememberer]),
// from its decoded spec for a [Typed] kind, turning a panic into an error.
func remember(k Kind, r *Resource, spec any) (mspec json.RawMessage, ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in remember: %v", v)
		}
	}()
	if tk, typed := k.(typedKind); typed && spec != nil {
		return tk.rememberSpec(r, spec)
	}
	rm, ok := AsRememberer(k)
	if !ok {
		return nil, false, nil
	}
	mspec, err = rm.RememberSpec(r)
	return mspec, true, err
}

// validate checks r's spec, turning a panic into an error. A [Typed] kind
// decodes it, once for the life of the prepared catalog, and the decoded
// spec is returned; other kinds validate it and nil is returned.
func validate(k Kind, r *Resource) (spec any, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in validate: %v", v)
		}
	}()
	if tk, ok := k.(typedKind); ok {
		return tk.decodeAny(r)
	}
	return nil, k.Validate(r)
}

// plan plans res with k: through its decoded spec for a [Typed] kind.
func (p *Prepared) plan(ctx context.Context, k Kind, env *Env, res *Resource) (*Plan, error) {
	if tk, ok := k.(typedKind); ok {
		if spec, ok := p.specs[res.ID]; ok && p.res[res.ID] == res {
			return tk.planSpec(ctx, env, res, spec)
		}
	}
	return k.Plan(ctx, env, res)
}

// refresh refreshes res with k's [Refresher]: through its decoded spec for
// a [Typed] kind.
func (p *Prepared) refresh(ctx context.Context, k Kind, rf Refresher, env *Env, res *Resource, changed bool) error {
	if tk, ok := k.(typedKind); ok {
		if spec, ok := p.specs[res.ID]; ok && p.res[res.ID] == res {
			return tk.refreshSpec(ctx, env, res, spec, changed)
		}
	}
	return rf.Refresh(ctx, env, res, changed)
}

// timeout returns the time limit k sets for res, or def.
func (p *Prepared) timeout(k Kind, res *Resource, def time.Duration) time.Duration {
	var d time.Duration
	if tk, ok := k.(typedKind); ok {
		if spec, ok := p.specs[res.ID]; ok && p.res[res.ID] == res {
			d = tk.timeoutSpec(spec)
		} else {
			d = tk.Timeout(res)
		}
	} else if t, ok := AsTimeouter(k); ok {
		d = t.Timeout(res)
	}
	if d > 0 {
		return d
	}
	return def
}

// Invalid returns the resources that fail before any observation, and why:
// unknown kinds, malformed IDs, invalid specs.
func (p *Prepared) Invalid() map[ID]error {
	out := make(map[ID]error, len(p.invalid))
	for id, err := range p.invalid {
		out[id] = err
	}
	return out
}

// Apply prepares the catalog and runs it once.
func (e *Engine) Apply(ctx context.Context, cat *Catalog, opts RunOptions) (*Report, error) {
	p, err := e.Prepare(cat)
	if err != nil {
		return nil, err
	}
	return e.Run(ctx, p, opts)
}

// Run reconciles a prepared catalog once and reports every resource. The
// error is non-nil only when the run could not start (an unknown ID in
// opts.Only); failures of resources are in the report. A cancelled context
// or a closed opts.Stop ends the run early: the report says so in Stopped.
func (e *Engine) Run(ctx context.Context, p *Prepared, opts RunOptions) (*Report, error) {
	sel, err := p.selection(opts.Only)
	if err != nil {
		return nil, err
	}
	r := &run{
		e:     e,
		p:     p,
		opts:  opts,
		cache: NewCache(),
		prior: opts.Prior,
		out:   make([]*outcome, len(p.Graph.Order)),
		batch: atomicfile.NewBatch(),
		steps: &steppers{},
	}
	defer r.steps.close()
	if r.prior == nil {
		r.prior = NewMemory()
	}
	if r.opts.Secrets == nil {
		r.opts.Secrets = noSecrets{}
	}
	defer func() {
		if err := r.cache.Close(); err != nil {
			e.log.Warn("closing the run's cached clients", "err", err)
		}
	}()

	rep := &Report{
		Site:     p.Catalog.Site,
		Node:     p.Catalog.Node,
		Role:     p.Catalog.Role,
		Revision: p.Catalog.Revision,
		Noop:     opts.Noop,
		Started:  time.Now(),
		Only:     append([]ID(nil), opts.Only...),
		Results:  make([]Result, 0, len(r.out)),
	}
	r.schedule(ctx, sel)
	for _, o := range r.out {
		if o != nil {
			rep.Results = append(rep.Results, o.res)
		}
	}
	if len(opts.Only) == 0 && !opts.NoPrune && r.stopReason(ctx) == "" {
		for _, o := range r.prune(ctx) {
			rep.Results = append(rep.Results, o.res)
		}
	}
	rep.Stopped = r.stopped
	if !opts.Noop {
		rep.Next = r.next(len(opts.Only) == 0)
	}
	rep.Duration = jsondoc.Seconds(time.Since(rep.Started))
	return rep, nil
}

// selection returns the resources a run covers, by position in the graph
// order: all, or the given ones and everything downstream of them.
func (p *Prepared) selection(only []ID) ([]bool, error) {
	sel := make([]bool, len(p.Graph.Order))
	if len(only) == 0 {
		for i := range sel {
			sel[i] = true
		}
		return sel, nil
	}
	var walk func(i int)
	walk = func(i int) {
		if sel[i] {
			return
		}
		sel[i] = true
		for _, next := range p.at[i].after {
			walk(next)
		}
	}
	for _, id := range only {
		if _, ok := p.res[id]; !ok {
			return nil, fmt.Errorf("run %s: not in the catalog", id)
		}
		walk(p.index[id])
	}
	return sel, nil
}

// noSecrets is the resolver of a run that was given none.
type noSecrets struct{}

func (noSecrets) Resolve(_ context.Context, ref SecretRef) (Secret, error) {
	return Secret{}, fmt.Errorf("resolve %s: no secret provider configured: %w", ref, ErrSecretNotFound)
}

// ErrTimeout is wrapped by the error of a resource that ran out of time.
var ErrTimeout = errors.New("timed out")
