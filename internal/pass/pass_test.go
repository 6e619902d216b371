package pass

import (
	"context"
	"errors"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestPass_DeferredRecord: the steps run in order and stop at the first
// that fails; the record is written for every run that happened, and the
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
		wantStep string
	}{
		{name: "all steps", wantStep: ""},
		{name: "load fails", load: boom, wantStep: "load"},
		{name: "state fails", state: boom, wantStep: "state"},
		{name: "record fails", record: boom, wantStep: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var order []string
			var finished *Result
			p := Pass{
				Engine: reconciler.NewEngine(reconciler.Config{}),
				Load: func(context.Context) (*reconciler.Catalog, error) {
					order = append(order, "load")
					return cat, tc.load
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
			if res.Step != tc.wantStep || (tc.wantStep != "") != errors.Is(res.Err, boom) {
				t.Fatalf("step %q err %v, want step %q", res.Step, res.Err, tc.wantStep)
			}
			want := map[string][]string{
				"":      {"load", "secrets", "state", "record:r1", "finish"},
				"load":  {"load", "finish"},
				"state": {"load", "secrets", "state", "finish"},
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
