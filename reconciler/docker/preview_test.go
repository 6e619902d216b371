package docker

import (
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

func TestContainer_Preview(t *testing.T) {
	spec := func(kv ...any) *reconciler.Resource {
		m := map[string]any{"name": "w", "ensure": "running", "image": "fsgit.local/weaviate:1.35.2", "command": []string{},
			"env": map[string]string{"A": "1"}, "secretEnv": map[string]any{}, "ports": []any{}, "mounts": []any{},
			"networks": []map[string]any{{"name": "n", "aliases": []string{}}}, "restart": "unless-stopped",
			"labels": map[string]string{}, "dockerHost": DefaultHost}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return resource(t, "docker.container:w", m)
	}
	tests := []struct {
		name     string
		old, new *reconciler.Resource
		class    reconciler.Class
		effect   string
	}{
		{"create", nil, spec(), reconciler.Safe, "create container"},
		{"remove", spec(), nil, reconciler.Disruptive, "remove container"},
		{"same", spec(), spec(), reconciler.Safe, ""},
		{"image bump", spec(), spec("image", "fsgit.local/weaviate:1.35.3"), reconciler.Disruptive, "recreate container"},
		{"env", spec(), spec("env", map[string]string{"A": "2"}), reconciler.Disruptive, "recreate container"},
		{"secret ref", spec(), spec("secretEnv", map[string]any{"K": map[string]string{"secret": "x"}}), reconciler.Disruptive, "recreate container"},
		{"restart policy", spec(), spec("restart", "always"), reconciler.Safe, "update container in place"},
		{"network alias", spec(), spec("networks", []map[string]any{{"name": "n", "aliases": []string{"a"}}}), reconciler.Safe, "update container in place"},
		{"stop", spec(), spec("ensure", "stopped"), reconciler.Disruptive, "stop container"},
		{"start", spec("ensure", "stopped"), spec(), reconciler.Safe, "start container"},
	}
	k := NewContainer()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, e := k.Preview(tc.old, tc.new)
			if c != tc.class || e != tc.effect {
				t.Errorf("Preview = %s %q, want %s %q", c, e, tc.class, tc.effect)
			}
		})
	}
}

func TestVolumeNetwork_Preview(t *testing.T) {
	vol := func(labels map[string]string) *reconciler.Resource {
		return resource(t, "docker.volume:v", map[string]any{"name": "v", "ensure": "present", "driver": "local", "labels": labels, "dockerHost": DefaultHost})
	}
	if c, _ := NewVolume().Preview(vol(nil), nil); c != reconciler.Destructive {
		t.Errorf("volume removal: %s", c)
	}
	if c, _ := NewVolume().Preview(vol(nil), vol(map[string]string{"a": "b"})); c != reconciler.Destructive {
		t.Errorf("volume relabel: %s", c)
	}
	net := func(internal bool) *reconciler.Resource {
		return resource(t, "docker.network:n", map[string]any{"name": "n", "ensure": "present", "driver": "bridge", "internal": internal, "labels": map[string]string{}, "dockerHost": DefaultHost})
	}
	if c, e := NewNetwork().Preview(net(false), net(true)); c != reconciler.Disruptive || e != "recreate network" {
		t.Errorf("network change: %s %q", c, e)
	}
}

func TestImage_Preview(t *testing.T) {
	img := func(pull string) *reconciler.Resource {
		return resource(t, "docker.image:fsgit.local/weaviate:1.29.0", map[string]any{"ref": "fsgit.local/weaviate:1.29.0", "pull": pull, "dockerHost": DefaultHost})
	}
	k := NewImage()
	if c, e := k.Preview(img("never"), nil); c != reconciler.Destructive || e != "kept for rollback, then removed: pull is never, it cannot be had again" {
		t.Errorf("remove, pull never: %s %q", c, e)
	}
	if c, e := k.Preview(img("missing"), nil); c != reconciler.Safe || e != "kept for rollback, then removed" {
		t.Errorf("remove, pull missing: %s %q", c, e)
	}
	if c, e := k.Preview(nil, img("never")); c != reconciler.Safe || e != "pull image" {
		t.Errorf("create: %s %q", c, e)
	}
}
