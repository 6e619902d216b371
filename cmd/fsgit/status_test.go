//go:build !lean

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/jsondoc"
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
	rep := &reconciler.Report{Site: "example", Node: "online-1", Role: "feature_store_online", Revision: "0123456789abcdef0123", Started: time.Now().Add(-time.Minute),
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
	for _, want := range []string{"online-1 (role feature_store_online, site example)", "not running: read from " + path, "converged        no",
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
	if err := json.Unmarshal([]byte(out), &n); err != nil || n.Node != "online-1" || n.Role != "feature_store_online" || len(n.Failed) != 1 {
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

// TestStatus_FleetFrozenMirror: three nodes of one site publish their
// source tips; db3's mirror stopped a day ago. The fleet table shows each
// node's tip and its age, db3's tip marked as not the majority's and db3
// flagged FROZEN (its own maxTipAge) and BEHIND (the others' tip is newer
// by more than it), with the reasons under the table; the JSON carries
// the same, ages in seconds. --max-tip-lag holds a node without maxTipAge
// to a threshold too.
func TestStatus_FleetFrozenMirror(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	now := time.Now().Truncate(time.Second)
	newTip, oldTip := strings.Repeat("a1", 20), strings.Repeat("0b", 20)
	doc := func(name, tip string, ago, maxTipAge time.Duration) status.Node {
		return status.Node{Node: name, Site: "prod", Role: "db", Converged: true, AppliedRevision: tip, DesiredRevision: tip,
			Source: status.Source{URL: "https://fsgit:hunter2@" + name + ".mirror.example.org/site.git", Branch: "main", Reachable: true,
				Tip: tip, TipTime: now.Add(-ago), TipSeen: now.Add(-ago), MaxTipAge: jsondoc.Seconds(maxTipAge)}}
	}
	for _, n := range []status.Node{
		doc("db1", newTip, 10*time.Minute, 24*time.Hour),
		doc("db2", newTip, 10*time.Minute, 24*time.Hour),
		doc("db3", oldTip, 26*time.Hour, 24*time.Hour),
		doc("db4", oldTip, 2*time.Hour, 0), // another old tip, within any threshold but --max-tip-lag's
	} {
		n.Source.URL = gitsource.RedactURL(n.Source.URL)
		n.Source.CheckTip(now)
		if err := (&status.Publisher{URL: srv.URL("status.git")}).Publish(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
	}
	none := filepath.Join(t.TempDir(), "none.cue")
	out, err := runStatusCmd(t, "--config", none, "--fleet", "--repo", srv.URL("status.git"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	row := func(name string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 14 && f[0] == name {
				return f
			}
		}
		t.Fatalf("no row for %s:\n%s", name, out)
		return nil
	}
	if h := strings.Fields(lines[0]); !slices.Equal(h[10:13], []string{"SOURCE", "TIP", "TIP-AGE"}) {
		t.Fatalf("header: %s", lines[0])
	}
	if f := row("db1"); f[10] != "ok" || f[11] != newTip[:12] || !strings.HasPrefix(f[12], "10m") {
		t.Errorf("db1: %v\n%s", f, out)
	}
	if f := row("db3"); f[10] != "FROZEN,BEHIND" || f[11] != oldTip[:12]+"*" || !strings.HasPrefix(f[12], "26h0m") {
		t.Errorf("db3: %v\n%s", f, out)
	}
	if f := row("db4"); f[10] != "ok" || f[11] != oldTip[:12]+"*" {
		t.Errorf("db4, within every threshold: %v\n%s", f, out)
	}
	for _, want := range []string{
		"* not the tip most nodes of prod report (" + newTip[:12] + "; the newest is " + newTip[:12],
		"db3 FROZEN: the source https://fsgit:[redacted]@db3.mirror.example.org/site.git (branch main) has served commit " + oldTip[:12],
		"db3 BEHIND: its source tip " + oldTip[:12],
		"25h50m0s older than " + newTip[:12] + " on db1, more than 24h0m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "db4 BEHIND") || strings.Contains(out, "hunter2") {
		t.Errorf("output:\n%s", out)
	}

	out, err = runStatusCmd(t, "--config", none, "--fleet", "--repo", srv.URL("status.git"), "--max-tip-lag", "1h", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []map[string]any
	if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != 4 {
		t.Fatalf("json = %v\n%s", err, out)
	}
	db3, db4 := nodes[2], nodes[3]
	src, lag := db3["source"].(map[string]any), db3["tipLag"].(map[string]any)
	if src["tipAge"].(float64) < 26*3600 || src["tipTime"] != now.Add(-26*time.Hour).UTC().Format(time.RFC3339) ||
		src["maxTipAge"] != 86400.0 || src["frozen"] == nil {
		t.Errorf("db3's source: %v", src)
	}
	if lag["behind"] != 93000.0 || lag["maxLag"] != 3600.0 || lag["newestNode"] != "db1" || lag["minority"] != true || lag["reason"] == nil {
		t.Errorf("db3's tipLag: %v", lag)
	}
	if lag := db4["tipLag"].(map[string]any); lag["reason"] == nil || lag["maxLag"] != 3600.0 {
		t.Errorf("db4 with --max-tip-lag 1h: %v", lag)
	}
	if _, ok := nodes[0]["tipLag"].(map[string]any)["behind"]; ok {
		t.Errorf("db1, on the newest tip, has a lag: %v", nodes[0]["tipLag"])
	}
}

// TestStatus_NodeTip: fsgit status shows the source's tip, its age, and
// why the source looks frozen.
func TestStatus_NodeTip(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	n := &status.Node{Node: "db3", Source: status.Source{URL: "https://mirror.example.org/site.git", Branch: "main", Reachable: true,
		LastSuccess: now.Add(-time.Minute), Tip: strings.Repeat("0b", 20), TipTime: now.Add(-26 * time.Hour), TipSeen: now.Add(-25 * time.Hour),
		MaxTipAge: jsondoc.Seconds(24 * time.Hour)}}
	n.Source.CheckTip(now)
	var b bytes.Buffer
	if err := writeNode(&b, n, nil, "", now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tip              0b0b0b0b0b0b committed ", "(26h0m0s ago), first seen ", "(25h0m0s ago); maxTipAge 24h0m0s",
		"FROZEN           the source https://mirror.example.org/site.git (branch main) has served commit 0b0b0b0b0b0b"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestStatus_NodeState: fsgit status says when the state file is at fault
// and when a corrupt one was moved aside and replaced (the JSON had it; the
// text said nothing).
func TestStatus_NodeState(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	n := &status.Node{Node: "db3", State: &status.StateFile{
		Error: "open state /var/lib/fsgit/state.db: no space left on device", ErrorSince: now.Add(-time.Minute),
		Recoveries: 2, LastRecovery: &status.StateRecovery{At: now.Add(-time.Hour), Reason: "state file /var/lib/fsgit/state.db is corrupt (check): page 7 is reached twice",
			MovedTo: "/var/lib/fsgit/state.db.corrupt-20261207T110000.000000000Z", Restored: 38}}}
	var b bytes.Buffer
	if err := writeNode(&b, n, nil, "", now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"state            FAULT since 2026-12-07 11:59:00 (1m0s ago): open state /var/lib/fsgit/state.db: no space left on device (runs go on; they are not recorded)",
		"                 found corrupt and replaced 2 times since the agent started; last 2026-12-07 11:00:00 (1h0m0s ago): state file /var/lib/fsgit/state.db is corrupt (check): page 7 is reached twice; kept as /var/lib/fsgit/state.db.corrupt-20261207T110000.000000000Z; 38 resources restored from the inventory copy",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	n.State = &status.StateFile{Recoveries: 1, LastRecovery: &status.StateRecovery{At: now, Reason: "bad", InventoryLost: "no inventory copy"}}
	b.Reset()
	if err := writeNode(&b, n, nil, "", now); err != nil {
		t.Fatal(err)
	}
	if want := "found corrupt and replaced once since the agent started; last 2026-12-07 12:00:00 (0s ago): bad; the inventory copy could not be used (no inventory copy): what the node managed before is not pruned"; !strings.Contains(b.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "FAULT") {
		t.Errorf("a fault shown where there is none:\n%s", b.String())
	}
}
