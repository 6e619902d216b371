package pass

import (
	"context"
	"errors"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestPass_DeferredRecord: the steps run in order and stop at the first
// that fails (the state, which opens beside the preparation, only for a
// catalog that prepares); the record is written for every run that happened, and the
// status (Finish) is written on every way out, with the step that ended
// the pass.
func TestPass_DeferredRecord(t *testing.T) {
	cat := &reconciler.Catalog{Site: "s", Node: "n1", Revision: "r1"}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		load     error
		state    error
		record   error
		cycle    bool // a catalog that does not prepare
		wantStep string
	}{
		{name: "all steps", wantStep: ""},
		{name: "load fails", load: boom, wantStep: "load"},
		{name: "prepare fails", cycle: true, wantStep: "prepare"},
		{name: "state fails", state: boom, wantStep: "state"},
		{name: "record fails", record: boom, wantStep: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var order []string
			var finished *Result
			c := cat
			if tc.cycle {
				c = &reconciler.Catalog{Site: "s", Node: "n1", Resources: []reconciler.Resource{
					{ID: "file:/a", Require: []reconciler.ID{"file:/b"}, Spec: []byte("{}")},
					{ID: "file:/b", Require: []reconciler.ID{"file:/a"}, Spec: []byte("{}")},
				}}
			}
			p := Pass{
				Engine: reconciler.NewEngine(reconciler.Config{}),
				Load: func(context.Context) (*reconciler.Catalog, error) {
					order = append(order, "load")
					return c, tc.load
				},
				Secrets: func() (reconciler.SecretResolver, error) { order = append(order, "secrets"); return nil, nil },
				State:   func() (*reconciler.Memory, error) { order = append(order, "state"); return nil, tc.state },
				Record: func(rep *reconciler.Report) error {
					order = append(order, "record:"+rep.Revision)
					return tc.record
				},
				Finish: func(r *Result) { order = append(order, "finish"); finished = r },
			}
			res := p.Run(t.Context())
			if res != finished {
				t.Fatal("Finish did not see the pass's result")
			}
			var ce *reconciler.CatalogError
			if res.Step != tc.wantStep || (tc.wantStep != "" && !tc.cycle) != errors.Is(res.Err, boom) || tc.cycle != errors.As(res.Err, &ce) {
				t.Fatalf("step %q err %v, want step %q", res.Step, res.Err, tc.wantStep)
			}
			want := map[string][]string{
				"":     {"load", "secrets", "state", "record:r1", "finish"},
				"load": {"load", "finish"},
				// The state is not opened for a catalog that cannot run.
				"prepare": {"load", "secrets", "finish"},
				"state":   {"load", "secrets", "state", "finish"},
			}[tc.wantStep]
			if len(order) != len(want) {
				t.Fatalf("steps %v, want %v", order, want)
			}
			for i := range want {
				if order[i] != want[i] {
					t.Fatalf("steps %v, want %v", order, want)
				}
			}
			if (res.Report != nil) != (tc.wantStep == "") || !errors.Is(res.RecordErr, tc.record) {
				t.Fatalf("report %v, record error %v", res.Report, res.RecordErr)
			}
		})
	}
}
