package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/kindtest"
	"github.com/fsgit/fsgit/reconciler"
)

// resource returns an exec resource with spec, its timeout defaulted as
// the schema does.
func resource(t testing.TB, spec map[string]any) *reconciler.Resource {
	t.Helper()
	return kindtest.Resource(t, KindName, t.Name(), spec, map[string]any{"timeout": "5m"})
}

func newEnv() *reconciler.Env { return &reconciler.Env{Cache: reconciler.NewCache()} }

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestKind_Validate(t *testing.T) {
	cases := []struct {
		name string
		spec map[string]any
		ok   bool
	}{
		{"creates", map[string]any{"command": sh("true"), "creates": "/x"}, true},
		{"unless", map[string]any{"command": sh("true"), "unless": []string{"/bin/true"}}, true},
		{"onlyIf", map[string]any{"command": sh("true"), "onlyIf": []string{"/bin/true"}}, true},
		{"refreshOnly", map[string]any{"command": sh("true"), "refreshOnly": true}, true},
		{"timeout", map[string]any{"command": sh("true"), "creates": "/x", "timeout": "30s"}, true},
		// A missing guard, an empty or relative command or guard, an
		// unclean path, a timeout's form and env's names are the schema's
		// to refuse (internal/desired TestVet_KindConstraints).
		{"zero timeout", map[string]any{"command": sh("true"), "creates": "/x", "timeout": "0s"}, false},
		{"empty command", map[string]any{"command": []string{}, "creates": "/x"}, false},
		{"unknown field", map[string]any{"command": sh("true"), "creates": "/x", "path": "/usr/bin"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := New().Validate(resource(t, c.spec))
			if (err == nil) != c.ok {
				t.Fatalf("Validate: err = %v, want ok = %v", err, c.ok)
			}
		})
	}
}

// TestKind_ApplyTwice runs real commands through every guard: the first
// run runs the command once, the second plans nothing and runs nothing
// (the command appends to a counter file, which must not grow).
func TestKind_ApplyTwice(t *testing.T) {
	cases := []struct {
		name  string
		guard func(dir string) map[string]any
	}{
		{"creates", func(dir string) map[string]any {
			return map[string]any{"creates": filepath.Join(dir, "done")}
		}},
		{"unless", func(dir string) map[string]any {
			return map[string]any{"unless": []string{"/bin/sh", "-c", "test -e " + filepath.Join(dir, "done")}}
		}},
		{"onlyIf", func(dir string) map[string]any {
			return map[string]any{"onlyIf": []string{"/bin/sh", "-c", "! test -e " + filepath.Join(dir, "done")}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			count := filepath.Join(dir, "count")
			spec := c.guard(dir)
			spec["command"] = sh(`echo ran >> count && touch done && echo "$GREETING" > env`)
			spec["cwd"] = dir
			spec["env"] = map[string]string{"GREETING": "hello world"}
			r := resource(t, spec)
			k := New()
			ctx := context.Background()

			p, err := k.Plan(ctx, newEnv(), r)
			if err != nil {
				t.Fatal(err)
			}
			if !p.HasChanges() || p.Apply == nil || p.MaxClass() != reconciler.Safe {
				t.Fatalf("first plan = %+v, want one safe change", p)
			}
			if _, err := os.Stat(count); !os.IsNotExist(err) {
				t.Fatalf("Plan ran the command: %v", err)
			}
			if err := p.Apply(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "env")); string(got) != "hello world\n" {
				t.Fatalf("command saw GREETING=%q, want hello world", got)
			}

			p, err = k.Plan(ctx, newEnv(), r)
			if err != nil {
				t.Fatal(err)
			}
			if p.HasChanges() || p.Apply != nil {
				t.Fatalf("second plan has changes: %+v", p.Changes)
			}
			// Refresh after an unchanged run checks the guards again: still
			// nothing to do, and it says so with a skip (no refresh is
			// reported or sent further).
			if err := k.Refresh(ctx, newEnv(), r, false); !reconciler.IsSkip(err) || !strings.Contains(err.Error(), "guard: ") {
				t.Fatalf("Refresh = %v, want a skip naming the guard", err)
			}
			if err := k.Refresh(ctx, newEnv(), r, true); !reconciler.IsSkip(err) {
				t.Fatalf("Refresh after the command ran = %v, want a skip", err)
			}
			if got, _ := os.ReadFile(count); string(got) != "ran\n" {
				t.Fatalf("command ran %q times, want once", got)
			}
		})
	}
}

func TestKind_RefreshOnly(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	r := resource(t, map[string]any{
		"command":     sh("echo ran >> " + count),
		"refreshOnly": true,
	})
	k := New()
	ctx := context.Background()
	for range 2 {
		p, err := k.Plan(ctx, newEnv(), r)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasChanges() {
			t.Fatalf("refreshOnly exec planned a change: %+v", p.Changes)
		}
	}
	if _, err := os.Stat(count); !os.IsNotExist(err) {
		t.Fatalf("refreshOnly command ran without a refresh")
	}
	for range 2 {
		if err := k.Refresh(ctx, newEnv(), r, false); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(count); string(got) != "ran\nran\n" {
		t.Fatalf("after two refreshes the command ran %q, want twice", got)
	}

	// refreshOnly with a guard: the guard still applies on refresh.
	guarded := resource(t, map[string]any{
		"command":     sh("echo ran >> " + count),
		"refreshOnly": true,
		"onlyIf":      []string{"/bin/false"},
	})
	if err := k.Refresh(ctx, newEnv(), guarded, false); !reconciler.IsSkip(err) {
		t.Fatalf("guarded Refresh = %v, want a skip", err)
	}
	if got, _ := os.ReadFile(count); string(got) != "ran\nran\n" {
		t.Fatalf("guarded refresh ran the command: %q", got)
	}
}

func TestKind_Apply_failureCarriesOutput(t *testing.T) {
	dir := t.TempDir()
	r := resource(t, map[string]any{
		"command": sh(`echo "first complaint"; head -c 10000 /dev/zero | tr '\0' x; echo; echo "last words" >&2; exit 3`),
		"creates": filepath.Join(dir, "never"),
	})
	p, err := New().Plan(context.Background(), newEnv(), r)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil {
		t.Fatal("failing command: Apply returned nil")
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", "first complaint", "last words", "bytes cut"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if len(msg) > 3000 {
		t.Errorf("error is %d bytes long, want it clipped near %d", len(msg), maxOutput)
	}
}

func TestKind_Apply_createsNotCreated(t *testing.T) {
	r := resource(t, map[string]any{
		"command": []string{"/bin/true"},
		"creates": filepath.Join(t.TempDir(), "never"),
	})
	p, err := New().Plan(context.Background(), newEnv(), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("Apply = %v, want an error saying creates was not created", err)
	}
}

func TestKind_Apply_timeoutKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	r := resource(t, map[string]any{
		// The background sleep holds the output pipe: the process group
		// must die with the shell, or the run would hang.
		"command": sh("sleep 60 & sleep 60"),
		"creates": filepath.Join(dir, "never"),
		"timeout": "200ms",
	})
	p, err := New().Plan(context.Background(), newEnv(), r)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Apply(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
			t.Fatalf("Apply = %v, want a timeout error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Apply did not return after its timeout")
	}
}

func TestKind_Plan_guardErrors(t *testing.T) {
	cases := []struct {
		name string
		spec map[string]any
	}{
		{"guard not found", map[string]any{"command": sh("true"), "unless": []string{"/nonexistent/fsgt-guard"}}},
		{"guard killed", map[string]any{"command": sh("true"), "onlyIf": sh("kill -9 $$")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New().Plan(context.Background(), newEnv(), resource(t, c.spec)); err == nil {
				t.Fatal("Plan returned nil, want an error (a broken guard is not a no)")
			}
		})
	}
}

func TestKind_Plan_underRootIsSkipped(t *testing.T) {
	env := newEnv()
	env.Root = t.TempDir()
	r := resource(t, map[string]any{"command": sh("true"), "creates": "/x"})
	if _, err := New().Plan(context.Background(), env, r); !reconciler.IsSkip(err) {
		t.Fatalf("Plan under a root: err = %v, want a skip", err)
	}
	if err := New().Refresh(context.Background(), env, r, false); !reconciler.IsSkip(err) {
		t.Fatalf("Refresh under a root: err = %v, want a skip", err)
	}
}

func TestKind_User(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running as another user needs root")
	}
	// t.TempDir's parent is private to root: nobody needs a directory of
	// its own to write in.
	dir, err := os.MkdirTemp("", "fsgt-exec-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "who")
	r := resource(t, map[string]any{
		"command": sh("id -un > " + out),
		"creates": out,
		"user":    "nobody",
	})
	p, err := New().Plan(context.Background(), newEnv(), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "nobody\n" {
		t.Fatalf("command ran as %q, want nobody", got)
	}
}

func TestKind_Preview(t *testing.T) {
	r := resource(t, map[string]any{"command": sh("true"), "creates": "/x"})
	for name, c := range map[string]struct{ old, new *reconciler.Resource }{
		"new": {nil, r}, "changed": {r, r}, "left the catalog": {r, nil},
	} {
		if got, _ := New().Preview(c.old, c.new); got != reconciler.Safe {
			t.Errorf("%s: Preview = %s, want safe", name, got)
		}
	}
}
