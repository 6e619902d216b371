package state

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// The operator's holds (fsgit hold) live in a bucket of their own:
//
//	holds                         (bucket)
//	└── holds                     []Hold, JSON
var (
	bucketHolds = []byte("holds")
	keyHolds    = []byte("holds")
)

// Hold is an operator's hold on a resource, or on the whole node: the
// resource is observed and its drift reported, never changed, until Until.
type Hold struct {
	// ID is the held resource; empty holds the whole node.
	ID reconciler.ID `json:"id,omitempty"`
	// By is who placed it (the user on the node), Reason why.
	By     string `json:"by"`
	Reason string `json:"reason"`
	// Since is when it was placed, Until when it ends by itself.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Active reports whether the hold is still in force at now.
func (h Hold) Active(now time.Time) bool { return now.Before(h.Until) }

// Holds returns the holds kept, expired ones too.
func (s *Store) Holds() ([]Hold, error) {
	var out []Hold
	err := s.access("read", false, func(tx *bolt.Tx) error {
		out = nil
		b := tx.Bucket(bucketHolds)
		if b == nil {
			return nil
		}
		v := b.Get(keyHolds)
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &out); err != nil {
			return corruptf(s.path, "read", "decode holds: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read holds from %s: %w", s.path, err)
	}
	return out, nil
}

// SetHolds replaces the holds kept.
func (s *Store) SetHolds(holds []Hold) error {
	if s.readOnly {
		return fmt.Errorf("write holds in %s: the state is open read-only", s.path)
	}
	v, err := json.Marshal(holds)
	if err != nil {
		return fmt.Errorf("encode holds: %w", err)
	}
	err = s.access("holds", true, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketHolds)
		if err != nil {
			return err
		}
		if len(holds) == 0 {
			return b.Delete(keyHolds)
		}
		return b.Put(keyHolds, v)
	})
	if err != nil {
		return fmt.Errorf("write holds in %s: %w", s.path, err)
	}
	return nil
}
