package docker

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/network"

	"github.com/fsgit/fsgit/reconciler"
)

func TestNetwork_RecreateKeepsContainersAttached(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	st.converge(t, k, nil, st.ctr)
	ctrID, started, _ := inspect(t, cl, st.ctrName)
	internal := resource(t, string(st.net.ID), map[string]any{
		"name": st.netName, "ensure": "present", "driver": "bridge", "internal": true,
		"labels": map[string]string{testLabel: st.tag}, "dockerHost": DefaultHost,
	})
	p := planOnly(t, k.network, internal, nil)
	if got := changeFields(p); got != "internal(disruptive)" {
		t.Fatalf("plan = %q", got)
	}
	apply(t, k.network, newEnv(nil, nil), internal)
	n, err := cl.NetworkInspect(context.Background(), st.netName, network.InspectOptions{})
	if err != nil || !n.Internal {
		t.Fatalf("network not internal after apply: %v %+v", err, n)
	}
	if _, ok := n.Containers[ctrID]; !ok {
		t.Error("container not reconnected to the recreated network")
	}
	// The container was neither restarted nor recreated, and its alias is
	// back: its own plan is quiet.
	if id, s, _ := inspect(t, cl, st.ctrName); id != ctrID || s != started {
		t.Error("container restarted or recreated by a network recreate")
	}
	if p := planOnly(t, k.container, st.ctr, nil); p.HasChanges() {
		t.Errorf("container plan after the network recreate: %s", changeFields(p))
	}
	if p := planOnly(t, k.network, internal, nil); p.HasChanges() {
		t.Errorf("network second plan: %s", changeFields(p))
	}
}

func TestVolume_ChangeIsDestructive(t *testing.T) {
	cl := dockerClient(t)
	st := newStack(t, cl)
	k := newKinds(t)
	apply(t, k.volume, newEnv(nil, nil), st.vol)
	if p := planOnly(t, k.volume, st.vol, nil); p.HasChanges() {
		t.Fatalf("second plan: %s", changeFields(p))
	}
	relabelled := resource(t, string(st.vol.ID), map[string]any{
		"name": st.volName, "ensure": "present", "driver": "local",
		"labels": map[string]string{testLabel: st.tag, "tier": "hot"}, "dockerHost": DefaultHost,
	})
	p := planOnly(t, k.volume, relabelled, nil)
	if p.MaxClass() != reconciler.Destructive || changeFields(p) != "labels.tier(destructive)" {
		t.Fatalf("plan = %q, want labels.tier(destructive)", changeFields(p))
	}
	relabelled.AllowDestroy = true
	apply(t, k.volume, newEnv(nil, nil), relabelled)
	v, err := cl.VolumeInspect(context.Background(), st.volName)
	if err != nil || v.Labels["tier"] != "hot" {
		t.Fatalf("volume after allowed recreate: %v %+v", err, v.Labels)
	}
	gone := resource(t, string(st.vol.ID), map[string]any{
		"name": st.volName, "ensure": "absent", "driver": "local", "labels": map[string]string{}, "dockerHost": DefaultHost,
	})
	if p := planOnly(t, k.volume, gone, nil); p.MaxClass() != reconciler.Destructive {
		t.Errorf("ensure absent plan class %s, want destructive", p.MaxClass())
	}
}
