package state

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// fieldNames lists a struct type's fields.
func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		out = append(out, t.Field(i).Name)
	}
	return out
}

// TestSameResourceFields: sameResource compares every field of Resource;
// a new field must be added to it (and here).
func TestSameResourceFields(t *testing.T) {
	want := []string{"ID", "Require", "Notify", "Mode", "AllowDestroy", "Spec"}
	if got := fieldNames(reflect.TypeFor[reconciler.Resource]()); !slices.Equal(got, want) {
		t.Fatalf("reconciler.Resource has fields %v; sameResource compares %v: update it", got, want)
	}
	base := reconciler.Resource{ID: "file:/a", Require: []reconciler.ID{"x:y"}, Notify: []reconciler.ID{"s:z"},
		Mode: "detect", AllowDestroy: true, Spec: json.RawMessage(`{"a":1}`)}
	if !sameResource(base, base) {
		t.Fatal("a resource differs from itself")
	}
	for name, change := range map[string]func(*reconciler.Resource){
		"ID":           func(r *reconciler.Resource) { r.ID = "file:/b" },
		"Require":      func(r *reconciler.Resource) { r.Require = nil },
		"Notify":       func(r *reconciler.Resource) { r.Notify = []reconciler.ID{"s:w"} },
		"Mode":         func(r *reconciler.Resource) { r.Mode = "" },
		"AllowDestroy": func(r *reconciler.Resource) { r.AllowDestroy = false },
		"Spec":         func(r *reconciler.Resource) { r.Spec = json.RawMessage(`{"a":2}`) },
		"nil Spec":     func(r *reconciler.Resource) { r.Spec = nil },
	} {
		r := base
		change(&r)
		a, _ := json.Marshal(base)
		b, _ := json.Marshal(r)
		if sameResource(base, r) && !bytes.Equal(a, b) {
			t.Errorf("%s changed: sameResource says same, the encodings differ", name)
		}
	}
}

// TestSameObservedFields: as TestSameResourceFields, for ObservedState.
func TestSameObservedFields(t *testing.T) {
	want := []string{"Hash", "Fields"}
	if got := fieldNames(reflect.TypeFor[reconciler.ObservedState]()); !slices.Equal(got, want) {
		t.Fatalf("reconciler.ObservedState has fields %v; sameObserved compares %v: update it", got, want)
	}
	a := reconciler.NewObservedState(map[string]string{"mode": "0644"})
	b := reconciler.NewObservedState(map[string]string{"mode": "0600"})
	if !sameObserved(a, a) || sameObserved(a, b) {
		t.Fatal("sameObserved is wrong")
	}
	c := a
	c.Fields = map[string]string{"mode": "0644", "owner": "root"}
	if sameObserved(a, c) {
		t.Fatal("sameObserved ignores a field")
	}
}

// TestInventoryCopyEncode: a copy made from the entries' encodings is
// json.Marshal's, byte for byte.
func TestInventoryCopyEncode(t *testing.T) {
	inv := map[reconciler.ID]reconciler.Resource{
		"file:/etc/b":         {ID: "file:/etc/b", Spec: json.RawMessage(`{"content":"<b>&amp;</b>\u2028"}`)},
		"file:/etc/a":         {ID: "file:/etc/a", Require: []reconciler.ID{"directory:/etc"}, Spec: json.RawMessage(`{ "mode" : "0644" }`)},
		`file:/etc/q"<&>`:     {ID: `file:/etc/q"<&>`, Spec: json.RawMessage(`{}`)},
		"file:/etc/é\u2028":   {ID: "file:/etc/é\u2028", Spec: json.RawMessage(`null`)},
		"service:mariadb":     {ID: "service:mariadb", Notify: []reconciler.ID{"x:y"}, Mode: "detect", AllowDestroy: true, Spec: json.RawMessage(`{"name":"mariadb"}`)},
		"file:/etc/Z-upper_1": {ID: "file:/etc/Z-upper_1", Spec: json.RawMessage(`[1, 2]`)},
	}
	copies := map[string]*InventoryCopy{
		"full": {Format: 1, Site: "example", Node: "db1", DesiredRevision: "r2", AppliedRevision: "r1", Inventory: inv,
			Refresh: map[reconciler.ID][]reconciler.ID{"service:mariadb": {"file:/etc/a"}},
			Applied: []reconciler.AppliedCatalog{{Revision: "r1", Resources: []reconciler.ID{"file:/etc/a"}}},
			Written: time.Date(2026, 12, 7, 0, 1, 2, 3, time.UTC)},
		"bare":     {Inventory: inv},
		"empty":    {Format: 1, Site: "s"},
		"one, new": {Format: 1, Inventory: map[reconciler.ID]reconciler.Resource{"file:/x": inv["file:/etc/b"]}},
	}
	for name, c := range copies {
		encs := map[reconciler.ID]memoEntry[reconciler.Resource]{}
		for id, r := range c.Inventory {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			encs[id] = memoEntry[reconciler.Resource]{val: r, enc: b}
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.encode(encs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		// Without every encoding, it is json.Marshal itself.
		if got, _ := c.encode(nil); !bytes.Equal(got, want) {
			t.Errorf("%s without encodings:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestStore_RecordKnownMemory: a record of the memory just read encodes
// nothing and writes only the history; a changed entry is written; the
// next open reads what was recorded.
func TestStore_RecordKnownMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := report("rev1", "file:/a", "file:/b", "file:/c")
	if _, err := s.Record(rep); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	prior, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	again := report("rev1", "file:/a", "file:/b", "file:/c")
	again.Next = prior.Clone()
	w, err := s.Record(again)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resources != 0 || w.Meta != 0 || w.History != 1 {
		t.Fatalf("a quiet record wrote %+v, want the history entry alone", w)
	}

	changed := report("rev1", "file:/a", "file:/b", "file:/d")
	r := changed.Next.Inventory["file:/a"]
	r.Spec = json.RawMessage(`{"content":"y"}`)
	changed.Next.Inventory["file:/a"] = r
	w, err = s.Record(changed)
	if err != nil {
		t.Fatal(err)
	}
	// file:/a's spec, file:/c's two entries gone, file:/d's two new.
	if w.Resources != 5 {
		t.Fatalf("wrote %d resource entries, want 5", w.Resources)
	}
	if w, err = s.Record(changed); err != nil || w.Resources != 0 {
		t.Fatalf("the same record again wrote %d resource entries (%v), want 0", w.Resources, err)
	}
	_ = s.Close()

	s2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Close() }()
	got, err := s2.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Inventory, changed.Next.Inventory) || !reflect.DeepEqual(got.Observed, changed.Next.Observed) {
		t.Fatalf("the file holds %+v, want %+v", got, changed.Next)
	}
}

// TestStore_RecordAfterOutsideChange: once the file changed outside the
// store, a record compares every entry with the file again, and puts back
// the one changed behind its back.
func TestStore_RecordAfterOutsideChange(t *testing.T) {
	s := openTemp(t, Options{})
	rep := report("rev1", "file:/a", "file:/b")
	if _, err := s.Record(rep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Memory(); err != nil {
		t.Fatal(err)
	}
	// A write the store did not make (through its own handle, as the file
	// is locked; its stamp then marked as not the store's).
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInventory).Put([]byte("file:/a"), []byte(`{"id":"file:/a","spec":{"content":"edited"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.stampMu.Lock()
	s.stamp = stamp{}
	s.stampMu.Unlock()
	w, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resources != 1 {
		t.Fatalf("wrote %d resource entries after the outside change, want 1 (the edited one put back)", w.Resources)
	}
	m, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Inventory["file:/a"].Spec); got != `{"content":"x"}` {
		t.Fatalf("file:/a's spec is %s after the record", got)
	}
}

// BenchmarkStore_OpenMemoryRecordQuiet is a no-op apply's use of the
// state: open, read the memory, record the same memory.
func BenchmarkStore_OpenMemoryRecordQuiet(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for i := range 1000 {
		ids = append(ids, "file:/etc/f"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
	}
	rep := report("rev1", ids...)
	if _, err := s.Record(rep); err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		prior, err := s.Memory()
		if err != nil {
			b.Fatal(err)
		}
		rep.Next = prior.Clone()
		if _, err := s.Record(rep); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}

// TestStore_RecordAfterRecheck: a change found by Recheck (which then
// takes the file as checked) is not what the memo says: the next record
// compares every entry and puts back the one changed.
func TestStore_RecordAfterRecheck(t *testing.T) {
	s := openTemp(t, Options{})
	rep := report("rev1", "file:/a", "file:/b")
	if _, err := s.Record(rep); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketObserved).Put([]byte("file:/b"), []byte(`{"hash":"edited"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.stampMu.Lock()
	s.stamp = stamp{}
	s.stampMu.Unlock()
	if changed, err := s.Recheck(); !changed || err != nil {
		t.Fatalf("Recheck: changed %v, %v", changed, err)
	}
	w, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resources != 1 {
		t.Fatalf("wrote %d resource entries after the recheck, want 1 (the edited one put back)", w.Resources)
	}
}
