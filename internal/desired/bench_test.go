package desired

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/sitefiles"
)

// fleetFS is sites/example with its three nodes replaced by n nodes, a
// third of them per role.
func fleetFS(tb testing.TB, n int) map[string]string {
	tb.Helper()
	roles := []string{"feature_store_online", "feature_store_offline", "feature_store_vector"}
	var b strings.Builder
	b.WriteString("package example\n\nnodes: {\n")
	for i := range n {
		fmt.Fprintf(&b, "\t\"node-%03d\": {role: %q, fqdn: \"node-%03d.internal\"}\n", i, roles[i%3], i)
	}
	b.WriteString("}\n")
	return map[string]string{"sites/example/nodes.cue": b.String()}
}

func benchLoad(b *testing.B, extra map[string]string) {
	fsys := exampleFS(b, extra)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example"}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVet(b *testing.B, extra map[string]string) {
	fsys := exampleFS(b, extra)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example"})
		if err != nil {
			b.Fatal(err)
		}
		if probs := s.Vet(context.Background()); HasErrors(probs) {
			b.Fatal(probs)
		}
	}
}

func benchCatalog(b *testing.B, extra map[string]string, node string) {
	s, err := Load(context.Background(), Source{FS: exampleFS(b, extra), SiteDir: "sites/example"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Catalog(node); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad_Example is the fixed cost of a site: load and build.
func BenchmarkLoad_Example(b *testing.B) { benchLoad(b, nil) }

// BenchmarkVet_Example is what fsgit vet does on sites/example (without
// process start-up): load, then every node's catalog.
func BenchmarkVet_Example(b *testing.B) { benchVet(b, nil) }

// BenchmarkCatalog_Example is one node's catalog once the site is loaded.
func BenchmarkCatalog_Example(b *testing.B) { benchCatalog(b, nil, "offline-1") }

// BenchmarkLoad_300Nodes, BenchmarkCatalog_300Nodes and BenchmarkVet_300Nodes
// are the same on a generated fleet of 300 nodes: the cost of one node's
// catalog must not grow with the fleet.
func BenchmarkLoad_300Nodes(b *testing.B) { benchLoad(b, fleetFS(b, 300)) }

// BenchmarkCatalog_300Nodes is one node's catalog in a 300-node site.
func BenchmarkCatalog_300Nodes(b *testing.B) { benchCatalog(b, fleetFS(b, 300), "node-151") }

// BenchmarkVet_300Nodes is fsgit vet on a 300-node site.
func BenchmarkVet_300Nodes(b *testing.B) { benchVet(b, fleetFS(b, 300)) }

// BenchmarkLoad_1000Nodes, BenchmarkCatalog_1000Nodes and
// BenchmarkVet_1000Nodes are the same on 1,000 nodes: an agent evaluates
// its own node, whose cost must stay within 1.5x of the example's.
func BenchmarkLoad_1000Nodes(b *testing.B) { benchLoad(b, fleetFS(b, 1000)) }

// BenchmarkCatalog_1000Nodes is one node's catalog in a 1,000-node site.
func BenchmarkCatalog_1000Nodes(b *testing.B) { benchCatalog(b, fleetFS(b, 1000), "node-501") }

// BenchmarkVet_1000Nodes is fsgit vet on a 1,000-node site.
func BenchmarkVet_1000Nodes(b *testing.B) { benchVet(b, fleetFS(b, 1000)) }

// benchRender is what an agent and fsgit render do: load the site for one
// node, then that node's catalog.
func benchRender(b *testing.B, extra map[string]string, node string) {
	fsys := exampleFS(b, extra)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/example", Node: node})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Catalog(node); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender_Example is one node's load and catalog on sites/example.
func BenchmarkRender_Example(b *testing.B) { benchRender(b, nil, "offline-1") }

// BenchmarkRender_1000Nodes is the same on 1,000 nodes: within 1.5x of
// the example's (issue 14).
func BenchmarkRender_1000Nodes(b *testing.B) { benchRender(b, fleetFS(b, 1000), "node-501") }

// filesSiteFS is the site scripts/bench-vs-puppet.sh generates: one node
// that declares a directory and n files in it, each with content and a
// mode.
func filesSiteFS(n int) map[string][]byte {
	var b strings.Builder
	b.WriteString(`package bench

import "github.com/fsgit/fsgit/schema"

schema.#Site

schemaVersion: schema.#Version
name:          "bench"
roles: bench: profiles: []
nodes: bench: role: "bench"
nodes: bench: resources: {
	"directory:/bench/files": {mode: "0755"}
`)
	modes := []string{"0644", "0640", "0600"}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\t\"file:/bench/files/f%04d.conf\": {\n\t\trequire: [\"directory:/bench/files\"]\n\t\tmode:    %q\n\t\tcontent: \"# managed by the fsgit benchmark\\nid = %d\\nname = feature-store-%04d\\nbuffer_pool_size = %dM\\nlisten = 127.0.0.1:%d\\n\"\n\t}\n",
			i, modes[i%3], i, i, 128+i%64, 20000+i)
	}
	b.WriteString("}\n")
	return map[string][]byte{"sites/bench/site.cue": []byte(b.String())}
}

// BenchmarkRender_1000Files is one node's load and catalog on the site of
// scripts/bench-vs-puppet.sh: a node that declares 1,000 files itself, as
// fsgit apply's first run evaluates it.
func BenchmarkRender_1000Files(b *testing.B) { benchRenderFiles(b, 1000) }

// BenchmarkRender_0Files is BenchmarkRender_1000Files without the files:
// the fixed cost of the site.
func BenchmarkRender_0Files(b *testing.B) { benchRenderFiles(b, 0) }

func benchRenderFiles(b *testing.B, n int) {
	fsys := sitefiles.NewMemFS(filesSiteFS(n))
	b.ReportAllocs()
	for b.Loop() {
		s, err := Load(context.Background(), Source{FS: fsys, SiteDir: "sites/bench", Node: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Catalog("bench"); err != nil {
			b.Fatal(err)
		}
	}
}
