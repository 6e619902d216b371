package state

import (
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// TestStore_AppliedCatalogs: the node's last applied catalogs survive the
// file being closed and opened again, are rewritten only when they change,
// and a file without the bucket (written before it existed) reads as none.
func TestStore_AppliedCatalogs(t *testing.T) {
	s := openTemp(t, Options{})
	path := s.Path()
	if m, err := s.Memory(); err != nil || m.Applied != nil {
		t.Fatalf("new file: applied %v, err %v", m.Applied, err)
	}
	rep := report("rev2", "file:/a")
	rep.Next.Applied = []reconciler.AppliedCatalog{
		{Revision: "rev2", Resources: []reconciler.ID{"docker.image:x:2", "file:/a"}},
		{Revision: "rev1", Resources: []reconciler.ID{"docker.image:x:1", "file:/a"}},
	}
	w, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	if w2.Resources != 0 || w.Resources <= w2.Resources {
		t.Fatalf("writes: first %+v, same again %+v; want nothing rewritten", w, w2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Applied, rep.Next.Applied) {
		t.Fatalf("applied = %+v, want %+v", m.Applied, rep.Next.Applied)
	}

	// A file from before the bucket.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketApplied) }); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Memory(); err != nil || m.Applied != nil || len(m.Inventory) != 1 {
		t.Fatalf("without the bucket: %+v, %v", m, err)
	}
}
