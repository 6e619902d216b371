package docker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

func TestImage_Plan(t *testing.T) {
	cl := dockerClient(t)
	requireImage(t, cl, standinImage)
	img, err := cl.ImageInspect(context.Background(), standinImage)
	if err != nil {
		t.Fatal(err)
	}
	k := NewImage()
	t.Cleanup(func() { k.Close() })
	other := "sha256:" + strings.Repeat("0", 64)
	spec := func(ref, digest, pull string) *reconciler.Resource {
		m := map[string]any{"ref": ref, "pull": pull, "dockerHost": DefaultHost}
		if digest != "" {
			m["digest"] = digest
		}
		return resource(t, "docker.image:"+ref, m)
	}
	tests := []struct {
		name    string
		r       *reconciler.Resource
		wantErr string // "" = converged
		create  bool
	}{
		{"present, pull never", spec(standinImage, "", "never"), "", false},
		{"present, pull missing", spec(standinImage, "", "missing"), "", false},
		{"present, pinned by its ID", spec(standinImage, img.ID, "never"), "", false},
		{"present, pinned to another ID, pull never", spec(standinImage, other, "never"), "not the pinned", false},
		{"missing, pull never", spec("fsgit.local/absent:1", "", "never"), `not present on the daemon and pull is "never"`, false},
		{"missing, pull missing", spec("fsgit.local/absent:1", "", "missing"), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := k.Validate(tc.r); err != nil {
				t.Fatal(err)
			}
			p, err := k.Plan(context.Background(), newEnv(nil, nil), tc.r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.HasChanges() != tc.create {
				t.Fatalf("plan changes %q, want create=%v", changeFields(p), tc.create)
			}
		})
	}
}

// A missing image that cannot be pulled (no registry is reachable here) is
// a clear error, not a hang.
func TestImage_PullUnreachable(t *testing.T) {
	dockerClient(t)
	k := NewImage()
	t.Cleanup(func() { k.Close() })
	r := resource(t, "docker.image:fsgit.local/absent:1", map[string]any{"ref": "fsgit.local/absent:1", "pull": "missing", "dockerHost": DefaultHost})
	p, err := k.Plan(context.Background(), newEnv(nil, nil), r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	err = p.Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "pulling image fsgit.local/absent:1") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestValidate(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "c", "ensure": "running", "image": "x:1", "command": []string{}, "env": map[string]string{},
			"secretEnv": map[string]any{}, "ports": []any{}, "mounts": []any{}, "networks": []any{},
			"restart": "unless-stopped", "labels": map[string]string{}, "dockerHost": DefaultHost}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		kind    reconciler.Kind
		spec    any
		wantErr string
	}{
		// A bad restart, port, duration, pull or digest is the schema's to
		// refuse (internal/desired TestVet_KindConstraints).
		{"container ok", NewContainer(), base(), ""},
		{"unknown field", NewContainer(), base("volumes", []string{}), "unknown field"},
		{"on-failure:N", NewContainer(), base("restart", "on-failure:5"), ""},
		{"env and secretEnv clash", NewContainer(), base("env", map[string]string{"A": "1"}, "secretEnv", map[string]any{"A": map[string]string{"secret": "s"}}), "both env and secretEnv"},
		{"relative bind", NewContainer(), base("mounts", []map[string]any{{"type": "bind", "source": "data", "target": "/d", "readOnly": false}}), "not absolute"},
		{"fsgit label", NewContainer(), base("labels", map[string]string{"fsgit.id": "x"}), "fsgit's own"},
		{"volume ensure", NewVolume(), map[string]any{"name": "v", "ensure": "gone", "driver": "local", "labels": map[string]string{}, "dockerHost": ""}, "ensure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.kind.Validate(resource(t, tc.kind.Kind()+":x", tc.spec))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
