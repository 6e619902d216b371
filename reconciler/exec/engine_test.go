package exec_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/account"
	"github.com/fsgit/fsgit/reconciler/exec"
)

// TestEngine_hostKinds runs a small catalog of host kinds through the real
// engine twice: a group, a user that requires it, an exec guarded by
// creates that notifies a refreshOnly exec. The first run creates and
// refreshes; the second changes nothing, refreshes nothing and exits 0.
func TestEngine_hostKinds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("managing accounts needs root")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "fsgt" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_ = osexec.Command("userdel", "-r", name).Run()
		_ = osexec.Command("groupdel", name).Run()
	})
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	counter := filepath.Join(dir, "refreshed")

	res := func(id string, spec map[string]any, require, notify []reconciler.ID) reconciler.Resource {
		raw, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		return reconciler.Resource{ID: reconciler.ID(id), Spec: raw, Require: require, Notify: notify}
	}
	cat := &reconciler.Catalog{Node: "test", Resources: []reconciler.Resource{
		res("group:"+name, map[string]any{"name": name, "ensure": "present", "system": false}, nil, nil),
		res("user:"+name, map[string]any{"name": name, "ensure": "present", "group": name, "groups": []string{}, "home": "/home/" + name, "manageHome": true, "shell": "/bin/sh", "system": false, "authorizedKeys": []string{}},
			[]reconciler.ID{reconciler.ID("group:" + name)}, nil),
		res("exec:mark", map[string]any{"command": []string{"/usr/bin/touch", marker}, "creates": marker, "refreshOnly": false, "env": map[string]string{}, "timeout": "30s"},
			[]reconciler.ID{reconciler.ID("user:" + name)}, []reconciler.ID{"exec:on-change"}),
		res("exec:on-change", map[string]any{"command": []string{"/bin/sh", "-c", "echo x >> " + counter}, "refreshOnly": true, "env": map[string]string{}, "timeout": "30s"}, nil, nil),
	}}
	cat.Sort()
	eng := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(
		account.NewUser(), account.NewGroup(), exec.New(),
	)})
	ctx := context.Background()

	rep, err := eng.Apply(ctx, cat, reconciler.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != 2 || rep.Count(reconciler.Created) != 2 || rep.Count(reconciler.Changed) != 1 {
		t.Fatalf("first run: exit %d, results %+v", rep.ExitCode(), rep.Results)
	}
	for _, r := range rep.Results {
		if r.ID == "exec:on-change" && !r.Refreshed {
			t.Fatalf("exec:on-change was not refreshed: %+v", r)
		}
	}
	if got, _ := os.ReadFile(counter); string(got) != "x\n" {
		t.Fatalf("refreshOnly exec ran %q, want once", got)
	}

	rep, err = eng.Apply(ctx, cat, reconciler.RunOptions{Prior: rep.Next})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != 0 || rep.Count(reconciler.Unchanged) != 4 {
		t.Fatalf("second run: exit %d, results %+v", rep.ExitCode(), rep.Results)
	}
	if got, _ := os.ReadFile(counter); string(got) != "x\n" {
		t.Fatalf("after the second run the refreshOnly exec ran %q, want once", got)
	}

	// Under a root, every host kind is skipped with its reason.
	rep, err = eng.Apply(ctx, cat, reconciler.RunOptions{Root: t.TempDir(), NoPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(reconciler.Skipped) != 4 {
		t.Fatalf("under a root: results %+v, want 4 skipped", rep.Results)
	}
}
