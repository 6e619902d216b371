package agent

// The agent under file system faults (issue 22): it keeps running,
// reports the fault in its status and metrics, and recovers by itself
// once the fault clears.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/faulttest"
	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// metricsOf reads the agent's metrics from its local API.
func metricsOf(t *testing.T, n *node) string {
	t.Helper()
	m, err := NewClient(n.sock).Get(context.Background(), MetricsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(m)
}

// TestAgentFault_StateDiskFull: the state file's file system is full when
// the agent starts (it cannot create the file). The agent starts anyway,
// converges the node from its catalog, says in its status and metrics
// that the state is not kept, leaves no partial file, and once space is
// freed opens the state and records the runs, by itself.
func TestAgentFault_StateDiskFull(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.stateDir = faulttest.Tmpfs(t, "300k")
	n.writeConfig(s.url, "")
	free := faulttest.Fill(t, n.stateDir, 8<<10)
	n.start()

	waitFor(t, "v1 on disk without a state file", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	waitFor(t, "the fault in the status", func() bool {
		st := n.agent.Status().State
		return st != nil && strings.Contains(st.Error, "no space left on device") && !st.ErrorSince.IsZero()
	})
	if m := metricsOf(t, n); !strings.Contains(m, "fsgit_state_up 0") || !strings.Contains(m, `fsgit_state_errors_total{op="open"}`) {
		t.Fatalf("metrics do not show the fault:\n%s", grepLines(m, "fsgit_state"))
	}
	if left := faulttest.Leftovers(t, n.stateDir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}

	free()
	waitFor(t, "the state kept again", func() bool { return n.agent.Status().State == nil })
	if m := metricsOf(t, n); !strings.Contains(m, "fsgit_state_up 1") {
		t.Fatalf("metrics after recovery:\n%s", grepLines(m, "fsgit_state"))
	}
	n.stop()
	st, err := state.Open(filepath.Join(n.stateDir, "state.db"), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m, err := st.Memory(); err != nil || len(m.Inventory) != 1 {
		t.Fatalf("memory after recovery: %v, %v", m, err)
	}
}

// TestAgentFault_StateCorruptWhileRunning: the state file is damaged
// under a running agent (a failing disk). The next run finds it, moves it
// aside, carries on from the inventory copy, and says so in its status,
// metrics and log.
func TestAgentFault_StateCorruptWhileRunning(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"), fileRes("/etc/app/b.conf", "b\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.start()
	waitFor(t, "converged", func() bool { return n.agent.Status().Converged })

	path := filepath.Join(n.stateDir, "state.db")
	faulttest.Scribble(t, path)

	waitFor(t, "the recovery in the status", func() bool {
		st := n.agent.Status().State
		return st != nil && st.Recoveries == 1 && st.LastRecovery != nil && st.LastRecovery.Restored == 2
	})
	if m := metricsOf(t, n); !strings.Contains(m, "fsgit_state_recoveries_total 1") {
		t.Fatalf("metrics:\n%s", grepLines(m, "fsgit_state"))
	}
	if !strings.Contains(n.logs.String(), "state file corrupt: moved aside") {
		t.Fatal("the recovery is not logged")
	}
	moved, _ := filepath.Glob(path + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt files: %v", moved)
	}
	// It keeps running, and keeps the node converged.
	if err := os.WriteFile(n.path("/etc/app/app.conf"), []byte("drift"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drift corrected after the recovery", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
}

// TestAgentFault_GitCacheDiskFull: the git cache's file system fills up:
// the fetch of a new commit fails, the agent reports the source down in
// its status and metrics, keeps the node on the last good commit, leaves
// no partial pack, and applies the commit once space is freed.
func TestAgentFault_GitCacheDiskFull(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.cacheDir = filepath.Join(faulttest.Tmpfs(t, "1m"), "cache")
	n.writeConfig(s.url, "")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })

	free := faulttest.Fill(t, filepath.Dir(n.cacheDir), 0)
	big := strings.Repeat("feature row\n", 40000) // a commit too big for what is left
	s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"), fileRes("/etc/app/big.conf", big))})
	// Either the write of the pack or of the ref fails: a ref file cut
	// short by the full disk reads as empty.
	waitFor(t, "the source reported down", func() bool {
		src := n.agent.Status().Source
		return !src.Reachable && (strings.Contains(src.Error, "no space left on device") || strings.Contains(src.Error, "ref file is empty"))
	})
	t.Logf("while full: %s", n.agent.Status().Source.Error)
	if m := metricsOf(t, n); !strings.Contains(m, "fsgit_source_up 0") || !strings.Contains(m, `fsgit_polls_total{result="error"}`) {
		t.Fatalf("metrics:\n%s", grepLines(m, "fsgit_source_up", "fsgit_polls"))
	}
	if n.read("/etc/app/app.conf") != "v1\n" {
		t.Fatal("the node left its last good commit")
	}
	if left := faulttest.Leftovers(t, n.cacheDir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	free()
	waitFor(t, "v2 on disk", func() bool { return n.read("/etc/app/app.conf") == "v2\n" && n.read("/etc/app/big.conf") == big })
	waitFor(t, "the source reported up", func() bool { return n.agent.Status().Source.Reachable })
}

// TestAgentFault_StatusPushServerFull: the repository of the status
// branch is on a file system that fills up: publishing fails, the agent
// counts it and keeps running, and publishes once space is back.
func TestAgentFault_StatusPushServerFull(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	statusDir := filepath.Join(s.srv.Root, "status.git")
	if err := os.Mkdir(statusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := faulttest.Tmpfs(t, "1m")
	// The bare repository on the tmpfs, served as status.git.
	if err := os.Remove(statusDir); err != nil {
		t.Fatal(err)
	}
	gittest.NewBareRepo(t, filepath.Join(mnt, "status.git"))
	if err := os.Symlink(filepath.Join(mnt, "status.git"), statusDir); err != nil {
		t.Fatal(err)
	}
	free := faulttest.Fill(t, mnt, 0)
	statusURL := s.srv.URL("status.git")
	n := newNode(t, "n1", s.url, "100ms", `status: url: "`+statusURL+`"`)
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	waitFor(t, "a failed publish counted", func() bool {
		return strings.Contains(metricsOf(t, n), `fsgit_status_publishes_total{result="error"}`)
	})
	if !strings.Contains(n.logs.String(), "publish status: will retry") {
		t.Fatal("the failed publish is not logged")
	}
	free()
	waitFor(t, "the status published", func() bool {
		d := fleetNode(t, statusURL, "n1")
		return d != nil && d.Converged
	})
}

// grepLines returns the lines of s that start with one of the prefixes.
func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestAgentFault_StateDiskFullWhileRunning: while the agent runs, the
// state's file system fills up and a new commit must grow the file. The
// run goes on (the node converges on the commit), the status and metrics
// say the runs are not recorded and why, and once space is freed the
// agent records again by itself, with the whole inventory.
func TestAgentFault_StateDiskFullWhileRunning(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.stateDir = faulttest.Tmpfs(t, "1m")
	n.writeConfig(s.url, "")
	n.start()
	waitFor(t, "converged", func() bool { return n.agent.Status().Converged })

	many := []reconciler.Resource{fileRes("/etc/app/app.conf", "v2\n")}
	for i := range 120 {
		many = append(many, fileRes(fmt.Sprintf("/etc/app/many/%03d.conf", i), strings.Repeat("x", 300)))
	}
	free := faulttest.Fill(t, n.stateDir, 0)
	s.push("v2", map[string]string{"n1": catalogJSON(t, many...)})
	waitFor(t, "v2 on disk", func() bool { return n.read("/etc/app/app.conf") == "v2\n" })
	waitFor(t, "the full disk in the status", func() bool {
		st := n.agent.Status().State
		return st != nil && strings.Contains(st.Error, "no space left on device")
	})
	if m := metricsOf(t, n); !strings.Contains(m, `fsgit_state_errors_total{op="record"}`) || !strings.Contains(m, "fsgit_state_up 0") {
		t.Fatalf("metrics:\n%s", grepLines(m, "fsgit_state"))
	}
	if left := faulttest.Leftovers(t, n.stateDir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	free()
	waitFor(t, "runs recorded again", func() bool { return n.agent.Status().State == nil })
	n.stop()
	checkInventory(t, filepath.Join(n.stateDir, "state.db"), 121)
}

// TestAgentFault_StateReadOnly: the state's file system is read-only when
// the agent starts (the kernel refuses to remount it read-only while the
// agent has the file open for writing). The agent runs without it, says
// so, and once the file system is writable again opens the state and
// records, by itself.
func TestAgentFault_StateReadOnly(t *testing.T) {
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.stateDir = faulttest.Tmpfs(t, "1m")
	n.writeConfig(s.url, "")
	n.start()
	waitFor(t, "converged", func() bool { return n.agent.Status().Converged })
	n.stop()

	faulttest.Remount(t, n.stateDir, true)
	s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"), fileRes("/etc/app/b.conf", "b\n"))})
	n.start()
	waitFor(t, "v2 on disk", func() bool { return n.read("/etc/app/app.conf") == "v2\n" })
	waitFor(t, "the read-only file system in the status", func() bool {
		st := n.agent.Status().State
		return st != nil && strings.Contains(st.Error, "read-only file system")
	})
	faulttest.Remount(t, n.stateDir, false)
	waitFor(t, "runs recorded again", func() bool { return n.agent.Status().State == nil })
	n.stop()
	checkInventory(t, filepath.Join(n.stateDir, "state.db"), 2)
}

// checkInventory checks that the state file and its inventory copy both
// hold want resources.
func checkInventory(t *testing.T, path string, want int) {
	t.Helper()
	st, err := state.Open(path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m, err := st.Memory(); err != nil || len(m.Inventory) != want {
		t.Fatalf("inventory: %d entries, want %d (%v)", len(m.Inventory), want, err)
	}
	if c, err := state.ReadInventory(path); err != nil || len(c.Inventory) != want {
		t.Fatalf("inventory copy: %v", err)
	}
}
