package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "lib", "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// report builds a report whose memory holds the given resources, each
// observed with one field.
func report(rev string, ids ...string) *reconciler.Report {
	rep := &reconciler.Report{Site: "example", Node: "db1", Role: "online", Revision: rev, Started: time.Unix(1700000000, 0)}
	rep.Next = reconciler.NewMemory()
	for _, id := range ids {
		r := reconciler.Resource{ID: reconciler.ID(id), Spec: json.RawMessage(`{"content":"x"}`)}
		rep.Next.Inventory[r.ID] = r
		rep.Next.Observed[r.ID] = reconciler.NewObservedState(map[string]string{"content": "sha256:" + id})
		rep.Results = append(rep.Results, reconciler.Result{ID: r.ID, Outcome: reconciler.Unchanged})
	}
	return rep
}

func TestStore_RecordAndMemory(t *testing.T) {
	s := openTemp(t, Options{})
	rep := report("rev1", "file:/a", "file:/b")
	rep.Results[0].Outcome = reconciler.Created
	rep.Next.Refresh["service:mariadb"] = []reconciler.ID{"file:/a"}
	w, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resources != 5 || w.History != 1 {
		t.Fatalf("first record wrote %+v", w)
	}
	m, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Observed, rep.Next.Observed) {
		t.Fatalf("observed round trip:\n%v\n%v", m.Observed, rep.Next.Observed)
	}
	if !reflect.DeepEqual(m.Refresh, rep.Next.Refresh) {
		t.Fatalf("refresh round trip:\n%v\n%v", m.Refresh, rep.Next.Refresh)
	}
	if len(m.Inventory) != 2 || !reconciler.SameDesired(ptr(m.Inventory["file:/a"]), ptr(rep.Next.Inventory["file:/a"])) {
		t.Fatalf("inventory round trip: %v", m.Inventory)
	}
	meta, err := s.Meta()
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{SchemaVersion: SchemaVersion, Site: "example", Node: "db1", Role: "online", DesiredRevision: "rev1", AppliedRevision: "rev1"}
	if meta != want {
		t.Fatalf("meta %+v, want %+v", meta, want)
	}

	// The same memory again: a quiet run writes the history entry alone.
	quiet := report("rev1", "file:/a", "file:/b")
	quiet.Next.Refresh["service:mariadb"] = []reconciler.ID{"file:/a"}
	w, err = s.Record(quiet)
	if err != nil {
		t.Fatal(err)
	}
	if w != (Writes{History: 1}) {
		t.Fatalf("quiet run wrote %+v, want the history entry alone", w)
	}

	// A resource leaves, another's observed state moves.
	next := report("rev2", "file:/a")
	next.Next.Observed["file:/a"] = reconciler.NewObservedState(map[string]string{"content": "sha256:other"})
	next.Results = append(next.Results, reconciler.Result{ID: "file:/c", Outcome: reconciler.Failed, Error: "boom"})
	w, err = s.Record(next)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resources != 4 {
		t.Fatalf("wrote %d resource keys, want 4 (three deletes, one put)", w.Resources)
	}
	meta, _ = s.Meta()
	if meta.DesiredRevision != "rev2" || meta.AppliedRevision != "rev1" {
		t.Fatalf("a run with a failure: revisions %+v", meta)
	}
	runs, err := s.History(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].Revision != "rev2" || runs[0].ExitCode != 4 || len(runs[0].Problems) != 1 || runs[0].Problems[0].Message != "boom" {
		t.Fatalf("history: %+v", runs)
	}
}

func TestStore_NoopRecordsHistoryOnly(t *testing.T) {
	s := openTemp(t, Options{})
	rep := report("rev1", "file:/a")
	rep.Noop, rep.Next = true, nil
	w, err := s.Record(rep)
	if err != nil {
		t.Fatal(err)
	}
	if w != (Writes{Meta: 3, History: 1}) { // site, node and role, then the history entry
		t.Fatalf("noop record wrote %+v", w)
	}
	if meta, _ := s.Meta(); meta.DesiredRevision != "" || meta.AppliedRevision != "" {
		t.Fatalf("noop set revisions: %+v", meta)
	}
}

func TestStore_HistoryIsBounded(t *testing.T) {
	s := openTemp(t, Options{History: 3})
	for i := 0; i < 7; i++ {
		if _, err := s.Record(report("rev", "file:/a")); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.History(0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range runs {
		seqs = append(seqs, r.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{7, 6, 5}) {
		t.Fatalf("history keeps %v, want the last three newest first", seqs)
	}
}

func TestOpen_Locked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another fsgit") {
		t.Fatalf("second open: %v, want ErrLocked naming the likely cause", err)
	}
	_, err = Open(path, Options{Timeout: 50 * time.Millisecond, ReadOnly: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open while a writer holds it: %v", err)
	}
}

func TestOpen_ReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	if _, err := Open(path, Options{ReadOnly: true}); !IsNotExist(err) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Record(report("rev1", "file:/a")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	before, _ := os.ReadFile(path)
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Memory()
	if err != nil || len(m.Inventory) != 1 {
		t.Fatalf("read-only memory: %v %v", m, err)
	}
	if _, err := r.Record(report("rev2")); err == nil {
		t.Fatal("recorded through a read-only store")
	}
	r.Close()
	if after, _ := os.ReadFile(path); string(before) != string(after) {
		t.Fatal("a read-only open changed the file")
	}
}

func TestOpen_NewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, []byte("99"))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99, and this fsgit speaks 1") {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestStore_NoSecretStored runs a memory holding a secret reference through
// the file and checks that only the reference is there.
func TestStore_NoSecretStored(t *testing.T) {
	s := openTemp(t, Options{})
	rep := report("rev1")
	r := reconciler.Resource{ID: "file:/etc/db.cnf", Spec: json.RawMessage(`{"content":"password={{secret:PW}}","secrets":{"PW":{"secret":"mariadb/fs_user"}}}`)}
	rep.Next.Inventory[r.ID] = r
	sec := reconciler.NewSecret("mariadb/fs_user", []byte("hunter2"))
	rep.Results = append(rep.Results, reconciler.Result{ID: r.ID, Outcome: reconciler.Failed, Error: "apply: " + sec.String()})
	if _, err := s.Record(rep); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "hunter2") {
		t.Fatal("a secret value reached the state file")
	}
	if !strings.Contains(string(raw), "mariadb/fs_user") {
		t.Fatal("the secret reference is missing: the test proves nothing")
	}
}

func ptr[T any](v T) *T { return &v }

func BenchmarkStore_RecordQuiet(b *testing.B) {
	s := openTemp(b, Options{})
	var ids []string
	for i := 0; i < 1000; i++ {
		ids = append(ids, "file:/etc/f"+strconv.Itoa(i))
	}
	rep := report("rev1", ids...)
	if _, err := s.Record(rep); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Record(rep); err != nil {
			b.Fatal(err)
		}
	}
}
