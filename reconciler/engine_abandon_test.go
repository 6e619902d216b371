package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stuckKind's plans ignore their context: each blocks until release is
// closed, and counts itself in returned when it returns at last.
type stuckKind struct {
	release  chan struct{}
	started  atomic.Int32
	returned atomic.Int32
}

func (k *stuckKind) Kind() string             { return "tstuck" }
func (k *stuckKind) Validate(*Resource) error { return nil }
func (k *stuckKind) Plan(context.Context, *Env, *Resource) (*Plan, error) {
	k.started.Add(1)
	<-k.release
	k.returned.Add(1)
	return &Plan{Action: ActionUpdate, Changes: []Change{{Field: "x", Before: "1", After: "2"}},
		Apply: func(context.Context) error { return errors.New("a late plan's apply ran") }}, nil
}

// TestEngine_StuckPlansAbandonTheirWorkers: a plan step runs on its
// worker (planOnWorker); plans that ignore their context past the limit
// leave their workers behind, and the run goes on with new ones: more
// stuck plans than workers, in noop and not, and the other resources all
// run. The stuck plans' late results are dropped.
func TestEngine_StuckPlansAbandonTheirWorkers(t *testing.T) {
	for _, noop := range []bool{false, true} {
		t.Run(fmt.Sprintf("noop=%v", noop), func(t *testing.T) {
			k := &stuckKind{release: make(chan struct{})}
			h := newHarness(t, k)
			var rs []Resource
			for i := range 5 {
				rs = append(rs, res(fmt.Sprintf("tstuck:s%d", i), nil))
				rs = append(rs, res(fmt.Sprintf("tfile:/f%d", i), spec{"content": "x"}))
			}
			rs = append(rs, res("tfile:/after", spec{"content": "y"}, requires("tstuck:s0")))
			e := h.engine(Config{Parallel: 2, Timeout: 50 * time.Millisecond})
			done := make(chan *Report, 1)
			go func() {
				rep, err := e.Apply(context.Background(), catalog(rs...), RunOptions{Root: h.root, Noop: noop})
				if err != nil {
					t.Error(err)
				}
				done <- rep
			}()
			var rep *Report
			select {
			case rep = <-done:
			case <-time.After(time.Minute):
				close(k.release)
				t.Fatal("the run waited for plans stuck past their limit")
			}
			if n := k.returned.Load(); n != 0 {
				t.Fatalf("%d stuck plans returned before the run ended; want none", n)
			}
			if n := k.started.Load(); n != 5 {
				t.Errorf("%d stuck plans started, want 5", n)
			}
			for i := range 5 {
				r := result(t, rep, ID(fmt.Sprintf("tstuck:s%d", i)))
				if r.Outcome != Failed || !strings.Contains(r.Error, "plan timed out after 50ms") || !strings.Contains(r.Error, ErrTimeout.Error()) {
					t.Errorf("%s: %s %q, want failed, timed out", r.ID, r.Outcome, r.Error)
				}
				want := Created
				if noop {
					want = Drifted
				}
				if f := result(t, rep, ID(fmt.Sprintf("tfile:/f%d", i))); f.Outcome != want {
					t.Errorf("%s: %s %q, want %s", f.ID, f.Outcome, f.Error, want)
				}
			}
			if a := result(t, rep, "tfile:/after"); a.Outcome != Skipped || !strings.Contains(a.Reason, "dependency tstuck:s0 failed") {
				t.Errorf("tfile:/after: %s %q, want skipped for its failed dependency", a.Outcome, a.Reason)
			}
			// Released, the abandoned workers drop what their plans
			// return: no apply of a late plan runs, and the report stays
			// as it was.
			before := fmt.Sprint(rep.Results)
			close(k.release)
			for k.returned.Load() < 5 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
			if after := fmt.Sprint(rep.Results); after != before {
				t.Errorf("the report changed after the run:\n%s\n%s", before, after)
			}
		})
	}
}
