package desired

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"cuelang.org/go/cue/parser"
)

// pruneFS is sites/example with n generated nodes plus entries that a site
// loaded for one node must not get wrong: a node declared in two files, a
// node whose entry refers to another field (not plain data, so it is
// kept), node data and resources in literal entries, and extra, a file of
// the test's own.
func pruneFS(t *testing.T, n int, extra string) map[string]string {
	t.Helper()
	files := fleetFS(t, n)
	files["sites/example/more.cue"] = `package example

_port: 3307

nodes: {
	"mon-1": role: "feature_store_monitoring"
	"node-003": data: mariadb: maxConnections: 900
	"node-004": data: mariadb: port: _port
	"node-006": resources: "file:/etc/node-006": content: "mine\n"
	"node-007": {
		// a comment, an attribute and a negative number are still data
		data: base: chrony: maxDistance: -1 @test()
	}
}
`
	if extra != "" {
		files["sites/example/extra.cue"] = "package example\n\n" + extra
	}
	// A package shared by sites, which reads the nodes of the site that
	// embeds it.
	files["sites/shared/fleet.cue"] = `package shared

#Fleet: {
	nodes: _
	data: base: groups: {for n, _ in nodes if n == "node-000" {"g-node-000": {}}}
}
`
	return files
}

// catalogJSON loads the site (for node, or whole when forNode is false) and
// returns node's catalog as JSON, or the error's text, and how many nodes
// the load left out.
func catalogJSON(t *testing.T, files map[string]string, node string, forNode bool) (string, int) {
	t.Helper()
	src := Source{FS: exampleFS(t, files), SiteDir: "sites/example"}
	if forNode {
		src.Node = node
	}
	s, err := Load(context.Background(), src)
	if err != nil {
		return "load: " + err.Error(), 0
	}
	cat, err := s.Catalog(node)
	if err != nil {
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("%s: %v", node, err)
		}
		return "catalog: " + err.Error(), s.pruned
	}
	cat.Revision = "" // the hash of the files, which differ
	b, err := json.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), s.pruned
}

// TestLoadNode_SameAsWhole holds a site loaded for one node to what the
// whole site gives that node: the same catalog, or the same refusal.
func TestLoadNode_SameAsWhole(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		// prunes: the load for a node other than the monitoring one
		// leaves nodes out.
		prunes bool
	}{
		{name: "fleet", prunes: true},
		// Every catalog reads the first online node's fqdn
		// (icebergCatalogHost): the fleet's is node-000.internal,
		// here a node kept because its entry is not plain data.
		{name: "host kept", extra: `_h: "a-host.internal"
nodes: "node-900": {role: "feature_store_online", fqdn: _h}
`, prunes: true},
		// ... and here a node left out, with the default fqdn.
		{name: "host by default", extra: `nodes: "a-node": role: "feature_store_online"`, prunes: true},
		// A site that reads nodes is loaded whole.
		{name: "reads nodes", extra: `data: base: packages: [for n, _ in nodes if n == "none" {n}]`},
		{name: "reads a node", extra: `_other: nodes["node-001"].fqdn`},
		{name: "imports what reads nodes", extra: `import "github.com/fsgit/fsgit/sites/shared"

shared.#Fleet
`},
		{name: "aliases nodes", extra: `N=nodes: {}
_n: N`},
		// The host's entry does not validate: every node is refused, as
		// by the whole site.
		{name: "host invalid", extra: `nodes: "a-node": {role: "feature_store_online", address: "not an address"}`, prunes: false},
	}
	nodes := []string{"node-000", "node-001", "node-002", "node-003", "node-004", "node-006", "node-007", "mon-1", "nope"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := pruneFS(t, 12, c.extra)
			if c.name != "fleet" {
				nodes = []string{"node-001", "node-000", "mon-1"}
			}
			for _, node := range nodes {
				whole, _ := catalogJSON(t, files, node, false)
				mine, pruned := catalogJSON(t, files, node, true)
				if whole != mine {
					t.Errorf("%s: loaded for the node:\n%.600s\nwhole site:\n%.600s", node, mine, whole)
				}
				if want := c.prunes && node != "mon-1" && node != "nope"; (pruned > 0) != want {
					t.Errorf("%s: %d nodes left out, want some: %v", node, pruned, want)
				}
			}
		})
	}
}

// TestLoadNode_AnotherNodesMistake: a node whose entry does not validate
// refuses its own catalog, and no longer stops the other nodes' (it did,
// through the topology, when every load evaluated the whole site).
func TestLoadNode_AnotherNodesMistake(t *testing.T) {
	bad := `nodes: "node-005": address: "not an address"`
	files := pruneFS(t, 12, bad)
	good := pruneFS(t, 12, "")
	for _, node := range []string{"node-001", "node-003", "node-002"} {
		mine, pruned := catalogJSON(t, files, node, true)
		want, _ := catalogJSON(t, good, node, false)
		if mine != want || pruned == 0 {
			t.Errorf("%s (%d left out): got\n%.400s\nwant\n%.400s", node, pruned, mine, want)
		}
	}
	mine, _ := catalogJSON(t, files, "node-005", true)
	if !strings.Contains(mine, "not an address") || !strings.Contains(mine, "extra.cue") {
		t.Errorf("node-005: got %.600s, want its own problem, at extra.cue", mine)
	}
	// The whole site (fsgit vet, fsgit plan) still refuses it.
	if _, err := Load(context.Background(), Source{FS: exampleFS(t, files), SiteDir: "sites/example"}); err == nil || !strings.Contains(err.Error(), "not an address") {
		t.Errorf("the whole site: %v, want node-005's address refused", err)
	}
}

// TestPrune_Data holds what counts as plain data.
func TestPrune_Data(t *testing.T) {
	for src, want := range map[string]bool{
		`{role: "x", fqdn: "y"}`:                        true,
		`{data: {a: [1, -2, "s", true, null], b: 1.5}}`: true,
		`{"a-b": {c: """
			multi
			"""}}`: true,
		`{role: X}`:               false,
		`{role: "x\(y)"}`:         false,
		`{a?: 1}`:                 false,
		`{a!: 1}`:                 false,
		`{#a: 1}`:                 false,
		`{_a: 1}`:                 false,
		`{[string]: 1}`:           false,
		`{for x in [1] {a: x}}`:   false,
		`{a: 1 | 2}`:              false,
		`{a: *1 | 2}`:             false,
		`{a: int}`:                false,
		`{let x = 1, a: x}`:       false,
		`{a: [...int]}`:           false,
		`{(a): 1}`:                false,
		`{a: {b: 1} & {c: 2}}`:    false,
		`{a: strings.ToUpper(b)}`: false,
	} {
		x, err := parser.ParseExpr("test", src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := isData(x); got != want {
			t.Errorf("isData(%s) = %v, want %v", src, got, want)
		}
	}
}
