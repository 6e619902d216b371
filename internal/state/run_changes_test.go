package state

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestRecordAs_changes: the history keeps the trigger, and per resource
// what changed and why: the commit, a drift correction, a refresh, a
// prune; unchanged and failed resources are not listed as changes.
func TestRecordAs_changes(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ch := []reconciler.Change{{Field: "content", Class: reconciler.Safe}}
	rep := &reconciler.Report{Node: "n1", Revision: "abc", Results: []reconciler.Result{
		{ID: "file:/a", Outcome: reconciler.Changed, Changes: ch},
		{ID: "file:/b", Outcome: reconciler.Changed, Changes: ch, Corrective: true},
		{ID: "service:s", Outcome: reconciler.Unchanged, Refreshed: true},
		{ID: "file:/old", Outcome: reconciler.Deleted, Pruned: true},
		{ID: "file:/same", Outcome: reconciler.Unchanged},
		{ID: "file:/bad", Outcome: reconciler.Failed, Error: "boom"},
	}}
	if _, err := st.RecordAs(rep, "run", ""); err != nil {
		t.Fatal(err)
	}
	runs, err := st.History(1)
	if err != nil {
		t.Fatal(err)
	}
	got := runs[0]
	want := []ResourceChange{
		{ID: "file:/a", Outcome: reconciler.Changed, Why: BecauseCommit, Fields: 1},
		{ID: "file:/b", Outcome: reconciler.Changed, Why: BecauseDrift, Fields: 1},
		{ID: "service:s", Outcome: reconciler.Unchanged, Why: BecauseRefresh},
		{ID: "file:/old", Outcome: reconciler.Deleted, Why: BecausePrune},
	}
	if got.Trigger != "run" || !slices.Equal(got.Changed, want) {
		t.Fatalf("entry = trigger %q, changed %+v; want run, %+v", got.Trigger, got.Changed, want)
	}
}
