package reconciler

import (
	"errors"
	"fmt"
	"slices"
)

// DefaultKeepCatalogs is how many of the node's last applied catalogs keep
// a retained resource ([Retainer]) when the catalog does not say
// ([Catalog.KeepCatalogs]).
const DefaultKeepCatalogs = 3

// Retainer is implemented by kinds whose resources a rollback needs after
// they leave the catalog: the previous image of a container, the previous
// version of a jar. Such a resource is kept (not pruned) while any of the
// node's last N applied catalogs references it, N being
// [Catalog.KeepCatalogs]; after that it is pruned like any other, its
// deletion classed by the kind (destructive where it cannot be had
// again).
type Retainer interface {
	// Retain reports whether r, which left the catalog, is kept for
	// rollback while a recent catalog references it.
	Retain(r *Resource) bool
}

// AppliedCatalog is one catalog the node applied, as pruning remembers it:
// its revision and the IDs of its resources.
type AppliedCatalog struct {
	Revision  string `json:"revision"`
	Resources []ID   `json:"resources"`
}

// KeepError says that a resource that left the catalog is kept, for now:
// a container still uses it. It stays in the inventory and pruning tries
// again in a later run. PlanDelete returns it.
type KeepError struct{ Reason string }

// Error returns the reason.
func (e *KeepError) Error() string { return e.Reason }

// Keep returns a *KeepError with the given reason.
func Keep(reason string) error { return &KeepError{Reason: reason} }

// IsKeep reports whether err is or wraps a *KeepError.
func IsKeep(err error) bool {
	var k *KeepError
	return errors.As(err, &k)
}

// keepCatalogs is the catalog's retention, or the default.
func (r *run) keepCatalogs() int {
	if n := r.p.Catalog.KeepCatalogs; n > 0 {
		return n
	}
	return DefaultKeepCatalogs
}

// earlierCatalogs returns the node's applied catalogs before this one,
// newest first: at most keep-1 of them, so that with this one they are
// the last keep. A catalog of this run's revision is this one, applied
// again, and not counted twice.
func (r *run) earlierCatalogs() []AppliedCatalog {
	keep := r.keepCatalogs()
	var out []AppliedCatalog
	for _, c := range r.prior.Applied {
		if len(out) >= keep-1 {
			break
		}
		if c.Revision != "" && c.Revision == r.p.Catalog.Revision {
			continue
		}
		out = append(out, c)
	}
	return out
}

// retained says whether res, which left the catalog, is kept for rollback,
// and the reason: how many more catalogs it is kept for.
func (r *run) retained(res *Resource, k Kind) (string, bool) {
	rt, ok := AsRetainer(k)
	if !ok || !rt.Retain(res) {
		return "", false
	}
	keep := r.keepCatalogs()
	for i, c := range r.earlierCatalogs() {
		if slices.Contains(c.Resources, res.ID) {
			more := keep - 1 - i
			rev := c.Revision
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return fmt.Sprintf("kept for rollback: %d more %s (catalog %s, one of the node's last %d, uses it; it goes when that catalog is no longer one of them)",
				more, plural(more, "catalog", "catalogs"), rev, keep), true
		}
	}
	return "", false
}

// appliedAfter is the node's applied catalogs once this run's catalog is
// applied: it first, then the earlier ones, keep in all.
func (r *run) appliedAfter() []AppliedCatalog {
	ids := make([]ID, 0, len(r.p.Catalog.Resources))
	for _, res := range r.p.Catalog.Resources {
		ids = append(ids, res.ID)
	}
	slices.Sort(ids)
	return append([]AppliedCatalog{{Revision: r.p.Catalog.Revision, Resources: ids}}, r.earlierCatalogs()...)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
