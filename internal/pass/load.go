package pass

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/reconciler"
)

// SiteCatalog loads a node's catalog from a site directory: from the
// cache when the cache holds it for the site's current content and this
// fsgit build, evaluated from the CUE site otherwise.
type SiteCatalog struct {
	Dir, Node string
	// Compiler computes the site's key and evaluates it.
	Compiler Compiler
	// Cache is the node's compiled catalog cache; nil: not used.
	Cache *Cache
	Log   *slog.Logger
	// cat is the catalog Load returned, from the cache or evaluated.
	cat *reconciler.Catalog
	// fresh is the site's content key when the catalog was evaluated
	// (what to cache it under), "" when it came from the cache.
	fresh string
}

// Compiler is how a node's catalog comes from a site directory when the
// cache does not hold it. fsgit evaluates the CUE site (package desired);
// its front for cached runs, which links no CUE, hands the whole command
// to the full fsgit instead (cmd/fsgit, build tag lean).
type Compiler struct {
	// Key returns the content key of the site in dir without evaluating
	// it (desired.KeyDir, sitefiles.KeyDir): what the cache is keyed by.
	Key func(dir string) (string, error)
	// Evaluate compiles node's catalog from the site in dir, and returns
	// it with the site's content key to cache it under.
	Evaluate func(ctx context.Context, dir, node string) (cat *reconciler.Catalog, key string, err error)
	// Build, when set, identifies the build whose cached catalogs are
	// accepted (Cache.Build); nil: this program's ([BuildIdentity]).
	Build func() (id string, ok bool)
	// Has, when set, says whether this program has a kind. A cached
	// catalog with a kind it lacks is evaluated instead, as on a miss; a
	// node's memory with one (a resource to prune, one kept for rollback)
	// ends the pass at its state step with a [*LackingKindError]. Nil:
	// every kind is there.
	Has func(kind string) bool
}

// LackingKindError says that the node's catalog or memory has a resource
// of a kind this program lacks (Compiler.Has).
type LackingKindError struct {
	// ID is the first such resource found.
	ID reconciler.ID
}

// Error names the resource and its kind.
func (e *LackingKindError) Error() string {
	return fmt.Sprintf("this program has no kind %q (resource %s)", e.ID.Kind(), e.ID)
}

// lacking returns the first of ids whose kind has lacks, or "". Runs of
// one kind (a thousand files) ask has once.
func lacking(has func(string) bool, ids func(yield func(reconciler.ID) bool)) reconciler.ID {
	known := ""
	for id := range ids {
		if kind := id.Kind(); kind != known {
			if !has(kind) {
				return id
			}
			known = kind
		}
	}
	return ""
}

// catalogLacks returns the first resource of cat whose kind c lacks, or "".
func (c Compiler) catalogLacks(cat *reconciler.Catalog) reconciler.ID {
	if c.Has == nil {
		return ""
	}
	return lacking(c.Has, func(yield func(reconciler.ID) bool) {
		for i := range cat.Resources {
			if !yield(cat.Resources[i].ID) {
				return
			}
		}
	})
}

// memoryLacks returns the first resource of m (its inventory, observed
// states, owed refreshes and applied catalogs) whose kind c lacks, or "".
func (c Compiler) memoryLacks(m *reconciler.Memory) reconciler.ID {
	if c.Has == nil || m == nil {
		return ""
	}
	return lacking(c.Has, func(yield func(reconciler.ID) bool) {
		for id := range m.Inventory {
			if !yield(id) {
				return
			}
		}
		for id := range m.Observed {
			if !yield(id) {
				return
			}
		}
		for id := range m.Refresh {
			if !yield(id) {
				return
			}
		}
		for _, a := range m.Applied {
			for _, id := range a.Resources {
				if !yield(id) {
					return
				}
			}
		}
	})
}

// Load returns the node's catalog. Nothing is logged about a miss until
// the evaluation has returned: the front for cached runs hands the
// command over in Evaluate, and the program it hands it to logs the miss
// itself.
func (s *SiteCatalog) Load(ctx context.Context) (*reconciler.Catalog, error) {
	start := time.Now()
	var miss []any
	if s.Cache == nil {
		miss = []any{"node", s.Node, "reason", "--no-cache"}
	} else if key, f, err := s.keyAndCache(); err != nil {
		// The evaluation fails alike and says it better.
		miss = []any{"node", s.Node, "reason", err}
	} else if cat, why := f.check(s.Node, key); cat == nil {
		miss = []any{"node", s.Node, "file", s.Cache.File.String(), "reason", why}
	} else if id := s.Compiler.catalogLacks(cat); id != "" {
		miss = []any{"node", s.Node, "file", s.Cache.File.String(), "reason", (&LackingKindError{ID: id}).Error()}
	} else {
		s.Log.Info("catalog from cache", "node", s.Node, "file", s.Cache.File.String(), "key", key,
			"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
		s.cat = cat
		return cat, nil
	}

	cat, key, err := s.Compiler.Evaluate(ctx, s.Dir, s.Node)
	s.Log.Info("catalog cache not used", miss...)
	if err != nil {
		return nil, err
	}
	s.Log.Info("catalog evaluated", "node", s.Node, "key", key,
		"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
	s.fresh, s.cat = key, cat
	return cat, nil
}

// StateReserve is what the state file of a node running the loaded
// catalog is expected to need (state.Options.Reserve): four times the
// catalog's IDs and specs, which its inventory holds once and its
// observed states and bbolt's half-filled pages about as much again (a
// first run of 1,000 files: 340 KB of them, a 1.36 MB file). 0 before
// Load.
func (s *SiteCatalog) StateReserve() int64 {
	if s.cat == nil {
		return 0
	}
	var n int64
	for _, r := range s.cat.Resources {
		n += int64(len(r.ID) + len(r.Spec))
	}
	return 4 * n
}

// keyAndCache returns the site's content key and the cache file, read
// and decoded while the key is computed on another goroutine: neither
// needs the other until they are compared. Without a cached catalog (no
// file, one not trusted or unreadable) it returns at once, without the
// key, which nothing then needs: a node's first run, and the front for
// cached runs handing it over, do not wait for it.
func (s *SiteCatalog) keyAndCache() (string, fetched, error) {
	type keyed struct {
		key string
		err error
	}
	ch := make(chan keyed, 1)
	go func() {
		defer crash.Exit()
		key, err := s.Compiler.Key(s.Dir)
		ch <- keyed{key, err}
	}()
	f := s.Cache.fetch()
	if f.cf == nil {
		return "", f, nil
	}
	k := <-ch
	return k.key, f, k.err
}

// Keep writes an evaluated catalog to the cache (best effort: a warning
// when it cannot).
func (s *SiteCatalog) Keep() {
	if s.fresh == "" || s.Cache == nil {
		return
	}
	if err := s.Cache.write(s.fresh, s.cat); err != nil {
		s.Log.Warn("the compiled catalog is not cached", "err", err)
	}
}
