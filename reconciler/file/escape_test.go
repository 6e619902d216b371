package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestRoot_SymlinkedParentEscape plants <root>/etc -> <outside> and checks
// that no kind writes, creates or removes anything through it: the plan
// fails with a clear error and <outside> is left as it was.
func TestRoot_SymlinkedParentEscape(t *testing.T) {
	content := "pwned\n"
	cases := []struct {
		name string
		kind reconciler.Kind
		r    func(t *testing.T) *reconciler.Resource
	}{
		{"file", NewFile(), func(t *testing.T) *reconciler.Resource {
			return resource(t, "file", "/etc/app/app.conf", map[string]any{"content": content, "mode": "0600"})
		}},
		{"file-existing", NewFile(), func(t *testing.T) *reconciler.Resource {
			return resource(t, "file", "/etc/keep.conf", map[string]any{"content": content, "mode": "0600"})
		}},
		{"directory", NewDirectory(), func(t *testing.T) *reconciler.Resource {
			return resource(t, "directory", "/etc/app", map[string]any{"mode": "0777"})
		}},
		{"symlink", NewSymlink(), func(t *testing.T) *reconciler.Resource {
			return resource(t, "symlink", "/etc/app", map[string]any{"target": "/nowhere"})
		}},
		{"absent", NewFile(), func(t *testing.T) *reconciler.Resource {
			r := resource(t, "file", "/etc/keep.conf", map[string]any{"ensure": "absent"})
			r.AllowDestroy = true
			return r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(outside, "keep.conf"), "host\n", 0o644)
			before := stateOf(t, filepath.Join(outside, "keep.conf"))
			if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
				t.Fatal(err)
			}
			r := tc.r(t)
			if err := tc.kind.Validate(r); err != nil {
				t.Fatalf("validate: %v", err)
			}
			p, err := tc.kind.Plan(context.Background(), testEnv(t, root, nil), r)
			if err == nil {
				if p.Apply != nil {
					_ = p.Apply(context.Background())
				}
				t.Fatalf("plan through a symlinked parent succeeded: %+v", p)
			}
			if !strings.Contains(err.Error(), "outside root") {
				t.Errorf("error = %v, want it to say the path leaves the root", err)
			}
			assertUntouched(t, outside, before)
		})
	}
}

// TestRoot_SymlinkPlantedBetweenPlanAndApply plans with nothing in the way,
// then plants <root>/etc -> <outside> before Apply: Apply must refuse.
func TestRoot_SymlinkPlantedBetweenPlanAndApply(t *testing.T) {
	cases := []struct {
		name string
		kind reconciler.Kind
		r    *reconciler.Resource
	}{
		{"file", NewFile(), resource(t, "file", "/etc/app/app.conf", map[string]any{"content": "x\n"})},
		{"directory", NewDirectory(), resource(t, "directory", "/etc/app", map[string]any{})},
		{"symlink", NewSymlink(), resource(t, "symlink", "/etc/app", map[string]any{"target": "/nowhere"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(outside, "keep.conf"), "host\n", 0o644)
			before := stateOf(t, filepath.Join(outside, "keep.conf"))
			if err := tc.kind.Validate(tc.r); err != nil {
				t.Fatal(err)
			}
			p, err := tc.kind.Plan(context.Background(), testEnv(t, root, nil), tc.r)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if p.Apply == nil {
				t.Fatal("plan has no Apply")
			}
			if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
				t.Fatal(err)
			}
			err = p.Apply(context.Background())
			if err == nil || !strings.Contains(err.Error(), "outside root") {
				t.Errorf("apply after a symlink was planted: err = %v, want a refusal", err)
			}
			assertUntouched(t, outside, before)
		})
	}
}

// TestRoot_SymlinkInsideRootAllowed checks that a parent symlink that stays
// inside the root (a relative one) is still followed.
func TestRoot_SymlinkInsideRootAllowed(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	r := resource(t, "file", "/etc/app.conf", map[string]any{"content": "ok\n"})
	converge(t, root, NewFile(), r, nil)
	if got := readFile(t, filepath.Join(root, "real", "app.conf")); got != "ok\n" {
		t.Errorf("content = %q", got)
	}
}

// assertUntouched fails when dir holds anything but keep.conf or keep.conf
// changed.
func assertUntouched(t *testing.T, dir string, before fileState) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "keep.conf" {
			t.Errorf("written outside the root: %s", filepath.Join(dir, e.Name()))
		}
	}
	if len(ents) == 0 {
		t.Errorf("keep.conf outside the root was removed")
		return
	}
	if after := stateOf(t, filepath.Join(dir, "keep.conf")); after != before {
		t.Errorf("keep.conf outside the root changed: %+v -> %+v", before, after)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() == 0o777 {
		t.Errorf("mode of the directory outside the root changed to %v", fi.Mode())
	}
}

// TestRoot_DirSwappedDuringRun: a run keeps the directories its reads went
// through open. When <root>/etc is moved aside and replaced by a symlink
// out of the root during the run, later plans in the same run do not read
// through the symlink, and applies (which resolve the whole path) refuse.
func TestRoot_DirSwappedDuringRun(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outside, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/app/a.conf"), "a\n", 0o644)
	writeFile(t, filepath.Join(root, "etc/app/b.conf"), "old\n", 0o644)
	writeFile(t, filepath.Join(outside, "app/keep.conf"), "host\n", 0o644)
	before := stateOf(t, filepath.Join(outside, "app/keep.conf"))

	k := NewFile()
	env := testEnv(t, root, nil) // one run: one cache, one FS
	plan := func(name, content string) *reconciler.Plan {
		t.Helper()
		r := resource(t, "file", name, map[string]any{"content": content})
		if err := k.Validate(r); err != nil {
			t.Fatal(err)
		}
		p, err := k.Plan(context.Background(), env, r)
		if err != nil {
			t.Fatalf("plan %s: %v", name, err)
		}
		return p
	}
	if p := plan("/etc/app/a.conf", "a\n"); p.HasChanges() {
		t.Fatalf("a.conf: %v", p.Changes)
	}
	pb := plan("/etc/app/b.conf", "new\n")

	if err := os.Rename(filepath.Join(root, "etc"), filepath.Join(root, "etc.aside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	// keep.conf is "host\n" outside: a plan that read it would want a
	// rewrite. The plan sees it absent (in the kept directory) or refuses
	// (/etc, looked up for the missing parents, now leads out).
	plans := map[string]*reconciler.Plan{"b.conf": pb}
	r := resource(t, "file", "/etc/app/keep.conf", map[string]any{"content": "x\n"})
	if err := k.Validate(r); err != nil {
		t.Fatal(err)
	}
	pk, err := k.Plan(context.Background(), env, r)
	switch {
	case err != nil && !strings.Contains(err.Error(), "outside root"):
		t.Errorf("plan keep.conf after the swap: %v", err)
	case err == nil && pk.Observed["ensure"] != "absent":
		t.Errorf("keep.conf observed through the symlink: %v", pk.Observed)
	case err == nil:
		plans["keep.conf"] = pk
	}
	for name, p := range plans {
		err := p.Apply(context.Background())
		if err == nil || !strings.Contains(err.Error(), "outside root") {
			t.Errorf("apply %s after the swap: err = %v, want a refusal", name, err)
		}
	}
	if got := stateOf(t, filepath.Join(outside, "app/keep.conf")); got != before {
		t.Errorf("keep.conf outside the root changed: %+v -> %+v", before, got)
	}
	ents, rerr := os.ReadDir(filepath.Join(outside, "app"))
	if rerr != nil || len(ents) != 1 {
		t.Errorf("outside app/ holds %v (%v), want keep.conf only", ents, rerr)
	}
}
