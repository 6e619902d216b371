package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

func res(id string, spec any, notify ...reconciler.ID) reconciler.Resource {
	b, _ := json.Marshal(spec)
	return reconciler.Resource{ID: reconciler.ID(id), Spec: b, Notify: notify}
}

func TestCompute(t *testing.T) {
	cnf := "[mysqld]\ninnodb_buffer_pool_size = 1G\nmax_connections = 100\n"
	base := map[string]*reconciler.Catalog{
		"online-1": {Node: "online-1", Role: "feature_store_online", Resources: []reconciler.Resource{
			res("file:/etc/my.cnf.d/server.cnf", map[string]any{"content": cnf, "mode": "0644"}, "service:mariadb"),
			res("service:mariadb", map[string]any{"name": "mariadb"}),
			res("mariadb.database:old_db", map[string]any{"name": "old_db"}),
			res("mariadb.user:fs_user@localhost", map[string]any{"password": map[string]any{"secret": "mariadb/fs_user"}}),
		}},
		"vector-1": {Node: "vector-1", Resources: []reconciler.Resource{res("file:/a", map[string]any{"content": "x"})}},
	}
	head := map[string]*reconciler.Catalog{
		"online-1": {Node: "online-1", Role: "feature_store_online", Resources: []reconciler.Resource{
			res("file:/etc/my.cnf.d/server.cnf", map[string]any{"content": strings.Replace(cnf, "1G", "2G", 1), "mode": "0644"}, "service:mariadb"),
			res("service:mariadb", map[string]any{"name": "mariadb"}),
			res("mariadb.user:fs_user@localhost", map[string]any{"password": map[string]any{"secret": "mariadb/fs_user_v2"}}),
		}},
		"vector-1": {Node: "vector-1", Resources: []reconciler.Resource{res("file:/a", map[string]any{"content": "x"})}},
		"extra-1":  {Node: "extra-1", Resources: []reconciler.Resource{res("file:/b", map[string]any{"content": "y"})}},
	}
	p := Compute(base, head, nil)
	if len(p.Nodes) != 2 || p.Nodes[0].Node != "extra-1" || p.Nodes[0].Status != NodeAdded || p.Nodes[1].Node != "online-1" {
		t.Fatalf("nodes: %+v", p.Nodes)
	}
	on := p.Nodes[1]
	byID := map[reconciler.ID]ResourcePlan{}
	for _, r := range on.Resources {
		byID[r.ID] = r
	}
	svc := byID["service:mariadb"]
	if len(svc.RefreshedBy) != 1 || svc.RefreshedBy[0] != "file:/etc/my.cnf.d/server.cnf" {
		t.Errorf("mariadb not restarted by server.cnf: %+v", svc)
	}
	db := byID["mariadb.database:old_db"]
	if db.Action != reconciler.ActionDelete || db.Class != reconciler.Destructive || !db.PendingDestroy {
		t.Errorf("removed database not a pending destroy: %+v", db)
	}
	u := byID["mariadb.user:fs_user@localhost"]
	if len(u.Fields) != 1 || !u.Fields[0].Secret || u.Fields[0].After != "secret mariadb/fs_user_v2" {
		t.Errorf("secret reference change: %+v", u.Fields)
	}
	cnfPlan := byID["file:/etc/my.cnf.d/server.cnf"]
	if len(cnfPlan.Fields) != 1 || !strings.Contains(strings.Join(cnfPlan.Fields[0].Lines, "\n"), "+ innodb_buffer_pool_size = 2G") {
		t.Errorf("content line diff: %+v", cnfPlan.Fields)
	}
	if got := p.Summarize().Line(); got != "2 nodes change: 1 restart, 1 destroy (1 held as pending destroy)" {
		t.Errorf("summary %q", got)
	}
	var a, b bytes.Buffer
	if err := p.WriteMarkdown(&a); err != nil {
		t.Fatal(err)
	}
	if err := Compute(base, head, nil).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("markdown not stable across runs")
	}
}

// TestAddInvariant: a finding is shown on both nodes, a node the change
// leaves alone included, led by the change that caused it.
func TestAddInvariant(t *testing.T) {
	base := map[string]*reconciler.Catalog{
		"db-1":    {Node: "db-1", Role: "db", Resources: []reconciler.Resource{res("mariadb.user:iceberg@%", map[string]any{"host": "%"})}},
		"spark-1": {Node: "spark-1", Role: "spark", Resources: []reconciler.Resource{res("file:/s", map[string]any{"content": "x"})}},
	}
	head := map[string]*reconciler.Catalog{
		"db-1":    {Node: "db-1", Role: "db"},
		"spark-1": base["spark-1"],
	}
	p := Compute(base, head, nil)
	p.AddInvariant("catalog-user", []Ref{{Node: "spark-1", Resource: "file:/s"}, {Node: "db-1"}}, []string{"mariadb.user:iceberg@"},
		"spark-1's catalog will lose access", "", map[string]string{"spark-1": "spark"})
	if len(p.Nodes) != 2 || p.Nodes[1].Node != "spark-1" || p.Nodes[1].Status != NodeUnchanged || p.Nodes[1].Role != "spark" {
		t.Fatalf("nodes: %+v", p.Nodes)
	}
	want := "db-1 drops mariadb.user:iceberg@%: spark-1's catalog will lose access"
	for _, n := range p.Nodes {
		if len(n.Invariants) != 1 || n.Invariants[0].Message != want {
			t.Errorf("node %s: %+v", n.Node, n.Invariants)
		}
	}
	if b := p.Broken(); len(b) != 1 {
		t.Errorf("broken: %+v", b)
	}
	if got := p.Summarize().Line(); got != "1 node change: 0 restarts, 1 destroy (1 held as pending destroy); 1 invariant BROKEN across nodes" {
		t.Errorf("summary %q", got)
	}
}

// TestCompute_lists: a list of scalars is compared item by item: the
// JSON has the items at head and those added and removed, and the
// markdown shows them as list items with their marks in column 0.
func TestCompute_lists(t *testing.T) {
	base := map[string]*reconciler.Catalog{"db-1": {Node: "db-1", Resources: []reconciler.Resource{
		res("mariadb.grant:u@h/d.*", map[string]any{"privileges": []string{"SELECT", "DELETE"}}),
	}}}
	head := map[string]*reconciler.Catalog{"db-1": {Node: "db-1", Resources: []reconciler.Resource{
		res("mariadb.grant:u@h/d.*", map[string]any{"privileges": []string{"SELECT", "INSERT"}}),
	}}}
	p := Compute(base, head, nil)
	f := p.Nodes[0].Resources[0].Fields[0]
	if !f.List || f.Before != "" || f.After != "" || strings.Join(f.Items, ",") != "SELECT,INSERT" ||
		strings.Join(f.Added, ",") != "INSERT" || strings.Join(f.Removed, ",") != "DELETE" {
		t.Fatalf("list field: %+v", f)
	}
	var js bytes.Buffer
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"added": [`+"\n") || !strings.Contains(js.String(), `"removed": [`+"\n") {
		t.Errorf("JSON has no lists of items:\n%s", js.String())
	}
	var md bytes.Buffer
	if err := p.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<details open>", "\n@@ ~ mariadb.grant:u@h/d.* @@\n", "\n     privileges:\n", "\n       - SELECT\n", "\n+      - INSERT\n", "\n-      - DELETE\n"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	// Reordered only: one change, said so.
	head["db-1"].Resources[0] = res("mariadb.grant:u@h/d.*", map[string]any{"privileges": []string{"DELETE", "SELECT"}})
	f = Compute(base, head, nil).Nodes[0].Resources[0].Fields[0]
	if len(f.Added)+len(f.Removed) != 0 || len(f.Items) != 2 {
		t.Errorf("reordered list: %+v", f)
	}
	// Two nodes: sections closed.
	head["db-2"] = &reconciler.Catalog{Node: "db-2", Resources: []reconciler.Resource{res("file:/a", map[string]any{"content": "x"})}}
	md.Reset()
	if err := Compute(base, head, nil).WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "<details open>") {
		t.Errorf("two nodes, a section open:\n%s", md.String())
	}
}

// TestLineDiff: hunks with two lines of context, "…" between them, and a
// last line without a newline is not a change.
func TestLineDiff(t *testing.T) {
	var a, b []string
	for i := range 20 {
		a = append(a, fmt.Sprintf("line %d", i))
	}
	b = append(b, a...)
	b[3], b[15] = "changed 3", "changed 15"
	got := strings.Join(lineDiff(strings.Join(a, "\n")+"\n", strings.Join(b, "\n")), "\n")
	want := strings.Join([]string{"  line 1", "  line 2", "- line 3", "+ changed 3", "  line 4", "  line 5", "…",
		"  line 13", "  line 14", "- line 15", "+ changed 15", "  line 16", "  line 17"}, "\n")
	if got != want {
		t.Errorf("line diff:\n%s\nwant:\n%s", got, want)
	}
}

// BenchmarkLineDiff_3990: a 3,990-line file with changes spread through
// it (the case of issue 20: 164 MB with the quadratic diff).
func BenchmarkLineDiff_3990(b *testing.B) {
	var x, y strings.Builder
	for i := range 3990 {
		fmt.Fprintf(&x, "key_%d = value %d\n", i, i)
		if i%100 == 7 {
			fmt.Fprintf(&y, "key_%d = changed %d\n", i, i)
			continue
		}
		fmt.Fprintf(&y, "key_%d = value %d\n", i, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(lineDiff(x.String(), y.String())) == 0 {
			b.Fatal("no diff")
		}
	}
}
