package state

import (
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// TestStore_Holds: holds survive the file being closed and opened again,
// read-only too, and clearing them leaves none.
func TestStore_Holds(t *testing.T) {
	s := openTemp(t, Options{})
	path := s.Path()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	holds := []Hold{
		{ID: "file:/etc/a", By: "alice", Reason: "load test", Since: now, Until: now.Add(2 * time.Hour)},
		{By: "bob", Reason: "incident 42", Since: now, Until: now.Add(time.Hour)},
	}
	if err := s.SetHolds(holds); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.Holds()
	_ = ro.Close()
	if err != nil || !reflect.DeepEqual(got, holds) {
		t.Fatalf("holds = %+v, %v; want %+v", got, err, holds)
	}
	if !holds[1].Active(now.Add(59*time.Minute)) || holds[1].Active(now.Add(time.Hour)) {
		t.Fatal("a hold is active until, not at, its end")
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetHolds(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Holds(); err != nil || len(got) != 0 {
		t.Fatalf("cleared holds = %+v, %v", got, err)
	}
}

// TestStore_reopenEveryBucket: a file that every write path has written
// to (runs, memory, applied catalogs, holds) opens again as it is: the
// layout check knows every bucket the store writes. (The applied bucket
// was missing from it after a merge: every recorded state file was then
// moved aside as corrupt on its next open.)
func TestStore_reopenEveryBucket(t *testing.T) {
	s := openTemp(t, Options{})
	path := s.Path()
	rep := report("rev1", "file:/a")
	rep.Next.Applied = []reconciler.AppliedCatalog{{Revision: "rev1", Resources: []reconciler.ID{"file:/a"}}}
	if _, err := s.Record(rep); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHolds([]Hold{{ID: "file:/a", By: "a", Reason: "r", Until: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	var buckets []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error { buckets = append(buckets, string(name)); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		var recovered []Recovery
		s2, err := Open(path, Options{ReadOnly: ro, OnRecover: func(r Recovery) { recovered = append(recovered, r) }})
		if err != nil {
			t.Fatalf("reopen (read-only %v) a file with buckets %v: %v", ro, buckets, err)
		}
		_ = s2.Close()
		if len(recovered) > 0 {
			t.Fatalf("reopen (read-only %v) moved the file aside: %v", ro, recovered)
		}
	}
}
