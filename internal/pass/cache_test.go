package pass

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogCachePath_StaysInTheStateDirectory(t *testing.T) {
	dir := "/var/lib/fsgit"
	if got := CachePath(dir, "online-1.example.com"); got != "/var/lib/fsgit/catalog-online-1.example.com.json" {
		t.Errorf("plain node name: %s", got)
	}
	seen := map[string]string{}
	for _, node := range []string{"../../etc/passwd", "a/b", "..", "-rf", ".hidden", "n 1", ""} {
		got := CachePath(dir, node)
		if filepath.Dir(got) != dir || !strings.HasPrefix(filepath.Base(got), "catalog-") || strings.ContainsAny(strings.TrimPrefix(filepath.Base(got), "catalog-"), "/ ") {
			t.Errorf("node %q: cache file %s", node, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("nodes %q and %q share %s", prev, node, got)
		}
		seen[got] = node
	}
}
