package desired

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"cuelang.org/go/cue"

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

// TestScrapeTargetsMatchCUE holds the built-in #Topology's out computed in
// Go (builtinOut: scrape targets and icebergCatalogHost) to #Topology
// evaluated in CUE, on sites that set the values it reads in each layer.
func TestScrapeTargetsMatchCUE(t *testing.T) {
	fleet := `package example

nodes: {
	"online-1": {role: "feature_store_online", fqdn: "online.internal"}
	"online-2": {role: "feature_store_online", data: monitoring: nodeExporter: port: 9200}
	"node-001": {role: "feature_store_offline", fqdn: "z-offline.internal"}
	"node-004": {role: "feature_store_offline", fqdn: "a-offline.internal", data: monitoring: mysqldExporter: port: 9999}
	"vector-1": {role: "feature_store_vector"}
	"vector-2": {role: "feature_store_vector", data: weaviate: metrics: {enabled: true, port: 2200}}
	"vector-3": {role: "feature_store_vector", data: weaviate: metrics: enabled: false}
	"vector-4": {role: "feature_store_vector", data: weaviate: {}}
	"monitoring-1": {role: "feature_store_monitoring"}
	"monitoring-2": {role: "feature_store_monitoring", fqdn: "m2.internal", data: monitoring: {prometheus: port: 9091, alertmanager: port: 9094}}
}
`
	b, err := fs.ReadFile(exampleFS(t, nil), "sites/example/site.cue")
	if err != nil {
		t.Fatal(err)
	}
	noAgent := strings.Replace(string(b), "monitoring: agent: metricsPort: 9469", "", 1)
	if noAgent == string(b) {
		t.Fatal("sites/example/site.cue no longer sets the agent's metrics port: update the test")
	}
	for name, extra := range map[string]map[string]string{
		"example": nil,
		"fleet":   {"sites/example/nodes.cue": fleet},
		// The role layer sets ports; the node layer of online-2 wins.
		"role ports": {
			"sites/example/nodes.cue": fleet,
			"sites/example/zz_roles.cue": `package example

roles: feature_store_online: data: monitoring: {nodeExporter: port: 9300, mysqldExporter: port: 9301}
roles: feature_store_vector: data: weaviate: metrics: port: 2300
`,
		},
		// No agent metrics port in the site layer: no fsgit job.
		"no agent port": {"sites/example/site.cue": noAgent, "sites/example/nodes.cue": fleet},
		// No prometheus_server node: no part at all.
		"no server": {"sites/example/nodes.cue": `package example

nodes: "online-1": {role: "feature_store_online"}
`},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := exampleFS(t, extra)
			s, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example"})
			if err != nil {
				t.Fatal(err)
			}
			if !s.topo.builtin {
				t.Fatal("not the built-in #Topology")
			}
			got, ok := s.builtinOut()
			if !ok {
				t.Fatal("builtinOut gave up on plain data")
			}
			out := s.topo.def.FillPath(cue.ParsePath("site"), s.site).LookupPath(cue.ParsePath("out"))
			var want map[string]any
			if err := out.Decode(&want); err != nil {
				t.Fatal(err)
			}
			jg, _ := json.Marshal(got)
			jw, _ := json.Marshal(want)
			if string(jg) != string(jw) {
				t.Errorf("builtinOut:\n%s\n#Topology.out:\n%s", jg, jw)
			}
		})
	}
}

// TestScrapeTargets_NotPlainData checks that a value the Go cannot read as
// the CUE does (not concrete) leaves the topology to the CUE.
func TestScrapeTargets_NotPlainData(t *testing.T) {
	s, err := Load(context.Background(), Source{FS: exampleFS(t, map[string]string{
		"sites/example/zz_roles.cue": `package example

roles: feature_store_online: data: monitoring: nodeExporter: port: 9300.5
`}), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.scrapeTargets(); ok {
		t.Error("scrapeTargets read a port that is not an integer")
	}
}
