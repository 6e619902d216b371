//go:build !lean

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// statusStdout runs fsgit status and returns its standard output alone.
func statusStdout(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newStatusCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// heldDestroy is a node holding a destroy, as in issue 12: a grant added
// by hand that the site does not allow fsgit to revoke.
func heldDestroy() *status.Node {
	rep := &reconciler.Report{Node: "online-1", Revision: "0123456789abcdef", Started: time.Now().Add(-time.Second), Results: []reconciler.Result{
		{ID: "file:/etc/a", Outcome: reconciler.Unchanged},
		{ID: "mariadb.grant:intruder@%/feature_store_online", Outcome: reconciler.PendingDestroy, Reason: "allowDestroy is false",
			Changes: []reconciler.Change{{Field: "privileges", Before: "SELECT", Class: reconciler.Destructive}}},
	}}
	n := &status.Node{Node: "online-1", Role: "feature_store_online", DesiredRevision: rep.Revision}
	n.Update(rep, rep.Results, "poll", time.Now())
	return n
}

// fakeAgent serves body as the status on a unix socket, as an agent does,
// while the state file at statePath is held open (locked), as an agent
// holds it.
func fakeAgent(t *testing.T, body []byte) (sock, statePath string) {
	t.Helper()
	dir := t.TempDir()
	sock, statePath = filepath.Join(dir, "fsgit.sock"), filepath.Join(dir, "state.db")
	st, err := state.Open(statePath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agent.StatusPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock, statePath
}

// TestStatus_agentHoldingDestroy: the agent of a node with a pending
// destroy is asked and answers (it used to be "not answering", and the
// fallback failed on the state file the agent holds).
func TestStatus_agentHoldingDestroy(t *testing.T) {
	doc, err := heldDestroy().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sock, statePath := fakeAgent(t, doc)
	out, err := runStatusCmd(t, "--config", filepath.Join(t.TempDir(), "none.cue"), "--socket", sock, "--state", statePath)
	if err != nil {
		t.Fatalf("status of a node holding a destroy: %v\n%s", err, out)
	}
	for _, want := range []string{"agent            running", "pending destroy  mariadb.grant:intruder@%/feature_store_online: allowDestroy is false"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestStatus_agentUnreadable: an agent whose answer cannot be read is an
// error that says so, not a fallback to the state file it holds.
func TestStatus_agentUnreadable(t *testing.T) {
	sock, statePath := fakeAgent(t, []byte(`{"node":"online-1","pendingDestroy":[{"id":"a:b","changes":[{"field":"f","class":"harmless"}]}]}`))
	out, err := runStatusCmd(t, "--config", filepath.Join(t.TempDir(), "none.cue"), "--socket", sock, "--state", statePath)
	if err == nil {
		t.Fatalf("an unreadable answer gave no error:\n%s", out)
	}
	if msg := err.Error(); !strings.Contains(msg, `unknown change class "harmless"`) || !strings.Contains(msg, sock) || strings.Contains(msg, "state") {
		t.Fatalf("error = %v; want the agent's answer's own error, and nothing of the state file", err)
	}
}

// TestStatus_nothingAnswers: with no agent and no state file, the error
// says in one sentence that fsgit has not run here, where it looked, and
// what to do.
func TestStatus_nothingAnswers(t *testing.T) {
	dir := t.TempDir()
	sock, statePath := filepath.Join(dir, "no.sock"), filepath.Join(dir, "missing.db")
	_, err := runStatusCmd(t, "--config", filepath.Join(dir, "none.cue"), "--socket", sock, "--state", statePath)
	if err == nil {
		t.Fatal("no agent and no state file: no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "no agent answers on "+sock) || !strings.Contains(msg, "no state file at "+statePath) ||
		!strings.Contains(msg, "start the agent") || strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
		t.Fatalf("error = %v; want one sentence naming the socket and the state file, and what to do", err)
	}
}

// TestStatus_FleetUnreadable: a node whose document cannot be read is a
// row with its error, not a node missing from the table; a node holding a
// destroy is read (its document used to be unreadable).
func TestStatus_FleetUnreadable(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	url := srv.URL("site.git")
	for _, n := range []*status.Node{
		heldDestroy(),
		{Node: "vector-1", Converged: true, AppliedRevision: "aaaa", DesiredRevision: "aaaa", Source: status.Source{Reachable: true}},
	} {
		if err := (&status.Publisher{URL: url}).Publish(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	w := gittest.NewWork(t, url)
	w.Git("fetch", "--quiet", "origin", status.DefaultBranch)
	w.Git("checkout", "--quiet", "-B", "s", "FETCH_HEAD")
	w.WriteFile("nodes/broken.json", `{"node": "broken", "since": 12}`)
	w.Commit("a document this fsgit cannot read")
	w.Git("push", "--quiet", "origin", "HEAD:refs/heads/"+status.DefaultBranch)

	none := filepath.Join(t.TempDir(), "none.cue")
	out, err := statusStdout(t, "--config", none, "--fleet", "--repo", url)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "decode broken.json") {
		t.Errorf("exit = %v, want exit 1 naming broken.json", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "broken ") || !strings.Contains(lines[1], "UNREADABLE: decode broken.json: ") ||
		!strings.HasPrefix(lines[2], "online-1 ") || !strings.HasPrefix(lines[3], "vector-1 ") ||
		!strings.Contains(lines[4], "3 nodes, 1 converged, 1 unreadable") {
		t.Fatalf("fleet table:\n%s", out)
	}
	if f := strings.Fields(lines[2]); len(f) < 10 || f[len(f)-6] != "1" {
		t.Errorf("online-1's PENDING column = %v, want 1:\n%s", f, out)
	}

	out, _ = statusStdout(t, "--config", none, "--fleet", "--repo", url, "-o", "json")
	var nodes []status.Node
	if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != 3 {
		t.Fatalf("json = %v\n%s", err, out)
	}
	if nodes[0].Node != "broken" || !strings.Contains(nodes[0].Unreadable, "decode broken.json") || len(nodes[1].PendingDestroy) != 1 {
		t.Fatalf("json nodes = %+v", nodes)
	}
}
