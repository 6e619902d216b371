package desired

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneWayIntoCUE fails when a non-test Go file outside internal/desired
// imports CUE: sites, the agent configuration and the schema's own facts
// (its version, its kinds) are all read here. internal/kinddoc, the
// generator of docs/kinds.md, reads the schema's source too.
func TestOneWayIntoCUE(t *testing.T) {
	allowed := map[string]bool{"internal/desired": true, "internal/kinddoc": true}
	fset := token.NewFileSet()
	checked := 0
	err := fs.WalkDir(os.DirFS(repoRoot), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if base := d.Name(); name != "." && (strings.HasPrefix(base, ".") || base == "testdata") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || allowed[filepath.ToSlash(filepath.Dir(name))] {
			return nil
		}
		f, err := parser.ParseFile(fset, filepath.Join(repoRoot, name), nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "cuelang.org/") {
				t.Errorf("%s imports %s: only internal/desired reads CUE", name, imp.Path.Value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Errorf("only %d Go files checked", checked)
	}
}
