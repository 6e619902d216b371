package docker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// stack is a network, a volume and a stand-in vectorizer container that
// uses both and a bind-mounted host directory, as a profile would declare
// them (every field the schema fills in is present).
type stack struct {
	tag                       string
	net, vol, ctr             *reconciler.Resource
	netName, volName, ctrName string
	port                      int
	dataDir                   string
	spec                      map[string]any
}

func newStack(t *testing.T, cl *client.Client) *stack {
	t.Helper()
	requireImage(t, cl, standinImage)
	st := &stack{tag: uniqueName("t")}
	cleanupByLabel(t, cl, st.tag)
	st.netName, st.volName, st.ctrName = "fsgit-test-net-"+st.tag, "fsgit-test-vol-"+st.tag, "fsgit-test-ctr-"+st.tag
	st.port = freePort(t)
	st.dataDir = t.TempDir()
	labels := map[string]string{testLabel: st.tag}
	st.net = resource(t, "docker.network:"+st.netName, map[string]any{
		"name": st.netName, "ensure": "present", "driver": "bridge", "internal": false,
		"labels": labels, "dockerHost": DefaultHost,
	})
	st.vol = resource(t, "docker.volume:"+st.volName, map[string]any{
		"name": st.volName, "ensure": "present", "driver": "local", "labels": labels, "dockerHost": DefaultHost,
	})
	st.spec = map[string]any{
		"name": st.ctrName, "ensure": "running", "image": standinImage,
		"command":   []string{"-addr", ":8080", "-dims", "32"},
		"env":       map[string]string{"ENABLE_CUDA": "0", "MODE": "test"},
		"secretEnv": map[string]any{},
		"ports":     []map[string]any{{"host": st.port, "container": 8080, "proto": "tcp", "hostIP": "127.0.0.1"}},
		"mounts": []map[string]any{
			{"type": "bind", "source": st.dataDir, "target": "/data", "readOnly": true},
			{"type": "volume", "source": st.volName, "target": "/cache", "readOnly": false},
		},
		"networks": []map[string]any{{"name": st.netName, "aliases": []string{"t2v-transformers"}}},
		"restart":  "unless-stopped",
		"labels":   labels,
		"healthcheck": map[string]any{
			"test":     []string{"CMD", "/bin/t2v-standin", "-probe", "http://127.0.0.1:8080/.well-known/ready"},
			"interval": "1s", "timeout": "2s", "retries": 3, "startPeriod": "0s",
		},
		"dockerHost": DefaultHost,
	}
	st.ctr = resource(t, "docker.container:"+st.ctrName, st.spec)
	return st
}

// with returns the container resource with some spec fields replaced.
func (st *stack) with(t *testing.T, kv ...any) *reconciler.Resource {
	t.Helper()
	spec := map[string]any{}
	for k, v := range st.spec {
		spec[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		spec[kv[i].(string)] = kv[i+1]
	}
	return resource(t, string(st.ctr.ID), spec)
}

// converge runs the three kinds once, in dependency order.
func (st *stack) converge(t *testing.T, kinds *kinds, secrets reconciler.SecretResolver, ctr *reconciler.Resource) []*reconciler.Plan {
	t.Helper()
	env := newEnv(secrets, nil)
	return []*reconciler.Plan{
		apply(t, kinds.network, env, st.net),
		apply(t, kinds.volume, env, st.vol),
		apply(t, kinds.container, env, ctr),
	}
}

type kinds struct {
	image     *reconciler.Typed[ImageSpec]
	network   *reconciler.Typed[NetworkSpec]
	volume    *reconciler.Typed[VolumeSpec]
	container *reconciler.Typed[ContainerSpec]
}

func newKinds(t testing.TB) *kinds {
	k := &kinds{NewImage(), NewNetwork(), NewVolume(), NewContainer()}
	t.Cleanup(func() {
		k.image.Close()
		k.network.Close()
		k.volume.Close()
		k.container.Close()
	})
	return k
}

func getOK(t testing.TB, url string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("GET %s: status %d", url, res.StatusCode)
	}
}

func TestContainer_ApplyTwice(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)

	first := st.converge(t, k, nil, st.ctr)
	for i, want := range []reconciler.Action{reconciler.ActionCreate, reconciler.ActionCreate, reconciler.ActionCreate} {
		if first[i].Action != want {
			t.Fatalf("first run, plan %d: action %q, want %q (%s)", i, first[i].Action, want, changeFields(first[i]))
		}
	}
	id1, started1, running := inspect(t, cl, st.ctrName)
	if !running {
		t.Fatal("container not running after the first run")
	}
	getOK(t, fmt.Sprintf("http://127.0.0.1:%d/meta", st.port))

	// What the engine holds must be fsgit's labels and the alias.
	c, _ := cl.ContainerInspect(context.Background(), id1)
	if c.Config.Labels[LabelManaged] != "true" || c.Config.Labels[LabelID] != string(st.ctr.ID) || !strings.HasPrefix(c.Config.Labels[LabelSpecHash], "v1-") {
		t.Errorf("labels = %v", c.Config.Labels)
	}
	if ep := c.NetworkSettings.Networks[st.netName]; ep == nil || !aliasSubset([]string{"t2v-transformers"}, ep.Aliases) {
		t.Errorf("network endpoint = %+v", ep)
	}
	if c.State.Health == nil || c.State.Health.Status != container.Healthy {
		t.Errorf("health = %+v, want healthy (apply waits for it)", c.State.Health)
	}

	second := st.converge(t, k, nil, st.ctr)
	for i, p := range second {
		if p.HasChanges() {
			t.Errorf("second run, plan %d has changes: %s %+v", i, p.Action, p.Changes)
		}
	}
	id2, started2, _ := inspect(t, cl, st.ctrName)
	if id2 != id1 || started2 != started1 {
		t.Errorf("second run touched the container: id %s -> %s, started %s -> %s", id1[:12], id2[:12], started1, started2)
	}
}

func TestContainer_Drift(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	st.converge(t, k, nil, st.ctr)
	ctx := context.Background()

	tests := []struct {
		name      string
		byHand    func(t *testing.T, id string)
		wantField string
		wantClass reconciler.Class
		sameID    bool
	}{
		{"stopped by hand is started", func(t *testing.T, id string) {
			if err := cl.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "state", reconciler.Safe, true},
		{"paused by hand is unpaused", func(t *testing.T, id string) {
			if err := cl.ContainerPause(ctx, id); err != nil {
				t.Fatal(err)
			}
		}, "state", reconciler.Safe, true},
		{"restart policy changed by hand is restored in place", func(t *testing.T, id string) {
			if _, err := cl.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "no"}}); err != nil {
				t.Fatal(err)
			}
		}, "restart", reconciler.Safe, true},
		{"network disconnected by hand is reconnected", func(t *testing.T, id string) {
			if err := cl.NetworkDisconnect(ctx, st.netName, id, true); err != nil {
				t.Fatal(err)
			}
		}, "networks." + st.netName, reconciler.Safe, true},
		{"removed by hand is recreated", func(t *testing.T, id string) {
			if err := cl.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}, "container", reconciler.Safe, false},
		{"replaced by hand with another env is recreated", func(t *testing.T, id string) {
			c, err := cl.ContainerInspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			cfg := c.Config
			cfg.Env = append(cfg.Env, "DEBUG=1")
			if _, err := cl.ContainerCreate(ctx, cfg, c.HostConfig, nil, nil, st.ctrName); err != nil {
				t.Fatal(err)
			}
		}, "env.DEBUG", reconciler.Disruptive, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, _, _ := inspect(t, cl, st.ctrName)
			tc.byHand(t, id)
			p := planOnly(t, k.container, st.ctr, nil)
			found := false
			for _, ch := range p.Changes {
				if ch.Field == tc.wantField {
					found = true
					if ch.Class != tc.wantClass {
						t.Errorf("change %s is %s, want %s", ch.Field, ch.Class, tc.wantClass)
					}
				}
			}
			if !found {
				t.Fatalf("plan changes %q, want one on %s", changeFields(p), tc.wantField)
			}
			apply(t, k.container, newEnv(nil, nil), st.ctr)
			newID, _, running := inspect(t, cl, st.ctrName)
			if !running {
				t.Error("container not running after the correction")
			}
			if (newID == id) != tc.sameID {
				t.Errorf("container id %s -> %s, same id wanted: %v", id[:12], newID[:12], tc.sameID)
			}
			if p := planOnly(t, k.container, st.ctr, nil); p.HasChanges() {
				t.Errorf("after the correction the plan still has changes: %s", changeFields(p))
			}
			getOK(t, fmt.Sprintf("http://127.0.0.1:%d/.well-known/ready", st.port))
		})
	}
}

func TestContainer_SpecChangeRecreatesOnce(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	st.converge(t, k, nil, st.ctr)
	id1, _, _ := inspect(t, cl, st.ctrName)

	changed := st.with(t, "env", map[string]string{"ENABLE_CUDA": "0", "MODE": "prod"})
	p := planOnly(t, k.container, changed, nil)
	if got := changeFields(p); got != "env.MODE(disruptive)" {
		t.Fatalf("plan = %q, want env.MODE(disruptive)", got)
	}
	if p.Changes[0].Before != "test" || p.Changes[0].After != "prod" {
		t.Errorf("change = %+v", p.Changes[0])
	}
	st.converge(t, k, nil, changed)
	id2, started2, running := inspect(t, cl, st.ctrName)
	if id2 == id1 || !running {
		t.Fatalf("not recreated: id %s -> %s, running %v", id1[:12], id2[:12], running)
	}
	c, _ := cl.ContainerInspect(context.Background(), id2)
	if !containsString(c.Config.Env, "MODE=prod") {
		t.Errorf("env = %v", c.Config.Env)
	}
	// The replaced container is gone, not left renamed aside.
	if _, err := cl.ContainerInspect(context.Background(), id1); err == nil {
		t.Error("the old container still exists")
	}
	// Once: the next run leaves it alone.
	st.converge(t, k, nil, changed)
	id3, started3, _ := inspect(t, cl, st.ctrName)
	if id3 != id2 || started3 != started2 {
		t.Errorf("recreated again: %s -> %s", id2[:12], id3[:12])
	}
	// Restart policy: in place, no recreate.
	p = planOnly(t, k.container, st.with(t, "env", map[string]string{"ENABLE_CUDA": "0", "MODE": "prod"}, "restart", "on-failure:2"), nil)
	if got := changeFields(p); got != "restart(safe)" {
		t.Errorf("restart change plan = %q, want restart(safe)", got)
	}
}

func TestContainer_SecretEnv(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	secrets := &mapSecrets{m: map[string]string{"t2v/token": "s3cr3t-value-1"}}
	var logs logBuffer
	withSecret := st.with(t, "secretEnv", map[string]any{"API_TOKEN": map[string]string{"secret": "t2v/token"}})

	env := newEnv(secrets, &logs)
	var plans []*reconciler.Plan
	plans = append(plans, apply(t, k.network, env, st.net), apply(t, k.volume, env, st.vol), apply(t, k.container, env, withSecret))
	id1, _, _ := inspect(t, cl, st.ctrName)
	c, _ := cl.ContainerInspect(context.Background(), id1)
	if !containsString(c.Config.Env, "API_TOKEN=s3cr3t-value-1") {
		t.Fatalf("the container did not get the secret in its env")
	}
	assertNoSecret := func(where string, s string) {
		t.Helper()
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("secret value in %s: %s", where, s)
		}
	}
	for k, v := range c.Config.Labels {
		assertNoSecret("label "+k, v)
	}
	if p := planOnly(t, k.container, withSecret, secrets); p.HasChanges() {
		t.Fatalf("second plan has changes: %s", changeFields(p))
	}

	secrets.set("t2v/token", "s3cr3t-value-2")
	p := planOnly(t, k.container, withSecret, secrets)
	if got := changeFields(p); got != "secretEnv.API_TOKEN(disruptive)" {
		t.Fatalf("after rotation plan = %q", got)
	}
	plans = append(plans, p)
	apply(t, k.container, newEnv(secrets, &logs), withSecret)
	id2, _, _ := inspect(t, cl, st.ctrName)
	if id2 == id1 {
		t.Error("rotating the secret did not recreate the container")
	}
	for _, p := range plans {
		assertNoSecret("plan", fmt.Sprintf("%+v", p.Changes)+fmt.Sprint(p.Observed))
	}
	assertNoSecret("logs", logs.String())
}

func TestContainer_DaemonUnreachable(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	dead := "unix://" + t.TempDir() + "/no-docker.sock"
	broken := resource(t, "docker.container:unreachable", map[string]any{
		"name": "unreachable", "ensure": "running", "image": standinImage, "dockerHost": dead,
		"command": []string{}, "env": map[string]string{}, "secretEnv": map[string]any{},
		"ports": []any{}, "mounts": []any{}, "networks": []any{}, "restart": "unless-stopped", "labels": map[string]string{},
	})
	// One run over both resources: the unreachable daemon fails its
	// resource with a clear error; the volume on the real daemon converges.
	env := newEnv(nil, nil)
	start := time.Now()
	_, err := k.container.Plan(context.Background(), env, broken)
	if err == nil || !isDaemonUnreachable(err) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("plan error = %v, want ErrDaemonUnreachable naming %s", err, dead)
	}
	t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if p := apply(t, k.volume, env, st.vol); p.Action != reconciler.ActionCreate {
		t.Errorf("volume plan action %q, want create", p.Action)
	}
	if _, err := cl.VolumeInspect(context.Background(), st.volName); err != nil {
		t.Errorf("volume not created: %v", err)
	}
	// The same kind value still serves the reachable daemon.
	apply(t, k.network, env, st.net)
	if p := apply(t, k.container, env, st.ctr); p.Action != reconciler.ActionCreate {
		t.Errorf("container plan action %q, want create", p.Action)
	}
}

func TestContainer_EnsureStoppedAndAbsent(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	st.converge(t, k, nil, st.ctr)
	id1, _, _ := inspect(t, cl, st.ctrName)

	stopped := st.with(t, "ensure", "stopped")
	if p := apply(t, k.container, newEnv(nil, nil), stopped); changeFields(p) != "state(disruptive)" {
		t.Errorf("stop plan = %q", changeFields(p))
	}
	if id, _, running := inspect(t, cl, st.ctrName); running || id != id1 {
		t.Errorf("after ensure stopped: running %v, id %s", running, id[:12])
	}
	if p := planOnly(t, k.container, stopped, nil); p.HasChanges() {
		t.Errorf("stopped: second plan %q", changeFields(p))
	}
	absent := st.with(t, "ensure", "absent")
	if p := apply(t, k.container, newEnv(nil, nil), absent); p.Action != reconciler.ActionDelete {
		t.Errorf("absent plan = %s %q", p.Action, changeFields(p))
	}
	if _, err := cl.ContainerInspect(context.Background(), st.ctrName); err == nil {
		t.Error("container still exists after ensure absent")
	}
	if p := planOnly(t, k.container, absent, nil); p.HasChanges() {
		t.Errorf("absent: second plan %q", changeFields(p))
	}
}

func TestContainer_PlanDelete(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	st.converge(t, k, nil, st.ctr)
	for _, tc := range []struct {
		kind  reconciler.Pruner
		r     *reconciler.Resource
		class reconciler.Class
	}{
		{k.container, st.ctr, reconciler.Disruptive},
		{k.network, st.net, reconciler.Disruptive},
		{k.volume, st.vol, reconciler.Destructive},
	} {
		p, err := tc.kind.PlanDelete(context.Background(), newEnv(nil, nil), tc.r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Action != reconciler.ActionDelete || p.MaxClass() != tc.class {
			t.Fatalf("%s: plan %s %s, want delete %s", tc.r.ID, p.Action, p.MaxClass(), tc.class)
		}
		if err := p.Apply(context.Background()); err != nil {
			t.Fatalf("%s: %v", tc.r.ID, err)
		}
		p, err = tc.kind.PlanDelete(context.Background(), newEnv(nil, nil), tc.r)
		if err != nil || p.HasChanges() {
			t.Fatalf("%s: second PlanDelete: %v %+v", tc.r.ID, err, p)
		}
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
