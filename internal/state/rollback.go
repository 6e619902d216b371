package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// For rollback without git, the applied bucket also keeps the last
// applied catalogs whole, and the pin a rollback sets:
//
//	applied                       (bucket)
//	├── catalogs                  []reconciler.AppliedCatalog (pruning's)
//	├── kept                      []KeptCatalog, JSON, newest first
//	├── catalog/<revision>        reconciler.Catalog, JSON (references to
//	│                             secrets, never their values)
//	└── pin                       Pin, JSON, while the node is pinned
//
// pruning's list (Memory.Applied) names the revisions whose resources are
// retained; kept is a longer list of the same catalogs, whole, to re-apply.
var (
	keyKept        = []byte("kept")
	keyPin         = []byte("pin")
	catalogKeyPref = "catalog/"
)

// DefaultKeepRollback is how many applied catalogs a node keeps whole for
// rollback.
const DefaultKeepRollback = 10

// KeptCatalog is one applied catalog kept for rollback.
type KeptCatalog struct {
	Revision string `json:"revision"`
	// Applied is when it was last applied in full without failure.
	Applied   time.Time `json:"applied,omitzero"`
	Resources int       `json:"resources"`
}

// Pin is a node rolled back by hand: it runs Revision's catalog, and
// does not follow the branch, until the pin is released.
type Pin struct {
	Revision string    `json:"revision"`
	By       string    `json:"by"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since,omitzero"`
}

// ErrNotKept is wrapped by [Store.KeptCatalog]'s error when no kept
// catalog matches.
var ErrNotKept = errors.New("no such catalog kept")

// KeepCatalog keeps cat, applied at at, as the newest catalog for
// rollback, and drops the oldest beyond keep (<= 0: DefaultKeepRollback);
// a pinned catalog is never dropped.
func (s *Store) KeepCatalog(cat *reconciler.Catalog, at time.Time, keep int) error {
	if keep <= 0 {
		keep = DefaultKeepRollback
	}
	if cat.Revision == "" {
		return errors.New("keep a catalog for rollback: it has no revision")
	}
	enc, err := json.Marshal(cat)
	if err != nil {
		return fmt.Errorf("encode catalog %s: %w", cat.Revision, err)
	}
	err = s.access("keep catalog", true, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketApplied)
		if err != nil {
			return err
		}
		list, err := readKept(b)
		if err != nil {
			return err
		}
		pinned := ""
		if p, err := readPin(b); err != nil {
			return err
		} else if p != nil {
			pinned = p.Revision
		}
		next := []KeptCatalog{{Revision: cat.Revision, Applied: at.UTC(), Resources: len(cat.Resources)}}
		for _, k := range list {
			if k.Revision == cat.Revision {
				continue
			}
			if len(next) >= keep && k.Revision != pinned {
				if err := b.Delete([]byte(catalogKeyPref + k.Revision)); err != nil {
					return err
				}
				continue
			}
			next = append(next, k)
		}
		if !bytes.Equal(b.Get([]byte(catalogKeyPref+cat.Revision)), enc) {
			if err := b.Put([]byte(catalogKeyPref+cat.Revision), enc); err != nil {
				return err
			}
		}
		v, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return b.Put(keyKept, v)
	})
	if err != nil {
		return fmt.Errorf("keep catalog %s in %s: %w", cat.Revision, s.path, err)
	}
	return nil
}

func readKept(b *bolt.Bucket) ([]KeptCatalog, error) {
	var list []KeptCatalog
	if v := b.Get(keyKept); v != nil {
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, fmt.Errorf("decode the kept catalogs: %w", err)
		}
	}
	return list, nil
}

func readPin(b *bolt.Bucket) (*Pin, error) {
	v := b.Get(keyPin)
	if v == nil {
		return nil, nil
	}
	var p Pin
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode the pin: %w", err)
	}
	return &p, nil
}

// KeptCatalogs lists the catalogs kept for rollback, newest first.
func (s *Store) KeptCatalogs() ([]KeptCatalog, error) {
	var list []KeptCatalog
	err := s.access("read", false, func(tx *bolt.Tx) error {
		list = nil
		b := tx.Bucket(bucketApplied)
		if b == nil {
			return nil
		}
		var err error
		list, err = readKept(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read kept catalogs from %s: %w", s.path, err)
	}
	return list, nil
}

// KeptCatalog returns the kept catalog whose revision is rev or starts
// with it (at least 7 characters, and only one may match).
func (s *Store) KeptCatalog(rev string) (*reconciler.Catalog, error) {
	var cat *reconciler.Catalog
	err := s.access("read", false, func(tx *bolt.Tx) error {
		cat = nil
		b := tx.Bucket(bucketApplied)
		if b == nil {
			return fmt.Errorf("%w: %s", ErrNotKept, rev)
		}
		list, err := readKept(b)
		if err != nil {
			return err
		}
		var match []string
		for _, k := range list {
			if k.Revision == rev || (len(rev) >= 7 && strings.HasPrefix(k.Revision, rev)) {
				match = append(match, k.Revision)
			}
		}
		switch len(match) {
		case 0:
			return fmt.Errorf("%w: %s (fsgit rollback --list shows those kept)", ErrNotKept, rev)
		case 1:
		default:
			return fmt.Errorf("%s is ambiguous: %s", rev, strings.Join(match, ", "))
		}
		v := b.Get([]byte(catalogKeyPref + match[0]))
		if v == nil {
			return fmt.Errorf("%w: %s is listed but its catalog is missing", ErrNotKept, match[0])
		}
		cat = new(reconciler.Catalog)
		if err := json.Unmarshal(v, cat); err != nil {
			return corruptf(s.path, "read", "decode catalog %s: %w", match[0], err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read kept catalog from %s: %w", s.path, err)
	}
	return cat, nil
}

// Pin returns the node's pin, or nil when it follows the branch.
func (s *Store) Pin() (*Pin, error) {
	var p *Pin
	err := s.access("read", false, func(tx *bolt.Tx) error {
		p = nil
		b := tx.Bucket(bucketApplied)
		if b == nil {
			return nil
		}
		var err error
		p, err = readPin(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read pin from %s: %w", s.path, err)
	}
	return p, nil
}

// SetPin pins the node (nil: releases it).
func (s *Store) SetPin(p *Pin) error {
	if s.readOnly {
		return fmt.Errorf("write pin in %s: the state is open read-only", s.path)
	}
	err := s.access("pin", true, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketApplied)
		if err != nil {
			return err
		}
		if p == nil {
			return b.Delete(keyPin)
		}
		v, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put(keyPin, v)
	})
	if err != nil {
		return fmt.Errorf("write pin in %s: %w", s.path, err)
	}
	return nil
}
