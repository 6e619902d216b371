package reconciler

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// verifyKind records, for each of its plans, whether the engine said it
// was a verify. A resource whose spec is "change" has changes until it is
// applied.
type verifyKind struct {
	mu      sync.Mutex
	plans   []string
	applied map[ID]bool
}

func (k *verifyKind) Kind() string               { return "tverify" }
func (k *verifyKind) Validate(r *Resource) error { return nil }
func (k *verifyKind) Plan(_ context.Context, env *Env, r *Resource) (*Plan, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	step := "plan"
	if env.Verify {
		step = "verify"
	}
	k.plans = append(k.plans, step+" "+string(r.ID))
	if !strings.Contains(string(r.Spec), "change") || k.applied[r.ID] {
		return &Plan{}, nil
	}
	return &Plan{Action: ActionUpdate, Changes: []Change{{Field: "x"}}, Apply: func(context.Context) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.applied[r.ID] = true
		return nil
	}}, nil
}

// TestEngine_VerifySaysSo: the plan that follows an apply, and only it,
// has Env.Verify set; a resource without changes is planned once, not as
// a verify.
func TestEngine_VerifySaysSo(t *testing.T) {
	k := &verifyKind{applied: map[ID]bool{}}
	h := newHarness(t, k)
	cat := catalog(res("tverify:a", "change"), res("tverify:b", "same", requires("tverify:a")))
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	if got := outcomes(rep); got["tverify:a"] != Changed || got["tverify:b"] != Unchanged {
		t.Fatalf("outcomes: %v", got)
	}
	if got, want := strings.Join(k.plans, ", "), "plan tverify:a, verify tverify:a, plan tverify:b"; got != want {
		t.Fatalf("plans: %s, want %s", got, want)
	}
}
