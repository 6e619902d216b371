package pass

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// TestLocal_MemoryOfALackingKindEndsThePass: a node whose memory holds a
// resource of a kind the program lacks (Compiler.Has), here one to prune,
// ends the pass at its state step with a *LackingKindError, before
// anything ran or was recorded, and lets the state's lock go. Without Has
// the same pass runs.
func TestLocal_MemoryOfALackingKindEndsThePass(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, state.DefaultPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reconciler.Report{Node: "n1", Next: reconciler.NewMemory()}
	vol := reconciler.ID("docker.volume:cache")
	rep.Next.Inventory[vol] = reconciler.Resource{ID: vol, Spec: json.RawMessage(`{}`)}
	if _, err := st.Record(rep); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	local := func(has func(string) bool) *Local {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		return &Local{
			Site: "site", Node: "n1", Root: root, NoCache: true, Log: log,
			Compiler: Compiler{
				Key: func(string) (string, error) { return "k", nil },
				Evaluate: func(context.Context, string, string) (*reconciler.Catalog, string, error) {
					return &reconciler.Catalog{Node: "n1"}, "k", nil
				},
				Has: has,
			},
			Engine: reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(), Log: log}),
		}
	}
	res := local(func(kind string) bool { return !strings.HasPrefix(kind, "docker.") }).Run(context.Background())
	var lk *LackingKindError
	if res.Step != "state" || !errors.As(res.Err, &lk) || lk.ID != vol || res.Report != nil {
		t.Fatalf("step %q, err %v, report %v; want the state step to end with a LackingKindError for %s and no run", res.Step, res.Err, res.Report, vol)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the state file changed though the pass stopped before its run")
	}

	// The lock was let go, and without Has the pass runs: the volume
	// left the catalog, and no kind here can remove it.
	res = local(nil).Run(context.Background())
	if res.Err != nil || res.Report == nil {
		t.Fatalf("without Has: step %q, err %v", res.Step, res.Err)
	}
	var found *reconciler.Result
	for i := range res.Report.Results {
		if res.Report.Results[i].ID == vol {
			found = &res.Report.Results[i]
		}
	}
	if found == nil || !strings.Contains(found.Reason, "no kind") {
		t.Errorf("the volume's result: %+v, want it left in place for want of its kind", found)
	}
}
