package weaviate

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/docker"
)

// TestWeaviateNode_BumpAndRollBack is issue 21 on the real Docker Engine,
// through the real engine and a real state file: Weaviate on one locally
// built tag (pull "never", no registry) with 20 objects, bumped to
// another tag and rolled back. The previous image is kept while one of the
// node's last 3 applied catalogs uses it, so the rollback converges with
// the data intact; a noop never plans deleting the image a container
// uses; after 3 newer catalogs the old image is deleted, which, since it
// cannot be pulled again, takes allowDestroy.
//
// The two tags are test-only names for the images scripts/build-images.sh
// builds: removing a test tag leaves the shared images alone.
func TestWeaviateNode_BumpAndRollBack(t *testing.T) {
	n, cl := newNode(t)
	ctx := context.Background()
	refA, refB := "fsgit.local/wvtest-"+n.tag+":a", "fsgit.local/wvtest-"+n.tag+":b"
	for ref, from := range map[string]string{refA: weaviateImage, refB: weaviateBumped} {
		if err := cl.ImageTag(ctx, from, ref); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.ImageRemove(context.Background(), ref, image.RemoveOptions{}) })
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(docker.NewImage(), n.kinds.network, n.kinds.container, n.kinds.class)})

	// catalog is the node's catalog at a revision, Weaviate on ref; extra
	// images are declared too (allowDestroy as given).
	catalog := func(rev, ref string, extra map[string]bool) *reconciler.Catalog {
		img := func(ref string, allow bool) reconciler.Resource {
			r := *res(t, "docker.image:"+ref, map[string]any{"ref": ref, "pull": "never", "dockerHost": docker.DefaultHost})
			r.AllowDestroy = allow
			return r
		}
		wv := *n.with(t, n.wvSpec, n.wv.ID, "image", ref)
		wv.Require = []reconciler.ID{n.net.ID, reconciler.ID("docker.image:" + ref)}
		t2v := *n.t2v
		t2v.Require = []reconciler.ID{n.net.ID}
		cls := *n.cls
		cls.Require = []reconciler.ID{wv.ID}
		c := &reconciler.Catalog{Node: "vector-1", Revision: rev, Resources: []reconciler.Resource{img(ref, false), *n.net, t2v, wv, cls}}
		for r, allow := range extra {
			c.Resources = append(c.Resources, img(r, allow))
		}
		c.Sort()
		return c
	}
	run := func(cat *reconciler.Catalog, noop bool) (*reconciler.Report, string) {
		t.Helper()
		prior, err := store.Memory()
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		start := time.Now()
		rep, err := e.Apply(rctx, cat, reconciler.RunOptions{Prior: prior, Root: n.root, Noop: noop})
		if err != nil {
			t.Fatal(err)
		}
		if !noop {
			if _, err := store.Record(rep); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		rep.WriteText(&buf, reconciler.TextOptions{})
		t.Logf("%s (noop %v, %s):\n%s", cat.Revision, noop, time.Since(start).Round(time.Millisecond), buf.String())
		for _, r := range rep.Results {
			if r.Outcome == reconciler.Failed {
				t.Fatalf("%s: %s failed: %s", cat.Revision, r.ID, r.Error)
			}
		}
		return rep, buf.String()
	}
	result := func(rep *reconciler.Report, ref string) reconciler.Result {
		t.Helper()
		for _, r := range rep.Results {
			if r.ID == reconciler.ID("docker.image:"+ref) {
				return r
			}
		}
		t.Fatalf("no result for %s", ref)
		return reconciler.Result{}
	}
	present := func(ref string) bool {
		_, err := cl.ImageInspect(ctx, ref)
		return err == nil
	}
	wantKept := func(rep *reconciler.Report, text, ref, why string) {
		t.Helper()
		r := result(rep, ref)
		if r.Outcome != reconciler.Unchanged || !strings.Contains(r.Reason, why) {
			t.Fatalf("%s: %s %q, want kept: %q", rep.Revision, r.Outcome, r.Reason, why)
		}
		if !strings.Contains(text, "kept") || !present(ref) {
			t.Fatalf("%s: the report does not say kept, or the image is gone (present %v)", rep.Revision, present(ref))
		}
	}

	run(catalog("c1", refA, nil), false)
	for i := range 20 {
		post(t, n.url+"/v1/objects", map[string]any{"class": "FeatureMetadata", "properties": map[string]string{
			"name": fmt.Sprintf("feature_%02d", i), "description": fmt.Sprintf("Feature number %d of the user purchase history.", i)}}, nil)
	}
	countOK := func(when string) {
		t.Helper()
		if _, count := nearText(t, n.url, "user purchase amount"); count != 20 {
			t.Fatalf("%s: %d objects, want 20", when, count)
		}
	}
	countOK("c1")

	// The bump: A left the catalog, and is kept for rollback.
	rep, text := run(catalog("c2", refB, nil), false)
	wantKept(rep, text, refA, "kept for rollback: 2 more catalogs")
	countOK("after the bump")

	// A noop of the rollback never plans deleting B, which Weaviate runs:
	// B is kept for rollback, and, with a retention of 1 catalog (the site
	// says), kept because a container uses it.
	rep, text = run(catalog("c3", refA, nil), true)
	wantKept(rep, text, refB, "kept for rollback: 2 more catalogs")
	one := catalog("c3", refA, nil)
	one.KeepCatalogs = 1
	rep, text = run(one, true)
	wantKept(rep, text, refB, "kept: image "+refB+" is used by container weaviate-"+n.tag+" (running or stopped)")
	if strings.Contains(text, "would delete") {
		t.Fatal("the noop plans a deletion")
	}

	// The rollback converges, data intact; B is kept for rollback in turn.
	wvID, _ := startedAt(t, cl, n.wv.Name())
	rep, text = run(catalog("c3", refA, nil), false)
	if id, _ := startedAt(t, cl, n.wv.Name()); id == wvID {
		t.Fatal("the rollback did not recreate Weaviate")
	}
	countOK("after the rollback")
	wantKept(rep, text, refB, "kept for rollback: 2 more catalogs")

	// Newer catalogs: B is kept while one of the last 3 uses it, then its
	// deletion is held, since it cannot be pulled again.
	rep, text = run(catalog("c4", refA, nil), false)
	wantKept(rep, text, refB, "kept for rollback: 1 more catalog")
	rep, _ = run(catalog("c5", refA, nil), false)
	if r := result(rep, refB); r.Outcome != reconciler.PendingDestroy || !present(refB) {
		t.Fatalf("c5: %s %s %q (present %v), want pending-destroy", refB, r.Outcome, r.Reason, present(refB))
	}

	// With allowDestroy (B declared again with it, then left for 3
	// catalogs), it goes.
	run(catalog("c6", refA, map[string]bool{refB: true}), false)
	run(catalog("c7", refA, nil), false)
	run(catalog("c8", refA, nil), false)
	rep, _ = run(catalog("c9", refA, nil), false)
	if r := result(rep, refB); r.Outcome != reconciler.Deleted || present(refB) {
		t.Fatalf("c9: %s %s %q (present %v), want deleted", refB, r.Outcome, r.Reason, present(refB))
	}
	if !present(weaviateBumped) {
		t.Fatal("the shared image went with the test tag")
	}
	countOK("at the end")
}
