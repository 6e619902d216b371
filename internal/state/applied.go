package state

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// The node's last applied catalogs (reconciler.Memory.Applied), which
// pruning keeps what a rollback needs by, live in a bucket of their own:
//
//	applied                       (bucket)
//	└── catalogs                  []reconciler.AppliedCatalog, JSON,
//	                              newest first
//
// A file written before the bucket existed has none: the node then
// remembers no earlier catalog, and keeps nothing for rollback until it has
// applied some.
var (
	bucketApplied = []byte("applied")
	keyCatalogs   = []byte("catalogs")
)

// readApplied fills m.Applied from the bucket, if there is one.
func readApplied(tx *bolt.Tx, m *reconciler.Memory) error {
	b := tx.Bucket(bucketApplied)
	if b == nil {
		return nil
	}
	v := b.Get(keyCatalogs)
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(v, &m.Applied); err != nil {
		return fmt.Errorf("decode the applied catalogs: %w", err)
	}
	return nil
}

// writeApplied stores next, when it changed, counting the write in n.
func writeApplied(tx *bolt.Tx, next []reconciler.AppliedCatalog, n *int) error {
	b, err := tx.CreateBucketIfNotExists(bucketApplied)
	if err != nil {
		return fmt.Errorf("write the applied catalogs: %w", err)
	}
	v, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("write the applied catalogs: %w", err)
	}
	if bytes.Equal(b.Get(keyCatalogs), v) {
		return nil
	}
	*n++
	return b.Put(keyCatalogs, v)
}
