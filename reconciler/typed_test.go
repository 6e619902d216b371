package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// valueSpec is the spec of the typed test kind "tvalue": a value kept in
// memory, present or absent.
type valueSpec struct {
	Value  string `json:"value"`
	Ensure Ensure `json:"ensure"`
}

// valueKind is a [KindOf] test double with every optional ability: it
// keeps values in a map, so that a run changes something, verifies it,
// refreshes what it notifies and prunes what left the catalog.
type valueKind struct {
	mu       sync.Mutex
	values   map[ID]string
	refresh  int
	timeouts int
}

func (*valueKind) Kind() string { return "tvalue" }

func (k *valueKind) Check(r *Resource, s *valueSpec) error {
	if strings.Contains(s.Value, "\n") {
		return errNewline
	}
	return nil
}

var errNewline = &SkipError{Reason: "a value holds no newline"}

func (k *valueKind) Plan(_ context.Context, _ *Env, r *Resource, s *valueSpec) (*Plan, error) {
	k.mu.Lock()
	cur, ok := k.values[r.ID]
	k.mu.Unlock()
	p := &Plan{Observed: map[string]string{"value": cur}}
	switch {
	case s.Ensure.Absent() && ok:
		p.Action = ActionDelete
	case s.Ensure.Absent():
		return p, nil
	case !ok || cur != s.Value:
		p.Changes = []Change{{Field: "value", Before: cur, After: s.Value}}
	default:
		return p, nil
	}
	p.Apply = func(context.Context) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		if s.Ensure.Absent() {
			delete(k.values, r.ID)
		} else {
			k.values[r.ID] = s.Value
		}
		return nil
	}
	return p, nil
}

func (k *valueKind) PlanDelete(ctx context.Context, env *Env, r *Resource, s *valueSpec) (*Plan, error) {
	gone := *s
	gone.Ensure = EnsureAbsent
	return k.Plan(ctx, env, r, &gone)
}

func (k *valueKind) Refresh(context.Context, *Env, *Resource, *valueSpec, bool) error {
	k.mu.Lock()
	k.refresh++
	k.mu.Unlock()
	return nil
}

func (k *valueKind) Timeout(*valueSpec) time.Duration {
	k.mu.Lock()
	k.timeouts++
	k.mu.Unlock()
	return time.Minute
}

func (k *valueKind) RememberSpec(r *Resource, s *valueSpec) (json.RawMessage, error) {
	return json.Marshal(valueSpec{Value: "len:" + string(rune('0'+len(s.Value))), Ensure: s.Ensure})
}

// TestTyped_DecodesOncePerResource checks that the engine decodes each
// resource of a typed kind once, when the catalog is prepared, however
// many runs, plans, verifications and refreshes follow: the count is the
// number of resources after Prepare and stays so through two runs that
// apply, verify and refresh. A resource pruned from the inventory is
// decoded once more, for its removal.
func TestTyped_DecodesOncePerResource(t *testing.T) {
	vk := &valueKind{values: map[ID]string{}}
	k := NewTyped[valueSpec](vk)
	e := NewEngine(Config{Registry: NewRegistry(k)})
	cat := catalog(
		res("tvalue:a", valueSpec{Value: "1"}, notifies("tvalue:b")),
		res("tvalue:b", valueSpec{Value: "2"}),
		res("tvalue:c", valueSpec{Value: "3"}, requires("tvalue:a")),
	)
	p, err := e.Prepare(cat)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Decodes(); got != 3 {
		t.Fatalf("%d decodes after preparing 3 resources, want 3", got)
	}
	first, err := e.Run(context.Background(), p, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range first.Results {
		if r.Outcome != Changed {
			t.Errorf("%s: %s (%s), want changed", r.ID, r.Outcome, r.Error)
		}
	}
	if vk.refresh != 1 {
		t.Errorf("%d refreshes, want 1 (b, notified by a)", vk.refresh)
	}
	second, err := e.Run(context.Background(), p, RunOptions{Prior: first.Next})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range second.Results {
		if r.Outcome != Unchanged {
			t.Errorf("second run: %s: %s, want unchanged", r.ID, r.Outcome)
		}
	}
	if got := k.Decodes(); got != 3 {
		t.Errorf("%d decodes after two runs of 3 resources, want 3 (one each, at prepare)", got)
	}
	if vk.timeouts == 0 {
		t.Error("the kind's Timeout was never asked")
	}

	smaller := catalog(res("tvalue:a", valueSpec{Value: "1"}))
	rep, err := e.Apply(context.Background(), smaller, RunOptions{Prior: second.Next})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got["tvalue:b"] != Deleted || got["tvalue:c"] != Deleted {
		t.Errorf("pruning b and c: %v", got)
	}
	if got := k.Decodes(); got != 3+1+2 {
		t.Errorf("%d decodes, want 6: 3, then 1 for the smaller catalog and 1 for each of the 2 pruned", got)
	}
	if len(vk.values) != 1 {
		t.Errorf("values left: %v, want only a", vk.values)
	}
}

// TestTyped_Abilities checks that a typed kind has exactly the abilities
// of its implementation, and that a spec the kind's Check refuses makes
// the resource invalid.
func TestTyped_Abilities(t *testing.T) {
	full := NewTyped[valueSpec](&valueKind{values: map[ID]string{}})
	bare := NewTyped[valueSpec](planOnly{})
	for _, c := range []struct {
		name      string
		full, bar bool
	}{
		{"pruner", has1(AsPruner(full)), has1(AsPruner(bare))},
		{"refresher", has1(AsRefresher(full)), has1(AsRefresher(bare))},
		{"timeouter", has1(AsTimeouter(full)), has1(AsTimeouter(bare))},
		{"rememberer", has1(AsRememberer(full)), has1(AsRememberer(bare))},
		{"retainer", false, has1(AsRetainer(bare))},
		{"previewer", false, has1(AsPreviewer(bare))},
	} {
		if c.bar {
			t.Errorf("a plan-only typed kind is a %s", c.name)
		}
		if c.name != "retainer" && c.name != "previewer" && !c.full {
			t.Errorf("the full typed kind is not a %s", c.name)
		}
	}
	e := NewEngine(Config{Registry: NewRegistry(full)})
	p, err := e.Prepare(catalog(res("tvalue:x", valueSpec{Value: "a\nb"}), res("tvalue:y", map[string]any{"ensure": "gone"})))
	if err != nil {
		t.Fatal(err)
	}
	inv := p.Invalid()
	if err := inv["tvalue:x"]; err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("x: %v, want the check's refusal", err)
	}
	if err := inv["tvalue:y"]; err == nil || !strings.Contains(err.Error(), `ensure "gone"`) {
		t.Errorf("y: %v, want ensure refused", err)
	}
}

func has1[T any](_ T, ok bool) bool { return ok }

// planOnly is a typed kind with nothing but Plan.
type planOnly struct{}

func (planOnly) Kind() string { return "tvalue" }

func (planOnly) Plan(context.Context, *Env, *Resource, *valueSpec) (*Plan, error) {
	return &Plan{}, nil
}

// closingKind is a plan-only typed kind that keeps a client: Close counts
// its calls and returns err.
type closingKind struct {
	planOnly
	name   string
	closed int
	err    error
}

func (k *closingKind) Kind() string { return k.name }

func (k *closingKind) Close() error { k.closed++; return k.err }

// TestRegistry_CloseClosesTheKindsThatKeepClients: Close reaches every
// kind with clients (a typed one through its implementation), once, and
// joins their errors naming the kind; a kind without clients is left be.
func TestRegistry_CloseClosesTheKindsThatKeepClients(t *testing.T) {
	ok := &closingKind{name: "tok"}
	failing := &closingKind{name: "tfail", err: errors.New("pool busy")}
	reg := NewRegistry(NewTyped[valueSpec](ok), NewTyped[valueSpec](failing), NewTyped[valueSpec](planOnly{}))
	err := reg.Close()
	if ok.closed != 1 || failing.closed != 1 {
		t.Errorf("closed %d and %d times, want once each", ok.closed, failing.closed)
	}
	if err == nil || !strings.Contains(err.Error(), "closing kind tfail: pool busy") || strings.Contains(err.Error(), "tok") {
		t.Errorf("Close = %v, want tfail's error alone", err)
	}
}
