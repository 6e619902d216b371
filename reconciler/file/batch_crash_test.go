package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// The batched crash test re-executes this test binary as a child that runs
// the engine over a catalog of many files, all rewritten in one batch, and
// is killed with SIGKILL at some moment of it.
const (
	childBatchEnv = "FSGIT_FILE_TEST_CHILD_BATCH"
	batchFiles    = 200
	batchSize     = 64 << 10
)

// batchContent is version v of file i of the batch: every byte the same,
// the file's number in front, so that a mix of versions or files shows.
func batchContent(i int, v string) string {
	return fmt.Sprintf("%04d", i) + strings.Repeat(v, batchSize)
}

// batchCatalog is the catalog of the batch at version v: the files
// /srv/b/fNNN under root, each with its content.
func batchCatalog(v string) (*reconciler.Catalog, error) {
	cat := &reconciler.Catalog{Site: "crash", Node: "n", Role: "r"}
	for i := 0; i < batchFiles; i++ {
		name := fmt.Sprintf("/srv/b/f%03d", i)
		c := batchContent(i, v)
		raw, err := json.Marshal(fileSpecOf(name, &c, "0644"))
		if err != nil {
			return nil, err
		}
		cat.Resources = append(cat.Resources, reconciler.Resource{ID: reconciler.NewID("file", name), Spec: raw})
	}
	return cat, nil
}

// runBatch runs the batch's catalog at version v under root in an engine.
func runBatch(root, v string) (*reconciler.Report, error) {
	cat, err := batchCatalog(v)
	if err != nil {
		return nil, err
	}
	e := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(Kinds()...)})
	return e.Apply(context.Background(), cat, reconciler.RunOptions{Root: root})
}

// childBatchRun runs in the child: one engine run of version v under root.
func childBatchRun(root, v string) int {
	rep, err := runBatch(root, v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, r := range rep.Results {
		if r.Outcome == reconciler.Failed {
			fmt.Fprintln(os.Stderr, r.ID, r.Error)
			return 1
		}
	}
	return 0
}

// TestEngine_KillDuringBatchedWrites kills an engine run with SIGKILL while
// it rewrites 200 files through the run's batch (temporary files written,
// one syncfs, renames, one fsync of the directory): every file must hold
// its old version or its new one, whole; a run after it converges and
// leaves no temporary file.
func TestEngine_KillDuringBatchedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 files of 64 KiB several times")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "srv", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sums := map[string]map[[32]byte]string{}
	for i := 0; i < batchFiles; i++ {
		name := fmt.Sprintf("f%03d", i)
		sums[name] = map[[32]byte]string{}
		for _, v := range []string{"A", "B"} {
			sums[name][sha256.Sum256([]byte(batchContent(i, v)))] = v
		}
	}
	converge := func(v string) {
		t.Helper()
		rep, err := runBatch(root, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if r.Outcome == reconciler.Failed || r.Warning != "" {
				t.Fatalf("converging to %s: %s %s: %s%s", v, r.ID, r.Outcome, r.Error, r.Warning)
			}
		}
	}
	converge("A")

	current, midBatch, mixed := "A", 0, 0
	for round := 0; round < 6; round++ {
		next := map[string]string{"A": "B", "B": "A"}[current]
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childBatchEnv+"=1", childVersionEnv+"="+next, childRootEnv+"="+root)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once some temporary files are there (the batch is being
		// staged), a little later each round.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if m, _ := filepath.Glob(filepath.Join(dir, ".*.fsgit-tmp")); len(m) > 0 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Duration(round) * 3 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()

		seen := map[string]int{}
		for i := 0; i < batchFiles; i++ {
			name := fmt.Sprintf("f%03d", i)
			v, ok := sums[name][sha256.Sum256([]byte(readFile(t, filepath.Join(dir, name))))]
			if !ok {
				t.Fatalf("round %d: %s holds neither version %s nor %s whole (child stderr: %s)", round, name, current, next, stderr.String())
			}
			seen[v]++
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.fsgit-tmp")); killed && len(tmps) > 0 {
			midBatch++
		}
		if seen[current] > 0 && seen[next] > 0 {
			mixed++
		}
		t.Logf("round %d: killed %v, %d files at %s, %d at %s", round, killed, seen[current], current, seen[next], next)

		converge(next)
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.fsgit-tmp")); len(tmps) > 0 {
			t.Fatalf("round %d: temporary files left after convergence: %v", round, tmps)
		}
		for i := 0; i < batchFiles; i++ {
			name := fmt.Sprintf("f%03d", i)
			if v := sums[name][sha256.Sum256([]byte(readFile(t, filepath.Join(dir, name))))]; v != next {
				t.Fatalf("round %d: %s not converged to %s", round, name, next)
			}
		}
		current = next
	}
	if midBatch == 0 {
		t.Fatal("no round killed the run while temporary files were staged; the test proved nothing")
	}
	t.Logf("%d of 6 runs killed with the batch staged, %d left some files renamed and others not", midBatch, mixed)
}
