package pass

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// SiteCatalog loads a node's catalog from a site directory: from the
// cache when the cache holds it for the site's current content and this
// fsgit build, evaluated from the CUE site otherwise.
type SiteCatalog struct {
	Dir, Node string
	Limits    desired.Limits
	// Cache is the node's compiled catalog cache; nil: not used.
	Cache *Cache
	Log   *slog.Logger
	// cat is the catalog Load returned, from the cache or evaluated.
	cat *reconciler.Catalog
	// fresh is the site's content key when the catalog was evaluated
	// (what to cache it under), "" when it came from the cache.
	fresh string
}

// Load returns the node's catalog.
func (s *SiteCatalog) Load(ctx context.Context) (*reconciler.Catalog, error) {
	start := time.Now()
	if s.Cache == nil {
		s.Log.Info("catalog cache not used", "node", s.Node, "reason", "--no-cache")
	} else if key, f, err := s.keyAndCache(); err != nil {
		// LoadDir fails alike and says it better.
		s.Log.Info("catalog cache not used", "node", s.Node, "reason", err)
	} else if cat, why := f.check(s.Node, key); cat != nil {
		s.Log.Info("catalog from cache", "node", s.Node, "file", s.Cache.File.String(), "key", key,
			"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
		s.cat = cat
		return cat, nil
	} else {
		s.Log.Info("catalog cache not used", "node", s.Node, "file", s.Cache.File.String(), "reason", why)
	}

	site, err := desired.LoadDirNode(ctx, s.Dir, s.Node, s.Limits)
	if err != nil {
		return nil, fmt.Errorf("load site %s:\n%w", s.Dir, err)
	}
	cat, err := site.Catalog(s.Node)
	if err != nil {
		return nil, fmt.Errorf("build the catalog of node %s:\n%w", s.Node, err)
	}
	if cat.Revision == "" {
		cat.Revision = site.Revision()
	}
	s.Log.Info("catalog evaluated", "node", s.Node, "key", site.Key(),
		"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
	s.fresh, s.cat = site.Key(), cat
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
// and decoded on another goroutine while the key is computed: neither
// needs the other until they are compared.
func (s *SiteCatalog) keyAndCache() (string, fetched, error) {
	ch := make(chan fetched, 1)
	go func() {
		defer crash.Exit()
		ch <- s.Cache.fetch()
	}()
	key, err := desired.KeyDir(s.Dir)
	return key, <-ch, err
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
