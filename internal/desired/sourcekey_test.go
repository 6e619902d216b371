package desired

import (
	"context"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
)

// TestSourceKeys_SameAsValues checks that nodes whose source keys agree
// have the same group key found from their values (never sharing more
// than the values allow), and that a generated fleet's nodes of a role
// still share one.
func TestSourceKeys_SameAsValues(t *testing.T) {
	extra := fleetFS(t, 60)
	extra["sites/example/more.cue"] = `package example

nodes: {
	// Same data as each other, not as the generated nodes.
	"data-1": {role: "feature_store_online", data: mariadb: maxConnections: 300}
	"data-2": {fqdn: "d2.internal", role: "feature_store_online", data: mariadb: maxConnections: 300}
	"data-3": {role: "feature_store_online", data: mariadb: maxConnections: 300, fqdn: "d3.internal"}
	"other-1": {role: "feature_store_online", data: mariadb: maxConnections: 301}
}
nodes: "data-3": {}
`
	s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	if sourceKeys(s.siteAST) == nil {
		t.Fatal("a site of plain entries has no source keys")
	}
	byValue := map[string]string{}
	bySource := map[string]string{}
	for _, name := range s.Nodes() {
		n := s.nodes[name]
		k, ok := s.computeGroupKey(n)
		if !ok {
			t.Fatalf("node %s: no source key", name)
		}
		bySource[name] = k
	}
	s.srcKeys, s.srcKeysDone = nil, true
	for _, name := range s.Nodes() {
		k, ok := s.computeGroupKey(s.nodes[name])
		if !ok {
			t.Fatalf("node %s: no value key", name)
		}
		byValue[name] = k
	}
	for _, a := range s.Nodes() {
		for _, b := range s.Nodes() {
			if bySource[a] == bySource[b] && byValue[a] != byValue[b] {
				t.Errorf("nodes %s and %s share a source key, not a value key", a, b)
			}
		}
	}
	if bySource["node-000"] != bySource["node-003"] || bySource["node-001"] != bySource["node-004"] {
		t.Error("generated nodes of one role do not share a source key")
	}
	if bySource["data-1"] != bySource["data-2"] {
		t.Error("nodes that differ only in their fqdn do not share a source key")
	}
	if bySource["data-1"] == bySource["other-1"] || bySource["data-1"] == bySource["node-000"] {
		t.Error("nodes with different data share a source key")
	}
	if bySource["data-1"] == bySource["data-3"] {
		// data-3 has a second, empty entry: another text, so another
		// key (sharing less is allowed, never more).
		t.Log("data-3's second entry did not change its key")
	}
}

// TestSourceKeys_Doubt lists site files from which a node's value is not
// certain from its entries: no source keys then.
func TestSourceKeys_Doubt(t *testing.T) {
	const head = "package s\n\nimport \"github.com/fsgit/fsgit/schema\"\n\nschema.#Site\n"
	plain := head + `nodes: {
	a: {role: "r"}
	b: {role: "r", data: x: [1, "two", {three: true}]}
}
`
	for name, tc := range map[string]struct {
		src  string
		want bool
	}{
		"plain":                   {plain, true},
		"let and hidden":          {head + "let x = 1\n_y: x\n#Z: int\nroles: r: data: v: x\n" + `nodes: a: {role: "r"}` + "\n", true},
		"pattern in nodes":        {head + `nodes: {[string]: data: x: 1, a: {role: "r"}}` + "\n", false},
		"reference in entry":      {head + "_r: \"r\"\n" + `nodes: a: {role: _r}` + "\n", false},
		"nodes by reference":      {head + "_n: a: {role: \"r\"}\nnodes: _n\n", false},
		"nodes unified":           {head + `nodes: {a: {role: "r"}} & {}` + "\n", false},
		"optional nodes":          {head + `nodes?: {a: {role: "r"}}` + "\n", false},
		"embedding":               {head + "_base\n_base: nodes: [string]: data: x: 1\n" + `nodes: a: {role: "r"}` + "\n", false},
		"top-level pattern":       {head + "[string]: _\n" + `nodes: a: {role: "r"}` + "\n", false},
		"computed label":          {head + "(\"no\" + \"des\"): a: data: x: 1\n" + `nodes: a: {role: "r"}` + "\n", false},
		"comprehension":           {head + "for x in [1] {nodes: a: data: y: x}\n" + `nodes: a: {role: "r"}` + "\n", false},
		"interpolated entry":      {head + `nodes: a: {role: "r", fqdn: "\(1)"}` + "\n", false},
		"entry not a struct":      {head + `nodes: a: 1` + "\n", false},
		"schema imported as s2":   {"package s\n\nimport s2 \"github.com/fsgit/fsgit/schema\"\n\ns2.#Site\n" + `nodes: a: {role: "r"}` + "\n", true},
		"another package's #Site": {"package s\n\nimport schema \"example.com/other\"\n\nschema.#Site\n" + `nodes: a: {role: "r"}` + "\n", false},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := parser.ParseFile(name+".cue", tc.src, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			got := sourceKeys([]*ast.File{f}) != nil
			if got != tc.want {
				t.Errorf("source keys: %v, want %v", got, tc.want)
			}
		})
	}
}
