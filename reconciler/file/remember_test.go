package file

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// runCatalog runs the catalog under root with the file kinds, from prior,
// and returns the report.
func runCatalog(t *testing.T, root string, prior *reconciler.Memory, res ...reconciler.Resource) *reconciler.Report {
	t.Helper()
	reg := reconciler.NewRegistry(Kinds()...)
	eng := reconciler.NewEngine(reconciler.Config{Registry: reg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p, err := eng.Prepare(&reconciler.Catalog{Node: "n", Resources: res})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eng.Run(context.Background(), p, reconciler.RunOptions{Root: root, Prior: prior})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestFile_RemembersDigestNotContent: the inventory keeps the content's
// digest, never the content (issue 12, item 8), and that digest is enough
// to prune the file safely once it leaves the catalog, or to hold it when
// someone changed it.
func TestFile_RemembersDigestNotContent(t *testing.T) {
	root := t.TempDir()
	content := strings.Repeat("feature store configuration line\n", 30000) // ~1 MiB
	keep := *resource(t, "file", "/etc/keep.conf", fileSpecOf("/etc/keep.conf", ptr(content), "0644"))
	edited := *resource(t, "file", "/etc/edited.conf", fileSpecOf("/etc/edited.conf", ptr(content), "0644"))
	rep := runCatalog(t, root, nil, keep, edited)
	if rep.ExitCode() != 2 {
		t.Fatalf("first run: exit %d: %+v", rep.ExitCode(), rep.Results)
	}
	for id, r := range rep.Next.Inventory {
		if bytes.Contains(r.Spec, []byte("feature store configuration")) || len(r.Spec) > 512 {
			t.Fatalf("inventory of %s keeps the content (%d bytes): %.200s", id, len(r.Spec), r.Spec)
		}
		if !bytes.Contains(r.Spec, []byte(`"contentSha256":"`)) {
			t.Fatalf("inventory of %s has no digest: %s", id, r.Spec)
		}
	}

	// A quiet run: drift is told from a change of the desired state
	// through the remembered digests.
	if err := os.WriteFile(filepath.Join(root, "etc/keep.conf"), []byte("drift"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = runCatalog(t, root, rep.Next, keep, edited)
	if r := rep.Results[slicesIndex(rep.Results, keep.ID)]; !r.Corrective {
		t.Fatalf("drift of keep.conf not corrective: %+v", r)
	}

	// Both leave the catalog; one was edited by hand meanwhile.
	if err := os.WriteFile(filepath.Join(root, "etc/edited.conf"), []byte("edited by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = runCatalog(t, root, rep.Next)
	got := map[reconciler.ID]reconciler.Outcome{}
	for _, r := range rep.Results {
		got[r.ID] = r.Outcome
	}
	if got[keep.ID] != reconciler.Deleted || got[edited.ID] != reconciler.PendingDestroy {
		t.Fatalf("prune by digest: %v", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/keep.conf")); !os.IsNotExist(err) {
		t.Fatalf("intact file not pruned: %v", err)
	}
	if readFile(t, filepath.Join(root, "etc/edited.conf")) != "edited by hand" {
		t.Fatal("edited file lost")
	}
}

func slicesIndex(rs []reconciler.Result, id reconciler.ID) int {
	for i, r := range rs {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// TestFile_InlineLimit: content over 1 MiB is refused with a sentence
// that says what to do, and a remembered spec is never applied.
func TestFile_InlineLimit(t *testing.T) {
	big := strings.Repeat("x", reconciler.MaxInline+1)
	r := resource(t, "file", "/srv/big", fileSpecOf("/srv/big", &big, "0644"))
	_, err := NewFile().RememberSpec(r)
	if err == nil || !strings.Contains(err.Error(), "over the inline limit of 1048576 bytes (1 MiB): put large content in an artifact") {
		t.Fatalf("validate: %v", err)
	}
	// The engine refuses it before the run.
	rep := runCatalog(t, t.TempDir(), nil, *r)
	if len(rep.Results) != 1 || rep.Results[0].Outcome != reconciler.Failed || !strings.Contains(rep.Results[0].Error, "over the inline limit") {
		t.Fatalf("run of an oversized file: %+v", rep.Results)
	}
	at := strings.Repeat("x", reconciler.MaxInline)
	spec, err := NewFile().RememberSpec(resource(t, "file", "/srv/at", fileSpecOf("/srv/at", &at, "0644")))
	if err != nil {
		t.Fatal(err)
	}
	mem := &reconciler.Resource{ID: "file:/srv/at", Spec: spec}
	if _, err := NewFile().Plan(context.Background(), testEnv(t, t.TempDir(), nil), mem); err == nil {
		t.Fatal("a remembered spec was planned for apply")
	}
}
