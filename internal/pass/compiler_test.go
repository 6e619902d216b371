package pass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// cachedSite returns a SiteCatalog for node n1 whose cache, in a new
// directory, holds cat under key "k" for build "b", and the number of
// times its compiler evaluated.
func cachedSite(t *testing.T, cat *reconciler.Catalog, has func(string) bool) (*SiteCatalog, *int) {
	t.Helper()
	fsys := rootfs.New(t.TempDir())
	t.Cleanup(func() { fsys.Close() })
	build := func() (string, bool) { return "b", true }
	c := &Cache{File: File{fsys, "/catalog-n1.json"}, Node: "n1", Build: build}
	if err := c.write("k", cat); err != nil {
		t.Fatal(err)
	}
	evaluated := 0
	s := &SiteCatalog{
		Dir: "site", Node: "n1", Cache: c,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Compiler: Compiler{
			Key: func(string) (string, error) { return "k", nil },
			Evaluate: func(context.Context, string, string) (*reconciler.Catalog, string, error) {
				evaluated++
				return &reconciler.Catalog{Node: "n1"}, "k2", nil
			},
			Build: build,
			Has:   has,
		},
	}
	return s, &evaluated
}

func catalogOf(ids ...reconciler.ID) *reconciler.Catalog {
	cat := &reconciler.Catalog{Node: "n1"}
	for _, id := range ids {
		cat.Resources = append(cat.Resources, reconciler.Resource{ID: id, Spec: json.RawMessage(`{}`)})
	}
	return cat
}

func TestSiteCatalog_CachedCatalogOfALackingKindIsEvaluated(t *testing.T) {
	noDocker := func(kind string) bool { return kind != "docker.volume" }
	for _, tc := range []struct {
		name string
		cat  *reconciler.Catalog
		has  func(string) bool
		want int // evaluations
	}{
		{"every kind there", catalogOf("file:/a", "directory:/b"), noDocker, 0},
		{"Has not set", catalogOf("file:/a", "docker.volume:v"), nil, 0},
		{"a kind lacking", catalogOf("file:/a", "docker.volume:v"), noDocker, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, evaluated := cachedSite(t, tc.cat, tc.has)
			cat, err := s.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if *evaluated != tc.want {
				t.Errorf("evaluated %d times, want %d", *evaluated, tc.want)
			}
			if got := len(cat.Resources); tc.want == 0 && got != len(tc.cat.Resources) {
				t.Errorf("the cached catalog has %d resources, want %d", got, len(tc.cat.Resources))
			}
		})
	}
}

func TestCompiler_MemoryLacks(t *testing.T) {
	c := Compiler{Has: func(kind string) bool { return kind == "file" }}
	file := reconciler.ID("file:/a")
	for _, tc := range []struct {
		name string
		mem  *reconciler.Memory
		want reconciler.ID
	}{
		{"nil memory", nil, ""},
		{"empty", reconciler.NewMemory(), ""},
		{"inventory", &reconciler.Memory{Inventory: map[reconciler.ID]reconciler.Resource{file: {ID: file}, "docker.volume:v": {ID: "docker.volume:v"}}}, "docker.volume:v"},
		{"observed", &reconciler.Memory{Observed: map[reconciler.ID]reconciler.ObservedState{"docker.image:i": {}}}, "docker.image:i"},
		{"refresh owed", &reconciler.Memory{Refresh: map[reconciler.ID][]reconciler.ID{"docker.container:c": {file}}}, "docker.container:c"},
		{"applied catalog", &reconciler.Memory{Applied: []reconciler.AppliedCatalog{{Revision: "r", Resources: []reconciler.ID{file, "docker.image:old"}}}}, "docker.image:old"},
		{"files only", &reconciler.Memory{Inventory: map[reconciler.ID]reconciler.Resource{file: {ID: file}}}, ""},
	} {
		if got := c.memoryLacks(tc.mem); got != tc.want {
			t.Errorf("%s: memoryLacks = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (Compiler{}).memoryLacks(&reconciler.Memory{Inventory: map[reconciler.ID]reconciler.Resource{"docker.volume:v": {}}}); got != "" {
		t.Errorf("without Has: memoryLacks = %q, want none", got)
	}
	err := error(&LackingKindError{ID: "docker.volume:v"})
	var lk *LackingKindError
	if !errors.As(err, &lk) || err.Error() != `this program has no kind "docker.volume" (resource docker.volume:v)` {
		t.Errorf("LackingKindError: %v", err)
	}
}

// BenchmarkCompiler_MemoryLacks: the front's walk of a node's memory on
// each run, at the benchmark's 1,000 files (1,001 inventory and observed
// entries, three applied catalogs).
func BenchmarkCompiler_MemoryLacks(b *testing.B) {
	reg := map[string]bool{"file": true, "directory": true}
	c := Compiler{Has: func(kind string) bool { return reg[kind] }}
	m := reconciler.NewMemory()
	ids := []reconciler.ID{"directory:/bench/files"}
	for i := range 1000 {
		ids = append(ids, reconciler.ID(fmt.Sprintf("file:/bench/files/f%04d.conf", i)))
	}
	for _, id := range ids {
		m.Inventory[id] = reconciler.Resource{ID: id}
		m.Observed[id] = reconciler.ObservedState{}
	}
	for range 3 {
		m.Applied = append(m.Applied, reconciler.AppliedCatalog{Revision: "r", Resources: ids})
	}
	for b.Loop() {
		if id := c.memoryLacks(m); id != "" {
			b.Fatal(id)
		}
	}
}
