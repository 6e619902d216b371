//go:build !lean

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlan_Holds: a hold in a node's status document shows in the plan's
// observed state, with the planned changes it keeps waiting.
func TestPlan_Holds(t *testing.T) {
	w := planRepo(t)
	dir := w.Dir
	base := w.Git("rev-parse", "HEAD")
	edit(t, dir, "sites/example/roles.cue", `innodbBufferPoolSize: "2G"`, `innodbBufferPoolSize: "4G"`)
	w.Git("commit", "-q", "-am", "bigger pool")
	head := w.Git("rev-parse", "HEAD")
	w.Git("checkout", "-q", "--orphan", "fsgit/status")
	w.Git("rm", "-q", "-rf", ".")
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc := `{"node": "online-1", "appliedRevision": "` + base + `", "converged": true,
		"holds": [{"by": "alice", "reason": "load test", "since": "2026-12-06T12:00:00Z", "until": "2026-12-06T14:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(dir, "nodes/online-1.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Git("add", "nodes")
	w.Git("commit", "-q", "-m", "status")
	w.Git("checkout", "-q", "main")

	code, out, stderr := fsgit(t, "plan", "--repo", dir, "--base", base, "--head", head)
	if code != 2 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	want := "held until 2026-12-06T14:00:00Z by alice (load test): file:/etc/mysql/"
	if !strings.Contains(out, want) || !strings.Contains(out, "will wait") {
		t.Fatalf("plan lacks %q ... will wait:\n%s", want, out)
	}
}
