package docker

import (
	"context"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestEngine_ApplyTwiceAndUnreachableDaemon runs the kinds through the
// real engine: a network, a volume and a container converge from nothing
// while a container on an unreachable daemon fails with a clear error; the
// second run changes nothing (checked from the engine's container ID and
// start time, not only from the report).
func TestEngine_ApplyTwiceAndUnreachableDaemon(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	dead := "unix://" + t.TempDir() + "/no-docker.sock"
	broken := resource(t, "docker.container:on-a-dead-daemon", map[string]any{
		"name": "on-a-dead-daemon", "ensure": "running", "image": standinImage, "dockerHost": dead,
		"command": []string{}, "env": map[string]string{}, "secretEnv": map[string]any{},
		"ports": []any{}, "mounts": []any{}, "networks": []any{}, "restart": "unless-stopped", "labels": map[string]string{},
	})
	ctr := *st.ctr
	ctr.Require = []reconciler.ID{st.net.ID, st.vol.ID}
	cat := &reconciler.Catalog{Node: "test", Resources: []reconciler.Resource{*st.net, *st.vol, ctr, *broken}}
	cat.Sort()
	e := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(k.image, k.network, k.volume, k.container)})

	rep, err := e.Apply(context.Background(), cat, reconciler.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[reconciler.ID]reconciler.Result{}
	for _, r := range rep.Results {
		outcomes[r.ID] = r
	}
	for _, id := range []reconciler.ID{st.net.ID, st.vol.ID, st.ctr.ID} {
		if o := outcomes[id].Outcome; o != reconciler.Created {
			t.Errorf("first run: %s %s (%s), want created", id, o, outcomes[id].Error)
		}
	}
	if r := outcomes[broken.ID]; r.Outcome != reconciler.Failed || !strings.Contains(r.Error, "docker daemon unreachable at "+dead) {
		t.Errorf("dead daemon: %s %q, want failed naming the daemon", r.Outcome, r.Error)
	}
	id1, started1, _ := inspect(t, cl, st.ctrName)

	rep, err = e.Apply(context.Background(), cat, reconciler.RunOptions{Prior: rep.Next})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.ID == broken.ID {
			continue
		}
		if r.Outcome != reconciler.Unchanged {
			t.Errorf("second run: %s %s %+v", r.ID, r.Outcome, r.Changes)
		}
	}
	if id2, started2, _ := inspect(t, cl, st.ctrName); id2 != id1 || started2 != started1 {
		t.Error("second run recreated or restarted the container")
	}
}
