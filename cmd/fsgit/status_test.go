package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

func runStatusCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newStatusCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestStatus_FromState: with no agent answering, status reads the state
// file.
func TestStatus_FromState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reconciler.Report{Site: "example", Node: "online-1", Revision: "0123456789abcdef0123", Started: time.Now().Add(-time.Minute),
		Results: []reconciler.Result{
			{ID: "file:/etc/a", Outcome: reconciler.Unchanged},
			{ID: "mariadb.user:x@localhost", Outcome: reconciler.Failed, Error: "access denied"},
		}}
	if _, err := st.Record(rep); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", filepath.Join(dir, "none.cue"), "--socket", filepath.Join(dir, "no.sock"), "--state", path}

	out, err := runStatusCmd(t, common...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"online-1", "not running: read from " + path, "converged        no",
		"mariadb.user:x@localhost: access denied", "desired          0123456789ab"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, err = runStatusCmd(t, append(common, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var n status.Node
	if err := json.Unmarshal([]byte(out), &n); err != nil || n.Node != "online-1" || len(n.Failed) != 1 {
		t.Fatalf("json = %+v %v\n%s", n, err, out)
	}

	if _, err := runStatusCmd(t, "--config", filepath.Join(dir, "none.cue"), "--socket", filepath.Join(dir, "no.sock"),
		"--state", filepath.Join(dir, "missing.db")); err == nil {
		t.Fatal("no agent and no state file: no error")
	}
}

// TestStatus_Fleet reads the status branch.
func TestStatus_Fleet(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	for _, n := range []status.Node{
		{Node: "online-1", Role: "feature_store_online", Converged: true, AppliedRevision: "aaaa", DesiredRevision: "aaaa", Source: status.Source{Reachable: true}},
		{Node: "vector-1", Role: "feature_store_vector", DesiredRevision: "aaaa", Failed: []status.Item{{ID: "docker.container:weaviate"}}},
	} {
		if err := (&status.Publisher{URL: srv.URL("site.git")}).Publish(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
	}
	none := filepath.Join(t.TempDir(), "none.cue")
	out, err := runStatusCmd(t, "--config", none, "--fleet", "--repo", srv.URL("site.git"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE") || !strings.HasPrefix(lines[1], "online-1") ||
		!strings.Contains(lines[2], "vector-1") || !strings.Contains(lines[3], "2 nodes, 1 converged") {
		t.Fatalf("fleet table:\n%s", out)
	}
	out, err = runStatusCmd(t, "--config", none, "--fleet", "--repo", srv.URL("site.git"), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []status.Node
	if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != 2 {
		t.Fatalf("json = %v\n%s", err, out)
	}
}
