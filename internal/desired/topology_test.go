package desired

import (
	"context"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/fsgit/fsgit/schema"
)

// TestBuiltinTopologyMatchesCUE checks the shortcut of the built-in
// #Topology (icebergCatalogHost found in Go, #Topology evaluated only for
// a prometheus_server node) against #Topology evaluated for every node:
// every catalog must be the same.
func TestBuiltinTopologyMatchesCUE(t *testing.T) {
	for name, extra := range map[string]map[string]string{
		"example": nil,
		// node-001 and node-004 are offline nodes (iceberg_catalog_db);
		// their fqdn sort in the other order than their names.
		"fleet": {"sites/example/nodes.cue": `package example

nodes: {
	"online-1": {role: "feature_store_online", fqdn: "online.internal"}
	"node-001": {role: "feature_store_offline", fqdn: "z-offline.internal"}
	"node-004": {role: "feature_store_offline", fqdn: "a-offline.internal"}
	"vector-1": {role: "feature_store_vector"}
	"monitoring-1": {role: "feature_store_monitoring"}
}
`},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := exampleFS(t, extra)
			fast, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example"})
			if err != nil {
				t.Fatal(err)
			}
			if !fast.topo.builtin {
				t.Fatal("the embedded profiles' #Topology is not taken for the built-in one")
			}
			slow, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example"})
			if err != nil {
				t.Fatal(err)
			}
			slow.topo.builtin = false
			if err := slow.evalTopology(); err != nil {
				t.Fatal(err)
			}
			if want, _ := slow.topo.out["icebergCatalogHost"].(string); fast.icebergCatalogHost() != want || want == "" {
				t.Errorf("icebergCatalogHost = %q, #Topology says %q", fast.icebergCatalogHost(), want)
			}
			for _, node := range fast.Nodes() {
				a, err := fast.Catalog(node)
				if err != nil {
					t.Fatal(err)
				}
				b, err := slow.Catalog(node)
				if err != nil {
					t.Fatal(err)
				}
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if string(ja) != string(jb) {
					t.Errorf("node %s: the catalog differs from the one #Topology gives:\n%s\n%s", node, ja, jb)
				}
			}
		})
	}
}

// TestOwnTopologyEvaluated checks that a site whose profiles change a file
// that defines #Topology is evaluated through #Topology, at load.
func TestOwnTopologyEvaluated(t *testing.T) {
	extra := map[string]string{}
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		extra["schema/"+name] = string(b)
	}
	same, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	if !same.topo.builtin {
		t.Error("the embedded profiles, copied into the tree, are not taken for the built-in #Topology")
	}
	extra["schema/profile/catalog.cue"] += "\n// changed\n"
	s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	if s.topo.builtin || !s.topo.done {
		t.Fatalf("a changed #Topology is taken for the built-in one (builtin %v, evaluated %v)", s.topo.builtin, s.topo.done)
	}
}
