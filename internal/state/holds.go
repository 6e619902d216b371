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

// Sentence says who holds a resource, until when and why: the reason a
// held resource's result gives.
func (h Hold) Sentence() string {
	what := "held"
	if h.ID == "" {
		what = "node held"
	}
	return fmt.Sprintf("%s by %s until %s: %s", what, h.By, h.Until.UTC().Format(time.RFC3339), h.Reason)
}

// HeldFor is what the holds in force at now hold of cat, for a run
// (reconciler.RunOptions.Held), by ID with each hold's sentence: a hold
// of the whole node holds every resource of cat. noPrune is set when a
// hold is on the whole node or on a resource cat no longer has, so that
// the run deletes nothing that left the catalog. Every run that applies
// (the agent's, fsgit apply --once) takes its holds from here.
func HeldFor(holds []Hold, cat *reconciler.Catalog, now time.Time) (held map[reconciler.ID]string, noPrune bool) {
	for _, h := range holds {
		if !h.Active(now) {
			continue
		}
		if held == nil {
			held = map[reconciler.ID]string{}
		}
		if h.ID == "" {
			noPrune = true
			for _, r := range cat.Resources {
				if _, ok := held[r.ID]; !ok {
					held[r.ID] = h.Sentence()
				}
			}
			continue
		}
		held[h.ID] = h.Sentence()
		if cat.Lookup(h.ID) == nil {
			noPrune = true
		}
	}
	return held, noPrune
}

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
