package file

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// testEnv returns an env for one run under root ("" = the host's /).
func testEnv(t testing.TB, root string, secrets reconciler.SecretResolver) *reconciler.Env {
	t.Helper()
	return &reconciler.Env{
		Root:    root,
		Secrets: secrets,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Cache:   reconciler.NewCache(),
	}
}

// resource builds a resource of the given kind and name with spec as JSON.
func resource(t testing.TB, kind, name string, spec any) *reconciler.Resource {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &reconciler.Resource{ID: reconciler.NewID(kind, name), Spec: raw}
}

// converge plans r in a fresh run and applies the plan when it has changes
// that may run (destructive ones only when r allows destroy), as the engine
// does. It returns the plan.
func converge(t testing.TB, root string, k reconciler.Kind, r *reconciler.Resource, secrets reconciler.SecretResolver) *reconciler.Plan {
	t.Helper()
	if err := k.Validate(r); err != nil {
		t.Fatalf("validate: %v", err)
	}
	env := testEnv(t, root, secrets)
	p, err := k.Plan(context.Background(), env, r)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if p.HasChanges() && (p.MaxClass() < reconciler.Destructive || r.AllowDestroy) {
		if p.Apply == nil {
			t.Fatal("plan has changes and no Apply")
		}
		if err := p.Apply(context.Background()); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return p
}

// mustPlan plans r in a fresh run.
func mustPlan(t testing.TB, root string, k reconciler.Kind, r *reconciler.Resource, secrets reconciler.SecretResolver) *reconciler.Plan {
	t.Helper()
	p, err := k.Plan(context.Background(), testEnv(t, root, secrets), r)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// fileState is what a write to a path would change: the inode, the times,
// the size.
type fileState struct {
	Ino, Size           int64
	Mtime, Ctime, Nlink int64
}

// stateOf lstats path, failing the test when it is missing.
func stateOf(t testing.TB, path string) fileState {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return fileState{
		Ino: int64(st.Ino), Size: st.Size, Nlink: int64(st.Nlink),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
}

// fields lists a plan's changes as "field:class" strings.
func fields(p *reconciler.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, fmt.Sprintf("%s:%s", c.Field, c.Class))
	}
	return out
}

// mapSecrets resolves secrets from a map: the node's secret provider is
// another package, and these tests are about what the file kind does with a
// value.
type mapSecrets map[string]string

func (m mapSecrets) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	v, ok := m[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("resolve %s: %w", ref.Secret, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
