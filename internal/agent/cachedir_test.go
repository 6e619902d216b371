package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestCacheDirOf_KeepsTheOldPlace(t *testing.T) {
	dir := t.TempDir()
	def, legacy := filepath.Join(dir, "cache/fsgit/git"), filepath.Join(dir, "lib/fsgit/cache")
	log := slog.New(slog.DiscardHandler)
	if got := cacheDirOf(def, def, legacy, log); got != def {
		t.Fatalf("new node: %s, want %s", got, def)
	}
	if err := os.MkdirAll(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := cacheDirOf(def, def, legacy, log); got != legacy {
		t.Fatalf("node with the old cache: %s, want %s", got, legacy)
	}
	if got := cacheDirOf("/elsewhere", def, legacy, log); got != "/elsewhere" {
		t.Fatalf("configured: %s, want /elsewhere", got)
	}
	if err := os.MkdirAll(def, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := cacheDirOf(def, def, legacy, log); got != def {
		t.Fatalf("both exist: %s, want the new %s", got, def)
	}
}
