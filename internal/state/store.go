// Package state keeps a node's memory in a bbolt file: the schema version,
// the revisions applied and desired, the inventory of what fsgit manages
// (for pruning), the last converged observed state of each resource, and a
// bounded history of runs.
//
// The file's layout:
//
//	state.db
//	├── meta                      (bucket)
//	│   ├── version               "1": the layout's schema version
//	│   ├── site, node            who the file belongs to
//	│   ├── desired_revision      revision of the last full run
//	│   └── applied_revision      revision of the last full run with no failure
//	├── inventory                 (bucket) what fsgit manages and may prune
//	│   └── <resource ID>         reconciler.Resource as last applied, JSON
//	│                             (specs hold secret references, never values)
//	├── observed                  (bucket) last converged observed state
//	│   └── <resource ID>         reconciler.ObservedState, JSON: a hash and
//	│                             the kind's normalized, secret-free summary
//	├── refresh                   (bucket) refreshes owed (a restart that
//	│   │                         failed or did not run), retried next run
//	│   └── <resource ID>         the notifiers' IDs, JSON list
//	└── runs                      (bucket) bounded run history
//	    └── <seq, 8 bytes BE>     Run, JSON; the oldest go past the bound
//
// A run is recorded in one write transaction ([Store.Record]), which
// writes only what changed: on a quiet run, that is the history entry
// alone. The file is locked while open; a second fsgit waits for the lock
// for a bounded time and then says who probably holds it.
package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// SchemaVersion is the version of the layout this package writes.
const SchemaVersion = 1

// Defaults for [Options].
const (
	// DefaultTimeout is how long Open waits for the file's lock.
	DefaultTimeout = 5 * time.Second
	// DefaultHistory is how many runs the history keeps.
	DefaultHistory = 100
)

// Default paths of the state on a node.
const (
	// DefaultPath is the state file.
	DefaultPath = "/var/lib/fsgit/state.db"
	// DefaultSummaryPath is the last-run summary file.
	DefaultSummaryPath = "/var/lib/fsgit/last_run_summary.json"
)

var (
	bucketMeta      = []byte("meta")
	bucketInventory = []byte("inventory")
	bucketObserved  = []byte("observed")
	bucketRefresh   = []byte("refresh")
	bucketRuns      = []byte("runs")

	allBuckets = [][]byte{bucketMeta, bucketInventory, bucketObserved, bucketRefresh, bucketRuns, bucketApplied, bucketHolds}

	keyVersion         = []byte("version")
	keySite            = []byte("site")
	keyNode            = []byte("node")
	keyRole            = []byte("role")
	keyDesiredRevision = []byte("desired_revision")
	keyAppliedRevision = []byte("applied_revision")
)

// ErrLocked is wrapped by Open's error when another process holds the
// file.
var ErrLocked = errors.New("state file is locked by another process")

// Options tune [Open].
type Options struct {
	// Timeout bounds the wait for the file's lock (zero: DefaultTimeout).
	Timeout time.Duration
	// ReadOnly opens the file for reading, with a shared lock, and never
	// creates it: a missing file is an error wrapping fs.ErrNotExist, a
	// corrupt one an error wrapping ErrCorrupt.
	ReadOnly bool
	// History is how many runs are kept (zero: DefaultHistory).
	History int
	// OnRecover, when set, is called after a corrupt state file was moved
	// aside and replaced (see [Recovery]); Open calls it before it
	// returns, the other methods before theirs.
	OnRecover func(Recovery)
	// FS is the filesystem the path is in: under fsgit's --root, the run's.
	// The state's directory is made through it (so that it stays inside the
	// root whatever symlinks are planted on the way) and the file is then
	// used at its host path; nil is the host's.
	FS *rootfs.FS
	// Reserve, when larger than the file, is how many bytes of it are
	// mapped at once (bbolt's InitialMmapSize; not in ReadOnly), so that
	// a record that grows the file up to that size does not map it
	// again: each new mapping during a record copies every key and value
	// the record holds (bbolt maps 32 KB, then twice as much each time,
	// so a first record of 1,000 files mapped the file seven times and
	// copied ~8 MB). A file that grows takes the mapping's size, as it
	// does without: a reserve that is a small multiple of the size the
	// file reaches leaves the file as it would be (bbolt rounds both up
	// to a power of two), a larger one makes its end a larger hole.
	Reserve int64
}

// maxReserve is the largest Options.Reserve honoured: 1 GB, past which
// bbolt grows its mapping by 1 GB at a time anyway.
const maxReserve = 1 << 30

// Recovery is a corrupt state file moved aside and replaced by a fresh
// one, seeded from the inventory copy: the node carries on, rebuilding the
// rest by observation.
type Recovery struct {
	// At is when the corruption was found.
	At time.Time `json:"at"`
	// Path is the state file.
	Path string `json:"path"`
	// Reason says what was wrong, in one sentence.
	Reason string `json:"reason"`
	// MovedTo is where the corrupt file went (state.db.corrupt-<time>).
	MovedTo string `json:"movedTo,omitempty"`
	// Restored counts the inventory entries restored from the copy.
	Restored int `json:"restored"`
	// InventoryLost says why the inventory copy could not be used, when it
	// could not: the node then forgets what it managed, and does not prune
	// it.
	InventoryLost string `json:"inventoryLost,omitempty"`
}

// String says what happened in one sentence.
func (r Recovery) String() string {
	s := fmt.Sprintf("%s; moved it to %s and started a fresh state", r.Reason, r.MovedTo)
	if r.InventoryLost != "" {
		return s + " with an empty inventory (" + r.InventoryLost + "): resources that left the catalog since are no longer pruned"
	}
	return fmt.Sprintf("%s with the inventory copy's %d resources", s, r.Restored)
}

// Store is an open state file. Its methods are safe for concurrent use.
//
// Every access to the file goes through bbolt under guard: a fault on the
// memory map or a panic inside bbolt becomes an error, and a writable
// store then moves the corrupt file aside, builds a fresh one from the
// inventory copy, reports a [Recovery] and retries the access once.
type Store struct {
	path      string
	history   int
	readOnly  bool
	timeout   time.Duration
	onRecover func(Recovery)
	// reserve is Options.Reserve, when it applies (0: none).
	reserve int

	// mu guards db, which a recovery replaces, and recoveries.
	mu         sync.RWMutex
	db         *bolt.DB
	recoveries []Recovery

	// copyMu guards copyKey, the inventory copy last written or found on
	// disk (nil: not known; the next Record compares with the file).
	copyMu  sync.Mutex
	copyKey []byte

	// stampMu guards stamp, the state file's metadata after this store
	// last opened, wrote, checked or replaced it (see Recheck).
	stampMu sync.Mutex
	stamp   stamp
	// racy says the stamp was taken too soon after the file's change
	// time to tell the store's own write from another's (racyWindow).
	racy bool

	// recordMu is held by Memory and Record across their transaction and
	// the update of memo, which memoMu guards (see memo).
	recordMu sync.Mutex
	memoMu   sync.Mutex
	memo     *memo
}

// Open opens the state file at path, creating it (and its directory, mode
// 0700) unless opts.ReadOnly. A new file is built beside path and linked
// in only once complete, so that a failed creation (a full disk) never
// leaves a partial one. The file's structure is checked before bbolt maps
// it, and its content read through once; a writable store moves a
// corrupt file aside and starts a fresh one (see [Recovery]). It refuses
// a file written with a newer layout.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.FS != nil {
		name := path
		if !opts.ReadOnly {
			if err := opts.FS.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				return nil, fmt.Errorf("create state directory: %w", err)
			}
		}
		if err := opts.FS.Resolves(name); err != nil {
			return nil, fmt.Errorf("open state %s: %w", name, err)
		}
		path = opts.FS.HostPath(name)
	}
	s := &Store{path: path, history: opts.History, readOnly: opts.ReadOnly, timeout: opts.Timeout, onRecover: opts.OnRecover}
	if !opts.ReadOnly && opts.Reserve > 0 && opts.Reserve <= maxReserve {
		s.reserve = int(opts.Reserve)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
		db, err := s.openChecked()
		if err != nil {
			s.closeDB(db)
			return nil, err
		}
		s.db = db
		if err := s.init(); err != nil {
			s.closeDB(db)
			return nil, err
		}
		s.remember()
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	removeStaleTemps(path)
	var recovered []Recovery
	for attempt := 0; ; attempt++ {
		if _, err := os.Lstat(path); isNotExist(err) {
			if _, _, err := s.create(); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
		db, err := s.openChecked()
		if err == nil {
			s.db = db
			if err = s.init(); err == nil {
				break
			}
		}
		if !IsCorrupt(err) || attempt >= 2 {
			s.closeDB(db)
			return nil, err
		}
		rec, rerr := s.replace(db, err)
		if rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		if rec != nil {
			recovered = append(recovered, *rec)
		}
		s.db = nil
	}
	s.remember()
	s.recoveries = recovered
	for _, r := range recovered {
		if s.onRecover != nil {
			s.onRecover(r)
		}
	}
	return s, nil
}

// lockedError says that another fsgit holds the file.
func (s *Store) lockedError(cause error) error {
	return fmt.Errorf("open state %s: no lock after %s: another fsgit (the agent, or an apply) "+
		"is probably running and holds it; wait for it, or stop it (systemctl stop fsgit): %w (%w)",
		s.path, s.timeout, ErrLocked, cause)
}

// openChecked checks the file, opens it with bbolt and reads it through.
// A file that fails the check while another fsgit holds it is reported as
// locked, not corrupt: the check reads without the lock, and may have
// raced with that fsgit's commit.
// On an error after bbolt opened it, the db is returned too, still holding
// the file's lock, for the caller to move the file aside or close it.
func (s *Store) openChecked() (*bolt.DB, error) {
	if err := checkFile(s.path); err != nil {
		if IsCorrupt(err) {
			if unlock, lerr := lockAside(s.path, s.timeout, s.readOnly); errors.Is(lerr, ErrLocked) {
				return nil, s.lockedError(bolterrors.ErrTimeout)
			} else if lerr == nil {
				// Checked again under the lock: what fails now is corrupt.
				err = checkFile(s.path)
				unlock()
			}
		}
		if err != nil {
			return nil, err
		}
	}
	var db *bolt.DB
	err := guard(s.path, "open", func() error {
		var err error
		db, err = bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.timeout, ReadOnly: s.readOnly, InitialMmapSize: s.reserve})
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, s.lockedError(err)
	}
	if err != nil {
		// A panic inside Open may leave bbolt's file open: it cannot be
		// closed, and is left to the process's end.
		return nil, fmt.Errorf("open state %s: %w", s.path, asCorrupt(s.path, "open", err))
	}
	if err := verify(s.path, db); err != nil {
		return db, err
	}
	return db, nil
}

// verify reads the whole file through, under guard: every top-level key
// must be one of the layout's buckets, every bucket and key readable, and
// every JSON value valid. (bbolt's own Tx.Check is not used: it runs on a
// goroutine of its own, where a fault cannot be caught, and a corrupt
// overflow count makes it loop up to 2^32 times; checkFile checks the
// freelist instead.)
func verify(path string, db *bolt.DB) error {
	return guard(path, "verify", func() error {
		return db.View(func(tx *bolt.Tx) error {
			err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				known := false
				for _, want := range allBuckets {
					known = known || bytes.Equal(name, want)
				}
				if !known {
					return corruptf(path, "verify", "unknown bucket %q", name)
				}
				json := !bytes.Equal(name, bucketMeta)
				return walkBucket(path, string(name), b, json)
			})
			if err != nil {
				return asCorrupt(path, "verify", err)
			}
			return nil
		})
	})
}

// walkBucket reads every key and value of a bucket; the layout has no
// nested buckets. Values are checked by jsondoc.Valid, as json.Valid
// would: json.Valid over every value was 3.9 % of a no-op apply's CPU (a
// state of 1,000 files).
func walkBucket(path, name string, b *bolt.Bucket, wantJSON bool) error {
	return b.ForEach(func(k, v []byte) error {
		switch {
		case v == nil:
			return corruptf(path, "verify", "bucket %s holds a nested bucket %q", name, k)
		case wantJSON && !jsondoc.Valid(v):
			return corruptf(path, "verify", "bucket %s: the value of %q is not JSON", name, k)
		}
		return nil
	})
}

// create builds a new state file beside the final name, seeded from the
// inventory copy when there is one, and links it in only once complete: a
// failure leaves no file behind. If another process linked one in first,
// that one stays. It returns how many inventory entries it restored, and
// why the copy could not be used (empty when there was none).
func (s *Store) create() (restored int, lost string, err error) {
	seed, cerr := ReadInventory(s.path)
	switch {
	case isNotExist(cerr):
		seed, lost = nil, "no inventory copy ("+InventoryPath(s.path)+")"
	case cerr != nil:
		seed, lost = nil, cerr.Error()
	}
	dir, base := filepath.Split(s.path)
	f, err := os.CreateTemp(dir, base+newSuffix+"*")
	if err != nil {
		return 0, lost, fmt.Errorf("create state %s: %w", s.path, err)
	}
	tmp := f.Name()
	_ = f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	err = guard(tmp, "create", func() error {
		db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: s.timeout})
		if err != nil {
			return err
		}
		err = db.Update(func(tx *bolt.Tx) error { return initBuckets(tx, seed) })
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return 0, lost, fmt.Errorf("create state %s: %w", s.path, err)
	}
	if err = os.Link(tmp, s.path); err != nil && !errors.Is(err, fs.ErrExist) {
		return 0, lost, fmt.Errorf("create state %s: %w", s.path, err)
	}
	err = nil
	_ = os.Remove(tmp)
	syncDir(dir)
	if seed != nil {
		restored = len(seed.Inventory)
	}
	return restored, lost, nil
}

// newSuffix precedes the random part of a state file being built.
const newSuffix = ".new-"

// removeStaleTemps removes state files left half-built by a process that
// died while creating one (older than a minute, so that one being built
// now is left alone).
func removeStaleTemps(path string) {
	old, _ := filepath.Glob(globEscape(path) + newSuffix + "*")
	for _, p := range old {
		if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > time.Minute {
			_ = os.Remove(p)
		}
	}
}

// initBuckets creates the layout's buckets and schema version, and the
// seed's memory and revisions if given.
func initBuckets(tx *bolt.Tx, seed *InventoryCopy) error {
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyVersion, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return err
	}
	if seed == nil {
		return nil
	}
	for k, v := range map[string]string{string(keySite): seed.Site, string(keyNode): seed.Node,
		string(keyDesiredRevision): seed.DesiredRevision, string(keyAppliedRevision): seed.AppliedRevision} {
		if v != "" {
			if err := meta.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
	}
	var n int
	if err := syncBucket(tx.Bucket(bucketInventory), seed.Inventory, &n); err != nil {
		return err
	}
	if err := syncBucket(tx.Bucket(bucketRefresh), seed.Refresh, &n); err != nil {
		return err
	}
	if len(seed.Applied) == 0 {
		return nil
	}
	return writeApplied(tx, seed.Applied, &n)
}

// replace handles a corrupt state file: it moves it aside (under its
// lock: db's if open, else one taken for the move), closes db, and
// builds a fresh file from the inventory copy. It returns nil, nil when
// the file was replaced meanwhile by another process.
func (s *Store) replace(db *bolt.DB, cause error) (*Recovery, error) {
	if db == nil {
		unlock, err := lockAside(s.path, s.timeout, false)
		if isNotExist(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("move the corrupt state file aside: %w", err)
		}
		defer unlock()
		if err := checkFile(s.path); !IsCorrupt(err) {
			return nil, nil // replaced meanwhile
		}
	}
	rec := &Recovery{At: time.Now().UTC(), Path: s.path, Reason: oneLine(cause)}
	moved, err := quarantine(s.path, rec.At)
	s.closeDB(db)
	if err != nil {
		return nil, err
	}
	rec.MovedTo = moved
	if rec.Restored, rec.InventoryLost, err = s.create(); err != nil {
		return nil, fmt.Errorf("replace the corrupt state file: %w", err)
	}
	return rec, nil
}

// closeTimeout bounds the wait for bbolt to close a file.
const closeTimeout = 2 * time.Second

// closeDB closes a db, ignoring the error (see closeWithin).
func (s *Store) closeDB(db *bolt.DB) {
	if db != nil {
		_ = s.closeWithin(db)
	}
}

// closeWithin closes a db on a goroutine of its own, turning a panic into
// an error, and gives up after closeTimeout: a panic inside bbolt can
// leave one of its locks held (beginning a transaction takes them outside
// any defer), and Close would wait for it forever. An abandoned db keeps
// its descriptor and its lock on the old file until the process ends.
func (s *Store) closeWithin(db *bolt.DB) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("bbolt panicked closing the file: %v", r)
			}
		}()
		done <- db.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(closeTimeout):
		return fmt.Errorf("bbolt did not close the file within %s (a lock left held by an earlier panic): abandoned", closeTimeout)
	}
}

// oneLine returns err's message on one line.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// access runs fn in a read or write transaction under guard. On a
// corrupt file, a writable store replaces it and runs fn once more, on
// the fresh file: fn must start from scratch each time it is called.
func (s *Store) access(op string, write bool, fn func(*bolt.Tx) error) error {
	for attempt := 0; ; attempt++ {
		// A change by someone else before this write must not pass for
		// the store's own once the write is done: the stamp is renewed
		// only when the file was the store's own before it.
		outside := write && s.changedOutside()
		s.mu.RLock()
		db := s.db
		err := guard(s.path, op, func() error {
			if write {
				return db.Update(fn)
			}
			return db.View(fn)
		})
		s.mu.RUnlock()
		err = asCorrupt(s.path, op, err)
		if write && err == nil && !outside {
			s.remember()
		}
		if !IsCorrupt(err) || s.readOnly || attempt > 0 {
			return err
		}
		if rerr := s.recoverFrom(db, err); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
}

// recoverFrom replaces the corrupt file db has open, unless another
// goroutine already did, and reopens the store on the fresh file.
func (s *Store) recoverFrom(db *bolt.DB, cause error) error {
	s.mu.Lock()
	if s.db != db {
		s.mu.Unlock()
		return nil
	}
	rec, err := s.replace(db, cause)
	s.db = nil
	if err == nil {
		var fresh *bolt.DB
		fresh, err = s.openChecked()
		if err != nil {
			s.closeDB(fresh)
		} else {
			s.db = fresh
			if err = s.init(); err != nil {
				s.closeDB(fresh)
				s.db = nil
			}
		}
	}
	if s.db == nil {
		// Leave a closed db rather than nil: every access then fails
		// with bbolt's "database not open" until the next Open.
		s.db = db
	}
	if rec != nil {
		s.recoveries = append(s.recoveries, *rec)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.copyMu.Lock()
	s.copyKey = nil
	s.copyMu.Unlock()
	s.remember()
	if rec != nil && s.onRecover != nil {
		s.onRecover(*rec)
	}
	return nil
}

// Recoveries returns the corrupt files this store replaced, oldest first.
func (s *Store) Recoveries() []Recovery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Recovery(nil), s.recoveries...)
}

// init checks the schema version, and on a writable file creates what is
// missing, in a write transaction only when something is.
func (s *Store) init() error {
	var version int
	complete := true
	err := guard(s.path, "read", func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if tx.Bucket(b) == nil {
					complete = false
				}
			}
			if m := tx.Bucket(bucketMeta); m != nil {
				if v := m.Get(keyVersion); v != nil {
					n, err := strconv.Atoi(string(v))
					if err != nil {
						return corruptf(s.path, "read", "schema version %q: %w", v, err)
					}
					version = n
				} else if complete {
					return corruptf(s.path, "read", "no schema version")
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read state %s: %w", s.path, asCorrupt(s.path, "read", err))
	}
	if version > SchemaVersion {
		return fmt.Errorf("state %s has schema version %d, and this fsgit speaks %d: run a newer fsgit, or move the file aside to start afresh",
			s.path, version, SchemaVersion)
	}
	if (complete && version == SchemaVersion) || s.readOnly {
		return nil
	}
	err = guard(s.path, "initialize", func() error {
		return s.db.Update(func(tx *bolt.Tx) error { return initBuckets(tx, nil) })
	})
	if err != nil {
		return fmt.Errorf("initialize state %s: %w", s.path, asCorrupt(s.path, "initialize", err))
	}
	return nil
}

// Close closes the file and releases its lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closeWithin(s.db); err != nil {
		return fmt.Errorf("close state %s: %w", s.path, err)
	}
	return nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Memory returns what the node remembers: the inventory, the last
// converged observed states and the refreshes owed, for
// [reconciler.RunOptions.Prior].
func (s *Store) Memory() (*reconciler.Memory, error) {
	var m *reconciler.Memory
	var mm *memo
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	err := s.access("read", false, func(tx *bolt.Tx) error {
		nInv, nObs := keyCount(tx.Bucket(bucketInventory)), keyCount(tx.Bucket(bucketObserved))
		m = &reconciler.Memory{
			Inventory: make(map[reconciler.ID]reconciler.Resource, nInv),
			Observed:  make(map[reconciler.ID]reconciler.ObservedState, nObs),
			Refresh:   map[reconciler.ID][]reconciler.ID{},
		}
		mm = nil
		if !s.readOnly {
			// What Record will compare with: the bytes, copied out of
			// the transaction, in one block.
			mm = &memo{
				db:  tx.DB(),
				inv: make(map[reconciler.ID]memoEntry[reconciler.Resource], nInv),
				obs: make(map[reconciler.ID]memoEntry[reconciler.ObservedState], nObs),
			}
		}
		if b := tx.Bucket(bucketInventory); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				// One copy of the entry, out of the transaction: the
				// resource's spec and the memo share it.
				own := bytes.Clone(v)
				var r reconciler.Resource
				if err := decodeResource(own, &r); err != nil {
					return corruptf(s.path, "read", "decode inventory entry %s: %w", k, err)
				}
				if r.ID != reconciler.ID(k) {
					return corruptf(s.path, "read", "inventory entry %s holds resource %s", k, r.ID)
				}
				m.Inventory[reconciler.ID(k)] = r
				if mm != nil {
					mm.inv[r.ID] = memoEntry[reconciler.Resource]{val: r, enc: own}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketObserved); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				var o reconciler.ObservedState
				if err := decodeObserved(v, &o); err != nil {
					return corruptf(s.path, "read", "decode observed state of %s: %w", k, err)
				}
				m.Observed[reconciler.ID(k)] = o
				if mm != nil {
					mm.obs[reconciler.ID(k)] = memoEntry[reconciler.ObservedState]{val: o, enc: bytes.Clone(v)}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketRefresh); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				var by []reconciler.ID
				if err := json.Unmarshal(v, &by); err != nil {
					return corruptf(s.path, "read", "decode refresh owed to %s: %w", k, err)
				}
				m.Refresh[reconciler.ID(k)] = by
				return nil
			})
			if err != nil {
				return err
			}
		}
		return readApplied(tx, m)
	})
	if err != nil {
		s.setMemo(nil)
		return nil, fmt.Errorf("read state %s: %w", s.path, err)
	}
	if mm != nil {
		s.setMemo(mm)
	}
	return m, nil
}

// keyCount counts a bucket's keys, walking its leaves without reading a
// value: the maps Memory fills are made at their size, not grown a
// thousand entries at a time.
func keyCount(b *bolt.Bucket) int {
	n := 0
	if b != nil {
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
	}
	return n
}

// Meta is what the meta bucket says.
type Meta struct {
	SchemaVersion int    `json:"schemaVersion"`
	Site          string `json:"site,omitempty"`
	Node          string `json:"node,omitempty"`
	// Role is the node's role in the last run that named one.
	Role            string `json:"role,omitempty"`
	DesiredRevision string `json:"desiredRevision,omitempty"`
	AppliedRevision string `json:"appliedRevision,omitempty"`
}

// Meta returns the schema version, the node, its role and the revisions.
func (s *Store) Meta() (Meta, error) {
	var m Meta
	err := s.access("read", false, func(tx *bolt.Tx) error {
		m = Meta{}
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return nil
		}
		m.SchemaVersion, _ = strconv.Atoi(string(b.Get(keyVersion)))
		m.Site = string(b.Get(keySite))
		m.Node = string(b.Get(keyNode))
		m.Role = string(b.Get(keyRole))
		m.DesiredRevision = string(b.Get(keyDesiredRevision))
		m.AppliedRevision = string(b.Get(keyAppliedRevision))
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("read state %s: %w", s.path, err)
	}
	return m, nil
}

// Writes counts the keys a Record wrote or deleted, by what they are.
type Writes struct {
	// Meta counts writes to the meta bucket (revisions, node).
	Meta int `json:"meta"`
	// Resources counts writes and deletes of inventory entries, observed
	// states and refreshes owed.
	Resources int `json:"resources"`
	// History counts runs added and dropped.
	History int `json:"history"`
}

// Record persists a run in one write transaction: the memory the report
// leaves (rep.Next; nil in noop), the revisions (after a full run), and a
// history entry. Only keys whose value changed are written.
func (s *Store) Record(rep *reconciler.Report) (Writes, error) { return s.RecordAs(rep, "", "") }

// RecordAs is Record, with what triggered the run (status.Run's Trigger)
// and an operator's note kept in the history entry.
func (s *Store) RecordAs(rep *reconciler.Report, trigger, note string) (Writes, error) {
	var w Writes
	if s.readOnly {
		return w, fmt.Errorf("record run in %s: the state is open read-only", s.path)
	}
	run := newRun(rep, trigger, note)
	var cp *InventoryCopy
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	// A file changed outside the store is compared entry by entry.
	useMemo := !s.changedOutside()
	var next *memo
	err := s.access("record", true, func(tx *bolt.Tx) error {
		w, cp, next = Writes{}, nil, nil
		var known *memo
		if useMemo {
			known = s.memoFor(tx.DB())
		}
		meta, inv, obs, runs := tx.Bucket(bucketMeta), tx.Bucket(bucketInventory), tx.Bucket(bucketObserved), tx.Bucket(bucketRuns)
		put := func(b *bolt.Bucket, k, v []byte, n *int) error {
			if bytes.Equal(b.Get(k), v) {
				return nil
			}
			*n++
			return b.Put(k, v)
		}
		if rep.Site != "" {
			if err := put(meta, keySite, []byte(rep.Site), &w.Meta); err != nil {
				return err
			}
		}
		if rep.Node != "" {
			if err := put(meta, keyNode, []byte(rep.Node), &w.Meta); err != nil {
				return err
			}
		}
		if rep.Role != "" {
			if err := put(meta, keyRole, []byte(rep.Role), &w.Meta); err != nil {
				return err
			}
		}
		if full := len(rep.Only) == 0 && rep.Stopped == "" && !rep.Noop; full && rep.Revision != "" {
			if err := put(meta, keyDesiredRevision, []byte(rep.Revision), &w.Meta); err != nil {
				return err
			}
			if rep.Count(reconciler.Failed) == 0 {
				if err := put(meta, keyAppliedRevision, []byte(rep.Revision), &w.Meta); err != nil {
					return err
				}
			}
		}
		if rep.Next != nil {
			next = &memo{db: tx.DB()}
			var knownInv map[reconciler.ID]memoEntry[reconciler.Resource]
			var knownObs map[reconciler.ID]memoEntry[reconciler.ObservedState]
			if known != nil {
				knownInv, knownObs = known.inv, known.obs
			}
			var err error
			if next.inv, err = syncKnown(inv, rep.Next.Inventory, knownInv, sameResource, &w.Resources); err != nil {
				return fmt.Errorf("write inventory: %w", err)
			}
			if next.obs, err = syncKnown(obs, rep.Next.Observed, knownObs, sameObserved, &w.Resources); err != nil {
				return fmt.Errorf("write observed states: %w", err)
			}
			if err := syncBucket(tx.Bucket(bucketRefresh), rep.Next.Refresh, &w.Resources); err != nil {
				return fmt.Errorf("write refreshes owed: %w", err)
			}
			if rep.Next.Applied != nil {
				if err := writeApplied(tx, rep.Next.Applied, &w.Resources); err != nil {
					return err
				}
			}
			cp = &InventoryCopy{
				Site: string(meta.Get(keySite)), Node: string(meta.Get(keyNode)),
				DesiredRevision: string(meta.Get(keyDesiredRevision)), AppliedRevision: string(meta.Get(keyAppliedRevision)),
				Inventory: rep.Next.Inventory, Refresh: rep.Next.Refresh, Applied: rep.Next.Applied,
			}
		}
		return s.appendRun(runs, run, &w.History)
	})
	if err != nil {
		s.setMemo(nil)
		return Writes{}, fmt.Errorf("record run in %s: %w", s.path, err)
	}
	if next != nil {
		s.setMemo(next)
	}
	if cp != nil {
		if err := s.syncCopy(cp, next.inv); err != nil {
			return w, fmt.Errorf("record run in %s: the run is in the state file, but %w", s.path, err)
		}
	}
	return w, nil
}

// syncBucket makes the bucket hold exactly want, JSON-encoded, writing only
// the keys whose value differs.
func syncBucket[V any](b *bolt.Bucket, want map[reconciler.ID]V, n *int) error {
	if err := deleteStale(b, want, n); err != nil {
		return err
	}
	for id, v := range want {
		enc, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
		if bytes.Equal(b.Get([]byte(id)), enc) {
			continue
		}
		*n++
		if err := b.Put([]byte(id), enc); err != nil {
			return err
		}
	}
	return nil
}

// deleteStale deletes the bucket's keys that want does not have, counting
// each in n.
func deleteStale[V any](b *bolt.Bucket, want map[reconciler.ID]V, n *int) error {
	var stale [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		if _, ok := want[reconciler.ID(k)]; !ok {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		*n++
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// syncKnown makes the bucket hold exactly want, as syncBucket does, and
// returns the bucket's entries as a memo. An entry the memo known holds
// with the same value is neither encoded nor read: the file holds the
// memo's bytes for it.
func syncKnown[V any](b *bolt.Bucket, want map[reconciler.ID]V, known map[reconciler.ID]memoEntry[V], same func(a, b V) bool, n *int) (map[reconciler.ID]memoEntry[V], error) {
	if err := deleteStale(b, want, n); err != nil {
		return nil, err
	}
	out := make(map[reconciler.ID]memoEntry[V], len(want))
	// In key order: bbolt keeps a node's entries sorted, and an entry put
	// before others moves them all (a first record of 1,000 files moved
	// ~500 entries per put); in order, each put appends. The entries, and
	// how the commit groups them into pages, are the same either way;
	// only which page number holds which group may differ.
	for _, id := range slices.Sorted(maps.Keys(want)) {
		v := want[id]
		if e, ok := known[id]; ok && same(e.val, v) {
			out[id] = memoEntry[V]{val: v, enc: e.enc}
			continue
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", id, err)
		}
		out[id] = memoEntry[V]{val: v, enc: enc}
		if bytes.Equal(b.Get([]byte(id)), enc) {
			continue
		}
		*n++
		if err := b.Put([]byte(id), enc); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendRun adds a run to the history and drops the oldest past the bound.
func (s *Store) appendRun(b *bolt.Bucket, run Run, n *int) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	run.Seq = seq
	enc, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	if err := b.Put(seqKey(seq), enc); err != nil {
		return err
	}
	*n++
	if seq <= uint64(s.history) {
		return nil
	}
	oldest := seqKey(seq - uint64(s.history) + 1)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, oldest) < 0; {
		k = bytes.Clone(k)
		if err := c.Delete(); err != nil {
			return err
		}
		*n++
		// Each pass must remove the first key: checkFile keeps keys in
		// order, and this keeps a file it missed from looping here.
		next, _ := c.First()
		if bytes.Equal(next, k) {
			return corruptf(s.path, "record", "run %x is still first after it was deleted: the runs are out of order", k)
		}
		k = next
	}
	return nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// History returns up to n runs, newest first (n <= 0: all kept).
func (s *Store) History(n int) ([]Run, error) {
	var out []Run
	err := s.access("read", false, func(tx *bolt.Tx) error {
		out = nil
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return corruptf(s.path, "read", "decode run %x: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history from %s: %w", s.path, err)
	}
	return out, nil
}

// IsNotExist reports whether err says that the state file does not exist
// (a read-only open on a new node).
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// copyKeyOf is what identifies a copy's content: the copy without its
// write time, encoded as writeInventory encodes it.
func copyKeyOf(c *InventoryCopy, inv map[reconciler.ID]memoEntry[reconciler.Resource]) []byte {
	k := *c
	k.Format, k.Written = inventoryFormat, time.Time{}
	b, _ := k.encode(inv)
	return b
}

// writtenField is the key of the copy's last field, its write time: the
// encoding of a copy is its key up to this field, then its own time.
const writtenField = `"written":`

// sameCopy reports whether r, an inventory copy's file, holds the
// content whose key is key: the same bytes up to the write time (the
// copy's last field, after everything it keeps), then a write time, the
// closing brace and the newline writeInventory ends it with. It costs a
// comparison, not a decoding: the file is the canonical encoding of the
// content or it is not. The file is compared as it is read, through a
// buffer of at most 32 KiB, not read whole first: of a quiet run's fresh
// memory, a copy of a thousand resources is a third of a megabyte.
func sameCopy(r io.Reader, key []byte) bool {
	i := bytes.LastIndex(key, []byte(writtenField))
	if i < 0 {
		return false
	}
	buf := make([]byte, min(i, 32<<10))
	for off := 0; off < i; {
		n, err := io.ReadFull(r, buf[:min(len(buf), i-off)])
		if err != nil || !bytes.Equal(buf[:n], key[off:off+n]) {
			return false
		}
		off += n
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return false
	}
	var tail struct {
		Written time.Time `json:"written"`
	}
	rest, ok := bytes.CutSuffix(data, []byte("\n"))
	return ok && json.Unmarshal(append([]byte("{"), rest...), &tail) == nil && !tail.Written.IsZero()
}

// syncCopy rewrites the inventory copy when its content changed, or when
// it could not be written last time. The first time, it compares with the
// file on disk (an open does not read it: a quiet run then costs one read
// of the file and no write).
func (s *Store) syncCopy(c *InventoryCopy, inv map[reconciler.ID]memoEntry[reconciler.Resource]) error {
	key := copyKeyOf(c, inv)
	s.copyMu.Lock()
	defer s.copyMu.Unlock()
	if s.copyKey == nil {
		if f, err := os.Open(InventoryPath(s.path)); err == nil {
			if sameCopy(f, key) {
				s.copyKey = key
			}
			f.Close()
		}
	}
	if bytes.Equal(key, s.copyKey) {
		return nil
	}
	c.Written = time.Now().UTC()
	s.copyKey = nil
	if err := writeInventory(s.path, c, inv); err != nil {
		return err
	}
	s.copyKey = key
	return nil
}
