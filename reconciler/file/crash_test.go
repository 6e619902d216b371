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
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/reconciler"
)

// The crash test re-executes this test binary as a child that applies one
// large file and is killed with SIGKILL in the middle of writing it.
const (
	childPathEnv    = "FSGIT_FILE_TEST_CHILD_PATH"
	childVersionEnv = "FSGIT_FILE_TEST_CHILD_VERSION"
	childRootEnv    = "FSGIT_FILE_TEST_CHILD_ROOT"
	crashSize       = 32 << 20
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childPathEnv); path != "" {
		os.Exit(childApply(os.Getenv(childRootEnv), path, os.Getenv(childVersionEnv)))
	}
	if os.Getenv(childBatchEnv) != "" {
		os.Exit(childBatchRun(os.Getenv(childRootEnv), os.Getenv(childVersionEnv)))
	}
	os.Exit(m.Run())
}

// bigContent is version v of the large file: every byte the same, so that
// a mix of two versions is plain to see.
func bigContent(v string) string {
	return string(bytes.Repeat([]byte(v), crashSize))
}

func bigResourceSpec(path, v string) map[string]any {
	c := bigContent(v)
	return fileSpecOf(path, &c, "0644")
}

// childApply runs in the child: plan and apply version v of path under
// root ("" for the host).
func childApply(root, path, v string) int {
	raw, err := json.Marshal(bigResourceSpec(path, v))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r := &reconciler.Resource{ID: reconciler.NewID("file", path), Spec: raw}
	env := &reconciler.Env{Root: root, Cache: reconciler.NewCache()}
	p, err := NewFile().Plan(context.Background(), env, r)
	if err == nil && p.Apply != nil {
		err = p.Apply(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestFile_KillDuringWrite kills a writer with SIGKILL while it writes a
// 32 MiB file: the target must hold the old version or the new one, whole,
// and the next run must converge and leave no temporary file behind. It
// runs on the host's filesystem and under a root (os.Root), whose writes
// must keep the same guarantee.
func TestFile_KillDuringWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("writes several 32 MiB files")
	}
	t.Run("host", func(t *testing.T) { killDuringWrite(t, "") })
	t.Run("root", func(t *testing.T) { killDuringWrite(t, t.TempDir()) })
}

func killDuringWrite(t *testing.T, root string) {
	dir := filepath.Join(t.TempDir(), "srv")
	declared := filepath.Join(dir, "big.bin")
	if root != "" {
		dir = filepath.Join(root, "srv")
		declared = "/srv/big.bin"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "big.bin")
	sums := map[string][32]byte{}
	for _, v := range []string{"A", "B"} {
		sums[v] = sha256.Sum256([]byte(bigContent(v)))
	}
	converge(t, root, NewFile(), resource(t, "file", declared, bigResourceSpec(declared, "A")), nil)

	current, interrupted := "A", 0
	for round := 0; round < 4; round++ {
		next := map[string]string{"A": "B", "B": "A"}[current]
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childPathEnv+"="+declared, childVersionEnv+"="+next, childRootEnv+"="+root)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill as soon as the temporary file has some of the new bytes.
		tmp := filepath.Join(dir, atomicfile.TempName(filepath.Base(target)))
		deadline := time.Now().Add(20 * time.Second)
		killedMidWrite := false
		for time.Now().Before(deadline) {
			if fi, err := os.Stat(tmp); err == nil && fi.Size() > 0 && fi.Size() < crashSize {
				killedMidWrite = true
				break
			}
			if cmd.ProcessState != nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if killedMidWrite && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			// The child finished between our look and the kill.
			killedMidWrite = false
		}

		got := sha256.Sum256([]byte(readFile(t, target)))
		switch got {
		case sums[current]:
			if killedMidWrite {
				interrupted++
			}
		case sums[next]:
		default:
			t.Fatalf("round %d: target holds neither version %s nor %s whole (child stderr: %s)", round, current, next, stderr.String())
		}

		// The next run converges to the new version and cleans up.
		r := resource(t, "file", declared, bigResourceSpec(declared, next))
		converge(t, root, NewFile(), r, nil)
		if sha256.Sum256([]byte(readFile(t, target))) != sums[next] {
			t.Fatalf("round %d: next run did not converge to %s", round, next)
		}
		if p := mustPlan(t, root, NewFile(), r, nil); p.HasChanges() {
			t.Fatalf("round %d: plan after convergence has changes: %v", round, fields(p))
		}
		if _, err := os.Lstat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: temporary file left after convergence: %v", round, err)
		}
		current = next
	}
	if interrupted == 0 {
		t.Fatal("no round killed the writer in the middle of its write; the test proved nothing")
	}
	t.Logf("%d of 4 writers killed mid-write", interrupted)
}
