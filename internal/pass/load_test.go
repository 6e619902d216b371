package pass

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fsgit/fsgit/internal/rootfs"
)

// TestSiteCatalog_Evaluating checks that Evaluating brackets the CUE
// evaluation, and only it: a catalog read from the cache calls nothing.
func TestSiteCatalog_Evaluating(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package s

import "github.com/fsgit/fsgit/schema"

schema.#Site

schemaVersion: schema.#Version
name:          "s"
roles: r: profiles: []
nodes: n1: role: "r"
nodes: n1: resources: "file:/etc/x": content: "x\n"
`
	if err := os.WriteFile(filepath.Join(site, "site.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := rootfs.New(dir)
	defer fsys.Close()
	var calls []string
	load := func() {
		t.Helper()
		sc := &SiteCatalog{
			Dir: site, Node: "n1", Log: slog.New(slog.DiscardHandler),
			Cache: &Cache{File: File{fsys, "/state/catalog-n1.json"}, Node: "n1"},
			Evaluating: func() func() {
				calls = append(calls, "evaluating")
				return func() { calls = append(calls, "evaluated") }
			},
		}
		cat, err := sc.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(cat.Resources) != 1 {
			t.Fatalf("catalog: %+v", cat.Resources)
		}
		sc.Keep()
	}
	load()
	if want := []string{"evaluating", "evaluated"}; !slices.Equal(calls, want) {
		t.Fatalf("first load: calls %v, want %v", calls, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "catalog-n1.json")); err != nil {
		t.Fatalf("not cached: %v", err)
	}
	load()
	if want := []string{"evaluating", "evaluated"}; !slices.Equal(calls, want) {
		t.Fatalf("load from the cache: calls %v, want %v", calls, want)
	}
}
