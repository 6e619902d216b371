package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/rootfs"
)

// Kind implements one resource kind. One value serves every resource of its
// kind and every run; per-run state goes in the [Env]'s cache.
//
// The engine calls Validate once per resource when a catalog is loaded, then
// per run: Plan for each resource (in dependency order, possibly in parallel
// for independent resources), the returned Plan's Apply when the plan has
// changes that may run, and Refresh (if the kind implements [Refresher]) when
// a resource it depends on through a notify edge changed.
type Kind interface {
	// Kind returns the kind's name as used in IDs, e.g. "file" or
	// "mariadb.user".
	Kind() string
	// Validate decodes the resource's spec (with [Resource.DecodeSpec]) and
	// checks what the schema cannot. It does no I/O.
	Validate(r *Resource) error
	// Plan observes the real state of r and returns what it would take to
	// converge it. It never modifies anything, in noop or not. Observation
	// that can be batched across all resources of the kind (one dpkg-query,
	// one pass over grants) is done once per run through env.Cache.
	// A plan with no changes means the resource is converged.
	Plan(ctx context.Context, env *Env, r *Resource) (*Plan, error)
}

// Refresher is implemented by kinds that react to a notify edge: a service
// restarts, a container is recreated, an exec with refreshOnly runs.
type Refresher interface {
	// Refresh reacts to a change in a resource that notifies r. The engine
	// calls it at most once per run for r, after r's own plan was applied,
	// and not in noop. changed says whether r's own plan had changes (a
	// service that was just started need not restart).
	Refresh(ctx context.Context, env *Env, r *Resource, changed bool) error
}

// Pruner is implemented by kinds that can remove a resource that has left
// the catalog. The engine passes the resource as it was last applied (from
// the inventory). The returned plan's changes carry their class: a
// destructive one runs only if the last applied resource allowed destroy.
type Pruner interface {
	// PlanDelete observes r and returns the plan that removes it, or a plan
	// with no changes when it is already gone.
	PlanDelete(ctx context.Context, env *Env, r *Resource) (*Plan, error)
}

// Rememberer is implemented by kinds whose specs hold content (a file's
// content, a migration's SQL). RememberSpec returns the spec the node
// keeps in its inventory (the state file) instead of r.Spec: the content
// replaced by its digest, so that the state holds digests, never content.
// The engine hands the remembered spec to [Pruner.PlanDelete] when the
// resource leaves the catalog, and compares remembered specs to tell
// drift from a change of the desired state; equal remembered specs must
// mean the same desired state.
type Rememberer interface {
	RememberSpec(r *Resource) (json.RawMessage, error)
}

// MaxInline is the most bytes of content a resource may hold inline (the
// schema's #MaxInline): larger content belongs in an artifact.
const MaxInline = 1 << 20

// Timeouter is implemented by kinds whose resources need a time limit other
// than the engine's default (a large download, a long migration). The limit
// covers the whole handling of one resource: plan, apply and refresh.
type Timeouter interface {
	// Timeout returns the limit for r; zero means the engine's default.
	Timeout(r *Resource) time.Duration
}

// Class says how much a change disturbs the system.
type Class int

const (
	// Safe changes create or adjust without interrupting anything.
	Safe Class = iota
	// Disruptive changes interrupt a service (restart, recreate).
	Disruptive
	// Destructive changes can lose data (DROP DATABASE, REVOKE, deleting a
	// volume). They run only where the resource allows destroy.
	Destructive
)

// String returns "safe", "disruptive" or "destructive".
func (c Class) String() string {
	switch c {
	case Safe:
		return "safe"
	case Disruptive:
		return "disruptive"
	case Destructive:
		return "destructive"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Classes lists every class, from the least disturbing.
var Classes = []Class{Safe, Disruptive, Destructive}

// MarshalText implements encoding.TextMarshaler: the class's name.
func (c Class) MarshalText() ([]byte, error) {
	if c < Safe || c > Destructive {
		return nil, fmt.Errorf("unknown change class %d", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: it reads what
// MarshalText writes.
func (c *Class) UnmarshalText(b []byte) error {
	for _, k := range Classes {
		if string(b) == k.String() {
			*c = k
			return nil
		}
	}
	return fmt.Errorf("unknown change class %q: want safe, disruptive or destructive", b)
}

// Change is one field-level difference between observed and desired state.
// Before and After are display values: a secret-derived field shows
// "(secret mariadb/fs_user)" or "(changed)", never a value.
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Class  Class  `json:"class"`
}

// Action is what a plan does to the resource as a whole.
type Action string

const (
	// ActionNone: converged.
	ActionNone Action = ""
	// ActionCreate: the resource does not exist and will be created.
	ActionCreate Action = "create"
	// ActionUpdate: the resource exists and some fields change.
	ActionUpdate Action = "update"
	// ActionDelete: the resource will be removed.
	ActionDelete Action = "delete"
)

// Plan is what a kind found and what it would do. Apply converges the
// resource in one call; it is nil when there is nothing to do.
type Plan struct {
	Action  Action   `json:"action,omitempty"`
	Changes []Change `json:"changes,omitempty"`
	// Observed is a normalized, secret-free summary of the observed state,
	// kept in the node's state and hashed to notice drift. Keys are field
	// names.
	Observed map[string]string `json:"observed,omitempty"`
	// Apply performs the changes. It must be idempotent and must honour ctx.
	Apply func(ctx context.Context) error `json:"-"`
	// Warning notes something the plan left alone that the report should
	// show (a field that cannot be managed here), without failing.
	Warning string `json:"warning,omitempty"`
}

// HasChanges reports whether the plan changes anything.
func (p *Plan) HasChanges() bool { return p != nil && (len(p.Changes) > 0 || p.Action != ActionNone) }

// MaxClass returns the most disturbing class among the plan's changes.
func (p *Plan) MaxClass() Class {
	c := Safe
	if p == nil {
		return c
	}
	for _, ch := range p.Changes {
		if ch.Class > c {
			c = ch.Class
		}
	}
	return c
}

// Env is what a kind may use during a run.
type Env struct {
	// Root prefixes every managed path ("" means the host's /). Kinds that
	// cannot honour a root (packages, services, accounts) return a
	// [SkipError] when it is set.
	Root string
	// Noop is true when nothing may be changed. Kinds need not check it: the
	// engine never calls Apply or Refresh in noop. It is here for kinds
	// whose observation would otherwise have side effects.
	Noop bool
	// Secrets resolves secret references at apply time.
	Secrets SecretResolver
	// Log is the run's logger.
	Log *slog.Logger
	// Cache memoizes per-run, per-kind batched observations.
	Cache *Cache
	// Verify is true when the engine plans a resource again right after
	// applying it, to learn its observed state and check that it
	// converged. Cache is then a fresh cache (only [Cache.Stable] values
	// are the run's), so a kind that observes through it reads afresh; a
	// kind whose batched reads cover far more than one resource (every
	// account of a server) may read what this resource covers alone
	// instead. Either way the plan must not come from anything observed
	// before the apply.
	Verify bool
	// OnProgress, when set, receives every update of the long steps
	// (downloads, package installs, image pulls, migrations) that kinds
	// report through [Env.StartProgress].
	OnProgress func(ProgressUpdate)
	// ProgressEvery is how often a long step's progress is logged (zero:
	// [DefaultProgressEvery]).
	ProgressEvery time.Duration

	// batch, set by the engine, stages the resource's file replacements
	// (see [Env.ReplaceFile]) on behalf of owner.
	batch *atomicfile.Batch
	owner ID
}

// ReplaceFile replaces the managed file name (through [Env.FS]) with what
// write produces, atomically: a kill -9 or a power cut at any moment leaves
// the old content or the new one, whole. Every kind that writes a managed
// file does it here. In an engine run the replacement is staged in the
// run's batch and committed (made durable and visible, one syncfs for many
// files) before the engine verifies the resource or starts what depends on
// it; the kind must not read the file back in its Apply. Outside a run
// (a kind's test) the file is replaced and made durable at once. The
// directory must exist.
func (e *Env) ReplaceFile(name string, o atomicfile.Options, write func(w io.Writer) error) error {
	if e.batch == nil {
		return atomicfile.Replace(e.FS(), name, o, write)
	}
	return e.batch.Replace(string(e.owner), e.FS(), name, o, write)
}

// Path maps an absolute managed path into the root. It refuses relative
// paths and paths that would escape the root, by their text and, under a
// root, through a symlink: the path's existing parent directories must
// resolve inside the root (see [Env.CheckResolved]), so that a symlink
// <root>/etc -> /etc does not carry writes to the host. Its last element
// is not followed: the kinds replace a symlink there rather than follow it.
// The check is a snapshot; a kind calls Path again just before it writes.
func (e *Env) Path(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	clean := filepath.Clean(p)
	if clean != p && clean+"/" != p {
		return "", fmt.Errorf("path %q is not clean (would be %q)", p, clean)
	}
	if e.Root == "" {
		return clean, nil
	}
	joined := filepath.Join(e.Root, clean)
	root := filepath.Clean(e.Root)
	if joined != root && !strings.HasPrefix(joined, root+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q escapes root %q", p, e.Root)
	}
	if joined != root {
		if err := e.CheckResolved(filepath.Dir(joined)); err != nil {
			return "", fmt.Errorf("path %q: %w", p, err)
		}
	}
	return joined, nil
}

// CheckResolved checks, under a root, that hostPath (a path Path returned),
// or its deepest existing ancestor, resolves through every symlink to a
// place inside the root (see [rootfs.FS.Resolves]). A dangling symlink on
// the way is refused too: what it would come to point at is not known. It
// does nothing when Root is "". Path checks a path's parents; a caller
// whose consumer follows the path itself (a bind mount's source, a
// warehouse) checks the path too. fsgit's own writes need no such check:
// they go through [Env.FS], which never leaves the root.
func (e *Env) CheckResolved(hostPath string) error {
	if e.Root == "" {
		return nil
	}
	root := filepath.Clean(e.Root)
	rel, err := filepath.Rel(root, filepath.Clean(hostPath))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is not under root %q", hostPath, e.Root)
	}
	return e.FS().Resolves(filepath.Join("/", rel))
}

// FS returns the run's managed filesystem: the host's when Root is "",
// else the tree under Root, which none of its operations leaves. Every
// write a kind makes to a managed path goes through it. It is shared by
// the run (kept in Cache, which closes it at the end of the run).
func (e *Env) FS() *rootfs.FS {
	if e.Cache == nil {
		return rootfs.New(e.Root)
	}
	v, _ := e.Cache.Stable("reconciler/rootfs\x00"+e.Root, func() (any, error) { return rootfs.New(e.Root), nil })
	return v.(*rootfs.FS)
}

// Cache memoizes values for the length of one run. It is safe for
// concurrent use; a value is computed once even when asked for at once.
// The engine closes the cache at the end of the run: every cached value
// that implements io.Closer (a database handle, a Docker client) is closed
// then, so a kind may keep a per-run client here.
type Cache struct {
	// parent, set on a verify's cache, holds the run's stable values.
	parent    *Cache
	mu        sync.Mutex
	m         map[string]*cacheEntry
	forgotten []*cacheEntry
}

type cacheEntry struct {
	once sync.Once
	// mu guards v, err and done for Close, which must not wait for a
	// computation that a timed-out resource abandoned.
	mu   sync.Mutex
	v    any
	err  error
	done bool
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{m: map[string]*cacheEntry{}} }

// Once returns the value stored under key, computing it with f the first
// time. An error is cached too: every resource asking in this run sees it.
func (c *Cache) Once(key string, f func() (any, error)) (any, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok {
		e = &cacheEntry{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		v, err := f()
		e.mu.Lock()
		e.v, e.err, e.done = v, err, true
		e.mu.Unlock()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.v, e.err
}

// Stable is [Cache.Once] for a value that no apply in the run changes (a
// handle on the run's filesystem, the accounts a path's owner is named
// by): the fresh cache that observes a resource again after its apply
// takes it from the run's cache rather than computing it again.
func (c *Cache) Stable(key string, f func() (any, error)) (any, error) {
	if c.parent != nil {
		return c.parent.Stable(key, f)
	}
	return c.Once(key, f)
}

// newVerifyCache returns an empty cache that takes stable values from
// run's. Closing it leaves them open.
func newVerifyCache(run *Cache) *Cache {
	c := NewCache()
	c.parent = run
	return c
}

// Forget drops key, so that the next Once recomputes it (after an apply
// changed what was observed). A forgotten value that implements io.Closer is
// not closed: a resource may still be using it.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	if e, ok := c.m[key]; ok {
		c.forgotten = append(c.forgotten, e)
	}
	delete(c.m, key)
	c.mu.Unlock()
}

// Close closes every value cached in the run, forgotten ones included, that
// implements io.Closer, and empties the cache. It returns the closing
// errors joined.
func (c *Cache) Close() error {
	c.mu.Lock()
	entries := c.forgotten
	for _, e := range c.m {
		entries = append(entries, e)
	}
	c.m = map[string]*cacheEntry{}
	c.forgotten = nil
	c.mu.Unlock()
	var errs []error
	for _, e := range entries {
		// A value still being computed (by a resource that timed out and
		// was abandoned) is not done and is left alone.
		e.mu.Lock()
		v, done := e.v, e.done
		e.mu.Unlock()
		if cl, ok := v.(io.Closer); ok && done {
			if err := cl.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SkipError says that a resource cannot be handled here and is skipped, not
// failed: a package under --root, a service with no systemd.
type SkipError struct{ Reason string }

// Error returns the reason.
func (e *SkipError) Error() string { return e.Reason }

// Skip returns a *SkipError with the given reason.
func Skip(reason string) error { return &SkipError{Reason: reason} }

// IsSkip reports whether err is or wraps a *SkipError.
func IsSkip(err error) bool {
	var s *SkipError
	return errors.As(err, &s)
}

// Registry maps kind names to their implementations. cmd/fsgit builds one
// with every kind; tests build their own.
type Registry struct{ kinds map[string]Kind }

// NewRegistry returns a registry holding the given kinds. It panics on a
// duplicate kind name, which is a programming error.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: map[string]Kind{}}
	for _, k := range kinds {
		r.Add(k)
	}
	return r
}

// Add registers k. It panics on a duplicate kind name.
func (r *Registry) Add(k Kind) {
	if _, dup := r.kinds[k.Kind()]; dup {
		panic("reconciler: kind registered twice: " + k.Kind())
	}
	r.kinds[k.Kind()] = k
}

// Lookup returns the kind with the given name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns the registered kind names, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Previewer is implemented by kinds that can say, from two versions of a
// resource alone and without observing anything, what applying the change
// would do to the running system. fsgit plan uses it to flag restarts,
// recreates and destroys in a pull request. Kinds that do not implement it
// are previewed conservatively: creates and updates are Safe, removals
// Destructive (held as pending destroys unless the resource allows destroy).
type Previewer interface {
	// Preview classes the change from old to new; old is nil for a create
	// and new is nil for a removal. Effect is a short phrase for a reviewer
	// ("recreate container", "drop database"), or "" for a plain change.
	Preview(old, new *Resource) (class Class, effect string)
}
