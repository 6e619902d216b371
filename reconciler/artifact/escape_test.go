package artifact

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArtifact_SymlinkedParentEscape plants <root>/opt -> <outside>: the
// artifact must not be written there, neither when the link is there at
// plan time nor when it appears between plan and apply.
func TestArtifact_SymlinkedParentEscape(t *testing.T) {
	o := newOrigin(t)
	for _, when := range []string{"before-plan", "before-apply"} {
		t.Run(when, func(t *testing.T) {
			f := newFixture(t)
			outside := t.TempDir()
			plant := func() {
				if err := os.Symlink(outside, filepath.Join(f.root, "opt")); err != nil {
					t.Fatal(err)
				}
			}
			r := f.resource(o.URL+"/v1.jar", v1, nil)
			if err := f.kind.Validate(r); err != nil {
				t.Fatal(err)
			}
			if when == "before-plan" {
				plant()
			}
			p, err := f.kind.Plan(context.Background(), f.env(), r)
			if err == nil {
				if when == "before-apply" {
					plant()
				}
				err = p.Apply(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), "outside root") {
				t.Errorf("err = %v, want a refusal to leave the root", err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("written outside the root: %v", ents)
			}
		})
	}
}

// TestArtifact_SymlinkedCacheDir plants the default cache directory under
// the root as a symlink to <outside>: downloads must not land there.
func TestArtifact_SymlinkedCacheDir(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	f.kind = New(Options{MaxRetries: 2, RetryDelay: 10 * time.Millisecond, StallTimeout: 300 * time.Millisecond})
	outside := t.TempDir()
	cache := filepath.Join(f.root, DefaultCacheDir)
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, cache); err != nil {
		t.Fatal(err)
	}
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	if err := f.kind.Validate(r); err != nil {
		t.Fatal(err)
	}
	p, err := f.kind.Plan(context.Background(), f.env(), r)
	if err == nil {
		err = p.Apply(context.Background())
	}
	if err == nil || !strings.Contains(err.Error(), "outside root") {
		t.Errorf("err = %v, want a refusal to leave the root", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the root: %v", ents)
	}
}
