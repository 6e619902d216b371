package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kinds in this file are test doubles for the engine's own tests. The
// "tfile" kind works on real files under t.TempDir(); the others stand for
// services, and for kinds that fail, panic, hang or cannot run here.

// recorder records what the test kinds did.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// count returns how many events start with prefix.
func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// fileKind manages a file's content. A file may take its content from a
// secret; then its change shows only hashes.
type fileKind struct{ rec *recorder }

type fileSpec struct {
	Content string    `json:"content"`
	Secret  SecretRef `json:"secret"`
	// Absent asks for the file to be removed.
	Absent bool `json:"absent"`
	// Destructive classes every change as destructive.
	Destructive bool `json:"destructive"`
}

var _ Pruner = (*fileKind)(nil)

func (k *fileKind) Kind() string { return "tfile" }

func (k *fileKind) Validate(r *Resource) error {
	var s fileSpec
	return r.DecodeSpec(&s)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:8])
}

func (k *fileKind) Plan(ctx context.Context, env *Env, r *Resource) (*Plan, error) {
	var s fileSpec
	if err := r.DecodeSpec(&s); err != nil {
		return nil, err
	}
	path, err := env.Path(r.Name())
	if err != nil {
		return nil, err
	}
	want := []byte(s.Content)
	if !s.Secret.IsZero() {
		sec, err := env.Secrets.Resolve(ctx, s.Secret)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		want = sec.Reveal()
	}
	have, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("observe %s: %w", r.ID, err)
	}
	p := &Plan{Observed: map[string]string{"content": "absent"}}
	if exists {
		p.Observed["content"] = sum(have)
	}
	class := Safe
	if s.Destructive {
		class = Destructive
	}
	switch {
	case s.Absent && exists:
		p.Action = ActionDelete
		p.Changes = []Change{{Field: "ensure", Before: "present", After: "absent", Class: class}}
		p.Apply = func(context.Context) error {
			k.rec.add("delete %s", r.ID)
			return os.Remove(path)
		}
	case s.Absent:
	case !exists || string(have) != string(want):
		p.Action = ActionUpdate
		before := sum(have)
		if !exists {
			// Creating loses nothing, whatever the spec says.
			p.Action, before, class = ActionCreate, "", Safe
		}
		p.Changes = []Change{{Field: "content", Before: before, After: sum(want), Class: class}}
		p.Apply = func(context.Context) error {
			k.rec.add("write %s", r.ID)
			return os.WriteFile(path, want, 0o644)
		}
	}
	return p, nil
}

func (k *fileKind) PlanDelete(_ context.Context, env *Env, r *Resource) (*Plan, error) {
	var s fileSpec
	if err := r.DecodeSpec(&s); err != nil {
		return nil, err
	}
	path, err := env.Path(r.Name())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return &Plan{}, nil
	}
	class := Safe
	if s.Destructive {
		class = Destructive
	}
	return &Plan{
		Action:  ActionDelete,
		Changes: []Change{{Field: "ensure", Before: "present", After: "absent", Class: class}},
		Apply: func(context.Context) error {
			k.rec.add("delete %s", r.ID)
			return os.Remove(path)
		},
	}, nil
}

// serviceKind stands for a service: always converged, refreshable. The
// refresh of a service whose name starts with "broken" fails, and so does
// that of a service in fail.
type serviceKind struct {
	rec  *recorder
	fail sync.Map // ID -> true
}

var _ Refresher = (*serviceKind)(nil)

func (k *serviceKind) Kind() string               { return "tservice" }
func (k *serviceKind) Validate(r *Resource) error { return nil }
func (k *serviceKind) Plan(context.Context, *Env, *Resource) (*Plan, error) {
	return &Plan{Observed: map[string]string{"state": "running"}}, nil
}

func (k *serviceKind) Refresh(_ context.Context, _ *Env, r *Resource, changed bool) error {
	k.rec.add("refresh %s", r.ID)
	if _, failing := k.fail.Load(r.ID); failing || strings.HasPrefix(r.Name(), "broken") {
		return errors.New("restart failed")
	}
	return nil
}

// badKind misbehaves as its name says: "tbad:fail", "tbad:panic",
// "tbad:hang" (ignores its context), "tbad:applyfail", "tbad:skip",
// "tbad:noapply" (changes but no Apply).
type badKind struct{ rec *recorder }

func (k *badKind) Kind() string               { return "tbad" }
func (k *badKind) Validate(r *Resource) error { return nil }
func (k *badKind) Plan(ctx context.Context, env *Env, r *Resource) (*Plan, error) {
	k.rec.add("plan %s", r.ID)
	switch strings.SplitN(r.Name(), "-", 2)[0] {
	case "fail":
		return nil, errors.New("observe: connection refused")
	case "panic":
		var m map[string]int
		m["boom"]++ // a nil map write: a real bug, not a panic("...") call
	case "hang":
		time.Sleep(2 * time.Second)
	case "applyfail":
		return &Plan{Action: ActionUpdate, Changes: []Change{{Field: "x", Before: "1", After: "2"}},
			Apply: func(context.Context) error { return errors.New("write refused") }}, nil
	case "skip":
		if env.Root != "" {
			return nil, Skip("cannot honour --root")
		}
	case "noapply":
		return &Plan{Action: ActionUpdate, Changes: []Change{{Field: "x", Before: "1", After: "2"}}}, nil
	}
	return &Plan{}, nil
}

// panicky has a Validate that panics.
type panicky struct{}

func (panicky) Kind() string             { return "tpanicvalidate" }
func (panicky) Validate(*Resource) error { panic("validate bug") }
func (panicky) Plan(context.Context, *Env, *Resource) (*Plan, error) {
	return nil, errors.New("never planned")
}

// barrierKind proves parallelism: each Plan waits until size plans are in
// progress at once, so a run with less parallelism than size times out.
type barrierKind struct {
	mu      sync.Mutex
	size    int
	arrived int
	release chan struct{}
	cur     int
	max     int
}

func (k *barrierKind) Kind() string               { return "tbarrier" }
func (k *barrierKind) Validate(r *Resource) error { return nil }
func (k *barrierKind) Plan(ctx context.Context, _ *Env, _ *Resource) (*Plan, error) {
	k.mu.Lock()
	k.cur++
	if k.cur > k.max {
		k.max = k.cur
	}
	if k.release == nil {
		k.release = make(chan struct{})
	}
	k.arrived++
	rel := k.release
	if k.arrived == k.size {
		close(k.release)
		k.release, k.arrived = nil, 0
	}
	k.mu.Unlock()
	defer func() { k.mu.Lock(); k.cur--; k.mu.Unlock() }()
	select {
	case <-rel:
		return &Plan{}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting at the barrier: %w", ctx.Err())
	}
}

// mapSecrets resolves secrets from a map.
type mapSecrets map[string]string

func (m mapSecrets) Resolve(_ context.Context, ref SecretRef) (Secret, error) {
	v, ok := m[ref.Secret]
	if !ok {
		return Secret{}, fmt.Errorf("resolve %s: %w", ref, ErrSecretNotFound)
	}
	return NewSecret(ref.Secret, []byte(v)), nil
}

// harness builds an engine with the test kinds over a temporary root.
type harness struct {
	t    testing.TB
	rec  *recorder
	svc  *serviceKind
	reg  *Registry
	root string
}

func newHarness(t testing.TB, extra ...Kind) *harness {
	t.Helper()
	rec := &recorder{}
	svc := &serviceKind{rec: rec}
	kinds := append([]Kind{&fileKind{rec}, svc, &badKind{rec}}, extra...)
	return &harness{t: t, rec: rec, svc: svc, reg: NewRegistry(kinds...), root: t.TempDir()}
}

func (h *harness) engine(cfg Config) *Engine {
	cfg.Registry = h.reg
	return NewEngine(cfg)
}

// res builds a resource; spec is marshalled to JSON.
func res(id string, spec any, edges ...func(*Resource)) Resource {
	b, err := json.Marshal(spec)
	if err != nil {
		panic(err)
	}
	if spec == nil {
		b = []byte("{}")
	}
	r := Resource{ID: ID(id), Spec: b}
	for _, e := range edges {
		e(&r)
	}
	return r
}

func requires(ids ...ID) func(*Resource) {
	return func(r *Resource) { r.Require = append(r.Require, ids...) }
}

func notifies(ids ...ID) func(*Resource) {
	return func(r *Resource) { r.Notify = append(r.Notify, ids...) }
}

func catalog(rs ...Resource) *Catalog {
	c := &Catalog{Site: "test", Node: "n1", Role: "r", Revision: "sha256:0123456789abcdef0123", Resources: rs}
	c.Sort()
	return c
}

// outcomes maps each result's ID to its outcome.
func outcomes(rep *Report) map[ID]Outcome {
	m := map[ID]Outcome{}
	for _, r := range rep.Results {
		m[r.ID] = r.Outcome
	}
	return m
}

func result(t testing.TB, rep *Report, id ID) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s in %v", id, outcomes(rep))
	return Result{}
}

func mustRun(t testing.TB, e *Engine, cat *Catalog, opts RunOptions) *Report {
	t.Helper()
	rep, err := e.Apply(context.Background(), cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func sortedKeys(m map[ID]Resource) []string {
	var out []string
	for id := range m {
		out = append(out, string(id))
	}
	sort.Strings(out)
	return out
}
