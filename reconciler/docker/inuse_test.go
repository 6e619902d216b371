package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// importImage makes a tiny image of its own (one file with unique content,
// as scripts/build-images.sh does with docker import) and removes it when
// the test ends.
func importImage(tb testing.TB, cl *client.Client, ref string) string {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(ref + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "id", Mode: 0o644, Size: int64(len(body))}); err != nil {
		tb.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	ctx := context.Background()
	rc, err := cl.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	img, err := cl.ImageInspect(ctx, ref)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.ImageRemove(context.Background(), img.ID, image.RemoveOptions{Force: true}) })
	return img.ID
}

// TestImage_PlanDelete_KeepsWhatAContainerUsesAndWhatCannotBePulled is
// issue 21 on the real daemon: an image that left the catalog is never
// planned for deletion while a container (here a stopped one) uses it;
// once unused, deleting an image that cannot be pulled again (pull
// "never", or a registry that does not answer: there is none here) is
// destructive.
func TestImage_PlanDelete_KeepsWhatAContainerUsesAndWhatCannotBePulled(t *testing.T) {
	cl := dockerClient(t)
	label := uniqueName("inuse")
	cleanupByLabel(t, cl, label)
	ref := "fsgit.local/" + label + ":1"
	importImage(t, cl, ref)
	k := NewImage()
	t.Cleanup(func() { k.Close() })
	res := func(pull string) *reconciler.Resource {
		return resource(t, "docker.image:"+ref, map[string]any{"ref": ref, "pull": pull, "dockerHost": DefaultHost})
	}

	for _, pull := range []string{PullNever, PullMissing} {
		p, err := k.PlanDelete(context.Background(), newEnv(nil, nil), res(pull))
		if err != nil {
			t.Fatalf("pull %s: %v", pull, err)
		}
		t.Logf("pull %s: %+v", pull, p.Changes)
		if p.MaxClass() != reconciler.Destructive || p.Apply == nil {
			t.Fatalf("pull %s: deleting an image that cannot be pulled again is %s, want destructive", pull, p.MaxClass())
		}
	}

	// A stopped container on the image: nothing is planned.
	name := uniqueName("inuse")
	if _, err := cl.ContainerCreate(context.Background(), &container.Config{Image: ref, Cmd: []string{"/id"}, Labels: map[string]string{testLabel: label}}, nil, nil, nil, name); err != nil {
		t.Fatal(err)
	}
	_, err := k.PlanDelete(context.Background(), newEnv(nil, nil), res(PullNever))
	if !reconciler.IsKeep(err) || !strings.Contains(err.Error(), "kept: image "+ref+" is used by container "+name+" (running or stopped)") {
		t.Fatalf("with a stopped container on it: err = %v, want a skip that says it is kept", err)
	}
	if _, err := cl.ImageInspect(context.Background(), ref); err != nil {
		t.Fatalf("the image is gone: %v", err)
	}
}

// TestNetworkVolume_PlanDelete_KeepWhatAContainerUses: a network a
// container is attached to, and a volume a container mounts (the
// container stopped), are kept.
func TestNetworkVolume_PlanDelete_KeepWhatAContainerUses(t *testing.T) {
	cl := dockerClient(t)
	requireImage(t, cl, standinImage)
	label := uniqueName("inuse")
	cleanupByLabel(t, cl, label)
	ctx := context.Background()
	labels := map[string]string{testLabel: label, LabelManaged: "true"}
	if _, err := cl.NetworkCreate(ctx, label, network.CreateOptions{Labels: labels}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.VolumeCreate(ctx, volume.CreateOptions{Name: label, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	nk, vk := NewNetwork(), NewVolume()
	t.Cleanup(func() { nk.Close(); vk.Close() })
	netRes := resource(t, "docker.network:"+label, map[string]any{"name": label, "ensure": "present", "driver": "bridge", "internal": false, "labels": map[string]string{}, "dockerHost": DefaultHost})
	volRes := resource(t, "docker.volume:"+label, map[string]any{"name": label, "ensure": "present", "driver": "local", "labels": map[string]string{}, "dockerHost": DefaultHost})
	for _, c := range []struct {
		k reconciler.Pruner
		r *reconciler.Resource
	}{{nk, netRes}, {vk, volRes}} {
		if p, err := c.k.PlanDelete(ctx, newEnv(nil, nil), c.r); err != nil || p.Apply == nil {
			t.Fatalf("%s unused: plan %+v, err %v; want a deletion", c.r.ID, p, err)
		}
	}

	name := uniqueName("inuse")
	_, err := cl.ContainerCreate(ctx, &container.Config{Image: standinImage, Labels: map[string]string{testLabel: label}},
		&container.HostConfig{NetworkMode: container.NetworkMode(label), Mounts: nil, Binds: []string{label + ":/data"}}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		k    reconciler.Pruner
		r    *reconciler.Resource
		what string
	}{{nk, netRes, "network " + label}, {vk, volRes, "volume " + label}} {
		_, err := c.k.PlanDelete(ctx, newEnv(nil, nil), c.r)
		if !reconciler.IsKeep(err) || !strings.Contains(err.Error(), "kept: "+c.what+" is used by container "+name) {
			t.Fatalf("%s with a stopped container: err = %v, want a skip that says it is kept", c.r.ID, err)
		}
	}
}
