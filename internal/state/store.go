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
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

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

	allBuckets = [][]byte{bucketMeta, bucketInventory, bucketObserved, bucketRefresh, bucketRuns}

	keyVersion         = []byte("version")
	keySite            = []byte("site")
	keyNode            = []byte("node")
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
	// creates it: a missing file is an error wrapping fs.ErrNotExist.
	ReadOnly bool
	// History is how many runs are kept (zero: DefaultHistory).
	History int
}

// Store is an open state file. Its methods are safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	history  int
	readOnly bool
}

// Open opens the state file at path, creating it (and its directory, mode
// 0700) unless opts.ReadOnly. It refuses a file written with a newer
// layout.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open state %s: no lock after %s: another fsgit (the agent, or an apply) "+
			"is probably running and holds it; wait for it, or stop it (systemctl stop fsgit): %w (%w)",
			path, opts.Timeout, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s := &Store{db: db, path: path, history: opts.History, readOnly: opts.ReadOnly}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the schema version, and on a writable file creates what is
// missing, in a write transaction only when something is.
func (s *Store) init() error {
	var version int
	complete := true
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				complete = false
			}
		}
		if m := tx.Bucket(bucketMeta); m != nil {
			if v := m.Get(keyVersion); v != nil {
				n, err := strconv.Atoi(string(v))
				if err != nil {
					return fmt.Errorf("read schema version %q: %w", v, err)
				}
				version = n
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read state %s: %w", s.path, err)
	}
	if version > SchemaVersion {
		return fmt.Errorf("state %s has schema version %d, and this fsgit speaks %d: run a newer fsgit, or move the file aside to start afresh",
			s.path, version, SchemaVersion)
	}
	if (complete && version == SchemaVersion) || s.readOnly {
		return nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("initialize state %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
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
	m := reconciler.NewMemory()
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketInventory); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				var r reconciler.Resource
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode inventory entry %s: %w", k, err)
				}
				// Unmarshal copies the bytes: nothing of v outlives the
				// transaction.
				m.Inventory[reconciler.ID(k)] = r
				return nil
			})
			if err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketObserved); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				var o reconciler.ObservedState
				if err := json.Unmarshal(v, &o); err != nil {
					return fmt.Errorf("decode observed state of %s: %w", k, err)
				}
				m.Observed[reconciler.ID(k)] = o
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
					return fmt.Errorf("decode refresh owed to %s: %w", k, err)
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
		return nil, fmt.Errorf("read state %s: %w", s.path, err)
	}
	return m, nil
}

// Meta is what the meta bucket says.
type Meta struct {
	SchemaVersion   int    `json:"schemaVersion"`
	Site            string `json:"site,omitempty"`
	Node            string `json:"node,omitempty"`
	DesiredRevision string `json:"desiredRevision,omitempty"`
	AppliedRevision string `json:"appliedRevision,omitempty"`
}

// Meta returns the schema version, the node and the revisions.
func (s *Store) Meta() (Meta, error) {
	var m Meta
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return nil
		}
		m.SchemaVersion, _ = strconv.Atoi(string(b.Get(keyVersion)))
		m.Site = string(b.Get(keySite))
		m.Node = string(b.Get(keyNode))
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
func (s *Store) Record(rep *reconciler.Report) (Writes, error) {
	var w Writes
	if s.readOnly {
		return w, fmt.Errorf("record run in %s: the state is open read-only", s.path)
	}
	run := newRun(rep)
	err := s.db.Update(func(tx *bolt.Tx) error {
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
			if err := syncBucket(inv, rep.Next.Inventory, &w.Resources); err != nil {
				return fmt.Errorf("write inventory: %w", err)
			}
			if err := syncBucket(obs, rep.Next.Observed, &w.Resources); err != nil {
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
		}
		return s.appendRun(runs, run, &w.History)
	})
	if err != nil {
		return Writes{}, fmt.Errorf("record run in %s: %w", s.path, err)
	}
	return w, nil
}

// syncBucket makes the bucket hold exactly want, JSON-encoded, writing only
// the keys whose value differs.
func syncBucket[V any](b *bolt.Bucket, want map[reconciler.ID]V, n *int) error {
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
	for k, _ := c.First(); k != nil && bytes.Compare(k, oldest) < 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
		*n++
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
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode run %d: %w", binary.BigEndian.Uint64(k), err)
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
