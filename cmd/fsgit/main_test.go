//go:build !lean

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuarded_PanicExitsOne: a panic in a command exits 1 (the runtime's
// own exit code for a panic, 2, means "changes applied"), with one line on
// stderr that names the crash file holding the stack.
func TestGuarded_PanicExitsOne(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FSGIT_CRASH_DIR", dir)
	var stderr bytes.Buffer
	code := guarded(&stderr, func() int {
		var m map[string]int
		m["boom"]++
		return 0
	})
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "fsgit: internal error: assignment to entry in nil map (details in "+dir) {
		t.Fatalf("stderr %q", got)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "fsgit-crash-*.txt"))
	if len(files) != 1 {
		t.Fatalf("crash files: %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), "TestGuarded_PanicExitsOne") {
		t.Fatalf("the crash file has no stack:\n%s", b)
	}
	if code := guarded(&stderr, func() int { return 6 }); code != 6 {
		t.Fatalf("exit code %d passed through as %d", 6, code)
	}
}
