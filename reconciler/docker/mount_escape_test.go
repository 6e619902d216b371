package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestNormalize_BindSourceEscape checks that a bind mount's source under a
// root may not lead out of it through a symlink, in its parents or in the
// source itself (the daemon follows both), and that a plain one maps.
func TestNormalize_BindSourceEscape(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "srv")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "data", "link")); err != nil {
		t.Fatal(err)
	}
	env := &reconciler.Env{Root: root}
	for _, src := range []string{"/srv", "/srv/weaviate", "/data/link"} {
		s := &ContainerSpec{Mounts: []MountSpec{{Type: "bind", Source: src, Target: "/var/lib/weaviate"}}}
		d, err := normalize(env, s)
		if err == nil || !strings.Contains(err.Error(), "outside root") {
			t.Errorf("bind source %s: mounts %+v, err %v; want a refusal", src, d, err)
		}
	}
	s := &ContainerSpec{Mounts: []MountSpec{{Type: "bind", Source: "/data/plain", Target: "/x"}}}
	d, err := normalize(env, s)
	if err != nil {
		t.Fatalf("plain bind source: %v", err)
	}
	if want := filepath.Join(root, "data/plain"); d.Mounts[0].Source != want {
		t.Errorf("source = %q, want %q", d.Mounts[0].Source, want)
	}
}
