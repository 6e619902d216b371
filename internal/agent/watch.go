package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/reconciler"
)

// pathKinds are the kinds whose resources are files on the node, named by
// their path (the ID's name), and so can be watched.
var pathKinds = map[string]bool{"file": true, "directory": true, "symlink": true, "artifact": true}

// watcher turns changes to managed files into batches of resource IDs to
// re-observe. It watches the parent directories of managed paths, not the
// files: editors replace a file by renaming a new one over it, which ends
// a watch on the file itself. The number of watched directories is
// bounded; paths beyond the bound are left to the next poll. A watched
// directory that is removed or renamed is dropped and re-armed on the next
// sync, when it exists again.
type watcher struct {
	fs       *fsnotify.Watcher
	log      *slog.Logger
	debounce time.Duration

	mu     sync.Mutex
	max    int
	byPath map[string][]reconciler.ID // host path -> resources at it
	dirs   map[string]bool            // watched directories
	// cat and root are what the last sync covered, want the directories
	// it wanted (sorted) and dirOf the directory of each path resource:
	// a sync of the same catalog only re-arms what is missing.
	cat     *reconciler.Catalog
	root    string
	want    []string
	dirOf   map[reconciler.ID]string
	pending map[reconciler.ID]time.Time
	timer   *time.Timer
	limited bool // the bound was hit at the last sync (logged once)

	ready chan struct{} // signalled when a batch is pending
	done  chan struct{}
}

func newWatcher(log *slog.Logger, maxWatches int, debounce time.Duration) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watch: %w", err)
	}
	w := &watcher{
		fs:       fw,
		log:      log,
		debounce: debounce,
		max:      maxWatches,
		byPath:   map[string][]reconciler.ID{},
		dirs:     map[string]bool{},
		pending:  map[reconciler.ID]time.Time{},
		ready:    make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go func() { defer crash.Exit(); w.loop() }()
	return w, nil
}

// close stops the watch.
func (w *watcher) close() error {
	err := w.fs.Close()
	<-w.done
	return err
}

// setLimits changes the bound and the debounce (after a reload).
func (w *watcher) setLimits(maxWatches int, debounce time.Duration) {
	w.mu.Lock()
	w.max, w.debounce = maxWatches, debounce
	w.mu.Unlock()
}

// sync makes the watch cover the path resources of the catalog, mapped
// under root. It adds and removes directory watches by difference, and
// re-arms directories that came back.
func (w *watcher) sync(cat *reconciler.Catalog, root string) {
	w.mu.Lock()
	same := cat == w.cat && root == w.root && w.dirOf != nil
	w.mu.Unlock()
	if !same {
		w.rebuild(cat, root)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if same && len(w.dirs) == len(w.want) {
		return // every directory wanted is watched: nothing to do
	}
	skipped := 0
	for _, d := range w.want {
		if w.dirs[d] {
			continue
		}
		if len(w.dirs) >= w.max {
			skipped++
			continue
		}
		if err := w.fs.Add(d); err != nil {
			// A directory that does not exist yet is watched once a run
			// has made it; anything else is worth a line.
			if !errors.Is(err, os.ErrNotExist) {
				w.log.Warn("watch directory", "dir", d, "err", err)
			}
			continue
		}
		w.dirs[d] = true
	}
	if skipped > 0 && !w.limited {
		w.log.Warn("watch limit reached: drift in the other directories is corrected by polls", "max", w.max, "unwatched", skipped)
	}
	w.limited = skipped > 0
}

// rebuild maps the path resources of cat under root to the directories to
// watch, and drops the watches no longer wanted.
func (w *watcher) rebuild(cat *reconciler.Catalog, root string) {
	byPath := map[string][]reconciler.ID{}
	dirOf := map[reconciler.ID]string{}
	if cat != nil {
		// One filesystem for every path's check, not one per path.
		env := &reconciler.Env{Root: root, Cache: reconciler.NewCache()}
		for _, r := range cat.Resources {
			if !pathKinds[r.Kind()] {
				continue
			}
			p, err := env.Path(r.Name())
			if err != nil {
				continue
			}
			byPath[p] = append(byPath[p], r.ID)
			dirOf[r.ID] = filepath.Dir(p)
		}
		if err := env.Cache.Close(); err != nil {
			w.log.Warn("watch: close the root", "err", err)
		}
	}
	// The directories to watch, shallowest first so that the bound keeps
	// the ones most paths share.
	want := map[string]bool{}
	for p := range byPath {
		want[filepath.Dir(p)] = true
	}
	dirs := make([]string, 0, len(want))
	for d := range want {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byPath, w.dirOf, w.want, w.cat, w.root = byPath, dirOf, dirs, cat, root
	for d := range w.dirs {
		if !want[d] {
			_ = w.fs.Remove(d)
			delete(w.dirs, d)
		}
	}
}

// unwatched returns the resources of cat that the watch does not cover:
// those that are not paths, and paths whose directory is not watched (past
// the bound, not there yet, or gone). ok is false when cat is not the
// catalog last synced.
func (w *watcher) unwatched(cat *reconciler.Catalog) (ids []reconciler.ID, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cat != w.cat || w.dirOf == nil {
		return nil, false
	}
	for _, r := range cat.Resources {
		if d, ok := w.dirOf[r.ID]; ok && w.dirs[d] {
			continue
		}
		ids = append(ids, r.ID)
	}
	return ids, true
}

// count returns how many directories are watched.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.dirs)
}

func (w *watcher) loop() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.event(ev)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: the next poll re-observes
			// everything anyway.
			w.log.Warn("file watch", "err", err)
		}
	}
}

func (w *watcher) event(ev fsnotify.Event) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirs[ev.Name] && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		// The watched directory itself went away: its watch is gone.
		// Forget it so that the next sync re-arms it.
		delete(w.dirs, ev.Name)
		_ = w.fs.Remove(ev.Name)
	}
	ids := w.byPath[ev.Name]
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		if _, ok := w.pending[id]; !ok {
			w.pending[id] = now
		}
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.debounce, w.fire)
	}
}

// fire ends a debounce window: the batch is ready.
func (w *watcher) fire() {
	w.mu.Lock()
	w.timer = nil
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// take returns the pending batch (resource -> time of its first event)
// and empties it.
func (w *watcher) take() map[reconciler.ID]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.pending
	w.pending = map[reconciler.ID]time.Time{}
	return out
}
