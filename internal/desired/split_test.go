package desired

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/format"
)

// splitCatalog loads the site of files for node with the given splitMin
// (below 0: never split) and returns the node's catalog as JSON or the
// error's text, and whether the catalog came from a split evaluation.
func splitCatalog(t *testing.T, fsys fs.FS, siteDir, node string, splitMin int) (string, bool) {
	t.Helper()
	s, err := Load(context.Background(), Source{FS: fsys, SiteDir: siteDir, Node: node, splitMin: splitMin})
	if err != nil {
		return "load: " + err.Error(), false
	}
	cat, err := s.Catalog(node)
	split := s.split != nil
	if err != nil {
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("%s: %v", node, err)
		}
		return "catalog: " + err.Error(), split
	}
	b, err := json.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), split
}

// allKindsPlain is testdata/allkinds with its node's resources written
// out as plain data (the site builds them with a comprehension, which is
// never split), with more after them.
func allKindsPlain(t *testing.T, more string) map[string][]byte {
	t.Helper()
	s, err := LoadDir(context.Background(), "testdata/allkinds")
	if err != nil {
		t.Fatal(err)
	}
	v := s.site.LookupPath(cue.ParsePath("nodes.n.resources"))
	b, err := format.Node(v.Syntax(cue.Final()))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSuffix(strings.TrimSpace(string(b)), "}")
	return map[string][]byte{"sites/kinds/site.cue": []byte(`package kinds

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: schema.#Version
name:          "kinds"
roles: all: profiles: []
nodes: n: role: "all"
nodes: n: resources: ` + body + more + "}\n")}
}

// TestSplit_SameAsWhole: a node's catalog evaluated in two shares is the
// whole evaluation's, byte for byte: on every kind with every field, on the
// benchmark's site, and on sites/example's nodes (with profiles).
func TestSplit_SameAsWhole(t *testing.T) {
	// Resources of its own on a node whose role has profiles, one
	// required by a profile's (base's chrony config) and one requiring
	// a profile's; another node with one resource.
	example := exampleFS(t, map[string]string{"sites/example/extra.cue": `package example

nodes: "online-1": resources: {
	"file:/etc/a": {content: "a\n", require: ["package:chrony"]}
	"file:/etc/b": {content: "b\n", require: ["file:/etc/a"], notify: ["service:mariadb"]}
	"directory:/srv/x": {}
	"user:extra": {}
}
nodes: "offline-1": resources: "file:/etc/one": {content: "1\n"}
`})
	cases := []struct {
		name, siteDir, node string
		files               fs.FS
		split               bool
	}{
		{"every kind", "sites/kinds", "n", newMemFS(allKindsPlain(t, "")), true},
		{"files", "sites/bench", "bench", newMemFS(filesSiteFS(40)), true},
		{"example, profiles", "sites/example", "online-1", example, true},
		{"example, one resource", "sites/example", "offline-1", example, true},
		// No resources of its own: no split.
		{"example, none", "sites/example", "vector-1", example, false},
		// A site that reads nodes: no split.
		{"reads nodes", "sites/example", "online-1", exampleFS(t, map[string]string{
			"sites/example/extra.cue": "package example\n\nnodes: \"online-1\": resources: {\"file:/etc/a\": {content: \"a\"}, \"file:/etc/b\": {}}\n_n: nodes[\"vector-1\"].fqdn\n",
		}), false},
		// The node's resources declared twice: no split.
		{"declared twice", "sites/example", "online-1", exampleFS(t, map[string]string{
			"sites/example/extra.cue": "package example\n\nnodes: \"online-1\": resources: {\"file:/etc/a\": {content: \"a\"}, \"file:/etc/b\": {}}\nnodes: \"online-1\": resources: \"file:/etc/a\": mode: \"0600\"\n",
		}), false},
		// A label declared twice in the one struct: no split.
		{"label twice", "sites/example", "online-1", exampleFS(t, map[string]string{
			"sites/example/extra.cue": "package example\n\nnodes: \"online-1\": resources: {\"file:/etc/a\": {content: \"a\"}, \"file:/etc/a\": {mode: \"0600\"}}\n",
		}), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			whole, wasSplit := splitCatalog(t, c.files, c.siteDir, c.node, -1)
			if wasSplit {
				t.Fatal("split with splitMin -1")
			}
			if strings.HasPrefix(whole, "load:") || strings.HasPrefix(whole, "catalog:") {
				t.Fatalf("the whole evaluation fails: %s", whole)
			}
			got, wasSplit := splitCatalog(t, c.files, c.siteDir, c.node, 1)
			if got != whole {
				t.Errorf("split:\n%.800s\nwhole:\n%.800s", got, whole)
			}
			if wasSplit != c.split {
				t.Errorf("split: %v, want %v", wasSplit, c.split)
			}
		})
	}
}

// TestSplit_Problems: a mistake in either share, or one only the whole
// catalog shows, is reported exactly as the whole evaluation reports it
// (the site is then evaluated whole).
func TestSplit_Problems(t *testing.T) {
	cases := []struct{ name, first, last string }{
		{"bad mode", `"file:/etc/bad": {mode: "999"}`, ""},
		{"bad mode, last share", "", `"file:/etc/bad": {mode: "999"}`},
		{"unknown kind", "", `"nope:/x": {}`},
		{"closed kind", "", `"file:/etc/x": {colour: "red"}`},
		{"missing require", "", `"file:/etc/x": {require: ["file:/etc/none"]}`},
		{"cycle across shares", `"file:/etc/x": {require: ["file:/etc/y"]}`, `"file:/etc/y": {require: ["file:/etc/x"]}`},
		{"key and field disagree", "", `"file:/etc/x": {path: "/etc/y"}`},
		{"not a clean path", "", `"file:/etc/../x": {}`},
		{"duplicate of a kind's key", "", `"file:/etc/x": {owner: "Root"}`},
		{"over the inline limit", "", `"file:/etc/x": {content: "` + strings.Repeat("x", 1048577) + `"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(c.first)
			b.WriteString("\n")
			for i := range 20 {
				fmt.Fprintf(&b, "\"file:/srv/f%02d\": {content: \"%d\\n\"}\n", i, i)
			}
			b.WriteString(c.last)
			b.WriteString("\n")
			files := map[string][]byte{"sites/bad/site.cue": []byte(`package bad

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: schema.#Version
name:          "bad"
roles: r: profiles: []
nodes: n: role: "r"
nodes: n: resources: {
` + b.String() + "}\n")}
			whole, _ := splitCatalog(t, newMemFS(files), "sites/bad", "n", -1)
			got, wasSplit := splitCatalog(t, newMemFS(files), "sites/bad", "n", 1)
			if got != whole {
				t.Errorf("split:\n%.800s\nwhole:\n%.800s", got, whole)
			}
			if !strings.HasPrefix(whole, "catalog:") && !strings.HasPrefix(whole, "load:") {
				t.Errorf("the whole evaluation accepts it: %.300s", whole)
			}
			if wasSplit {
				t.Error("a catalog with a problem kept its split")
			}
		})
	}
}

// TestSplit_Warning: a catalog with a warning (an artifact's placeholder
// digest) is the whole evaluation's, warning included.
func TestSplit_Warning(t *testing.T) {
	t.Run("in the second share", func(t *testing.T) {
		files := newMemFS(allKindsPlain(t, `"artifact:/opt/zero.jar": {url: "https://example.org/z.jar", sha256: "`+strings.Repeat("0", 64)+`"}
`))
		testSplitWarning(t, files, "sites/kinds", "n", false)
	})
	// The profile spark_thrift_server's artifacts have the placeholder.
	t.Run("in a profile", func(t *testing.T) {
		files := exampleFS(t, map[string]string{"sites/example/extra.cue": `package example

nodes: "offline-1": resources: {
	"file:/etc/a": {content: "a\n"}
	"file:/etc/b": {content: "b\n"}
}
`})
		testSplitWarning(t, files, "sites/example", "offline-1", true)
	})
}

func testSplitWarning(t *testing.T, files fs.FS, siteDir, node string, keeps bool) {
	load := func(splitMin int) (*Site, string) {
		s, err := Load(context.Background(), Source{FS: files, SiteDir: siteDir, Node: node, splitMin: splitMin})
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		cat, _, probs := s.catalogFor(node)
		b, err := json.Marshal(struct {
			Cat   any
			Probs []Problem
		}{cat, probs})
		if err != nil {
			t.Fatal(err)
		}
		return s, string(b)
	}
	_, whole := load(-1)
	s, got := load(1)
	if got != whole {
		t.Errorf("split:\n%.800s\nwhole:\n%.800s", got, whole)
	}
	if !strings.Contains(whole, "placeholder") {
		t.Errorf("no warning: %.300s", whole)
	}
	if (s.split != nil) != keeps {
		t.Errorf("split kept: %v, want %v", s.split != nil, keeps)
	}
}

// TestSplit_OtherCallers: what a split site serves besides the node's
// catalog (its sources, the site's values, the other nodes) is what the
// whole site serves.
func TestSplit_OtherCallers(t *testing.T) {
	files := filesSiteFS(20)
	whole, err := Load(context.Background(), Source{FS: newMemFS(files), SiteDir: "sites/bench", Node: "bench", splitMin: -1})
	if err != nil {
		t.Fatal(err)
	}
	split, err := Load(context.Background(), Source{FS: newMemFS(files), SiteDir: "sites/bench", Node: "bench", splitMin: 1})
	if err != nil {
		t.Fatal(err)
	}
	if split.split == nil {
		t.Fatal("not split")
	}
	id := "file:/bench/files/f0019.conf"
	if got, want := split.Pos("nodes", "bench", "resources", id), whole.Pos("nodes", "bench", "resources", id); got != want || got == "" {
		t.Errorf("Pos: %q, want %q", got, want)
	}
	_, wsrc, err := whole.CatalogSources("bench")
	if err != nil {
		t.Fatal(err)
	}
	_, ssrc, err := split.CatalogSources("bench")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "mode", "owner", "require"} {
		if got, want := ssrc.Resource("file:/bench/files/f0019.conf", f), wsrc.Resource("file:/bench/files/f0019.conf", f); got != want || got == "" {
			t.Errorf("Sources.Resource(%q): %q, want %q", f, got, want)
		}
	}
}
