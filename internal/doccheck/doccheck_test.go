package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDocComments fails with one line per package without a package doc
// comment and per exported top-level name without a doc comment that starts
// with the name.
func TestDocComments(t *testing.T) {
	root := moduleRoot(t)
	findings, err := check(root)
	if err != nil {
		t.Fatalf("checking doc comments under %s: %v", root, err)
	}
	if len(findings) > 0 {
		t.Errorf("%d doc comment findings:\n%s", len(findings), strings.Join(findings, "\n"))
	}
}

// TestCheck_Rules runs the checker on a small module of its own so that each
// rule is shown to report what it should, and to accept what it should.
func TestCheck_Rules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n")
	write("good/good.go", `// Package good is documented.
package good

// Grouped consts share the group comment.
const (
	A = 1
	B = 2
)

// V is documented.
var V int

// T is documented.
type T struct{}

// M is documented.
func (T) M() {}

func (unexported) M() {}

type unexported struct{}

// A Thing is documented with an article.
type Thing int

// F is documented.
func F() {}

// G and H are generic.
type G[K comparable] struct{}

// Get is documented.
func (*G[K]) Get() {}
`)
	write("good/good_test.go", "package good\n\nfunc Undocumented() {}\n")
	write("good/testdata/x.go", "package x\n\nfunc Undocumented() {}\n")
	write("cmd/tool/main.go", "// Command tool is documented.\npackage main\n\nfunc main() {}\n")
	write("wrong/wrong.go", "// Copyright someone.\npackage wrong\n")
	write("bad/bad.go", `package bad

const C = 1

var (
	V1 = 1
	// wrong start.
	V2 = 2
)

// Something else.
type T struct{}

func (T) M() {}

func (*T) N() {}

func F() {}

type (
	// U is documented in a group.
	U int
	W int
)
`)
	got, err := check(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bad/bad.go:1: package bad has no package doc comment",
		"bad/bad.go:3: const C has no doc comment",
		"bad/bad.go:6: var V1 has no doc comment",
		"bad/bad.go:7: var V2: doc comment does not start with \"V2\"",
		"bad/bad.go:11: type T: doc comment does not start with \"T\"",
		"bad/bad.go:14: method T.M has no doc comment",
		"bad/bad.go:16: method T.N has no doc comment",
		"bad/bad.go:18: func F has no doc comment",
		"bad/bad.go:23: type W has no doc comment",
		"wrong/wrong.go:1: package wrong has no package doc comment",
		"wrong/wrong.go:1: package wrong: package doc comment does not start with \"Package wrong\"",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// moduleRoot walks up from the test's directory to the one holding go.mod.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// check parses every non-test .go file under root (skipping testdata, vendor,
// hidden and _-prefixed directories and generated files) and returns its
// findings as sorted "path:line: message" lines, paths relative to root.
func check(root string) ([]string, error) {
	fset := token.NewFileSet()
	type pkgKey struct{ dir, name string }
	type pkgInfo struct {
		first      string // relative path of the first file seen
		documented bool
	}
	pkgs := map[pkgKey]*pkgInfo{}
	type finding struct {
		file string
		line int
		msg  string
	}
	var found []finding

	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			// A nested module is not part of this one.
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("relativizing %s: %w", path, err)
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", rel, err)
		}
		key := pkgKey{filepath.Dir(rel), f.Name.Name}
		p := pkgs[key]
		if p == nil {
			p = &pkgInfo{first: rel}
			pkgs[key] = p
		}
		report := func(pos token.Pos, format string, args ...any) {
			found = append(found, finding{rel, fset.Position(pos).Line, fmt.Sprintf(format, args...)})
		}
		if text := docText(f.Doc); text != "" {
			// A library's comment starts "Package name"; a command's
			// "Command name" (go doc's convention for both).
			want := "Package " + f.Name.Name
			if f.Name.Name == "main" {
				want = "Command "
			}
			if strings.HasPrefix(text, want) {
				p.documented = true
			} else {
				report(f.Doc.Pos(), "package %s: package doc comment does not start with %q", f.Name.Name, want)
			}
		}
		if ast.IsGenerated(f) {
			return nil
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				checkFunc(decl, report)
			case *ast.GenDecl:
				checkGen(decl, report)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for key, p := range pkgs {
		if !p.documented {
			found = append(found, finding{p.first, 1, fmt.Sprintf("package %s has no package doc comment", key.name)})
		}
	}
	slices.SortFunc(found, func(a, b finding) int {
		if c := strings.Compare(a.file, b.file); c != 0 {
			return c
		}
		if a.line != b.line {
			return a.line - b.line
		}
		return strings.Compare(a.msg, b.msg)
	})
	findings := make([]string, len(found))
	for i, f := range found {
		findings[i] = fmt.Sprintf("%s:%d: %s", f.file, f.line, f.msg)
	}
	return findings, nil
}

// reporter records one finding at a position.
type reporter func(pos token.Pos, format string, args ...any)

// checkFunc checks an exported func, or an exported method on an exported
// receiver type.
func checkFunc(fn *ast.FuncDecl, report reporter) {
	if !fn.Name.IsExported() {
		return
	}
	what, label := "func", fn.Name.Name
	if fn.Recv != nil && len(fn.Recv.List) > 0 {
		recv := receiverName(fn.Recv.List[0].Type)
		if !ast.IsExported(recv) {
			return
		}
		what, label = "method", recv+"."+fn.Name.Name
	}
	checkDoc(fn.Doc, fn.Pos(), what, label, []string{fn.Name.Name}, report)
}

// receiverName is the base type name of a receiver: T for T, *T, T[K], *T[K, V].
func receiverName(expr ast.Expr) string {
	for {
		switch e := expr.(type) {
		case *ast.StarExpr:
			expr = e.X
		case *ast.ParenExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}

// checkGen checks the exported types, vars and consts of one declaration. A
// parenthesized const or var group with a doc comment covers its members.
func checkGen(gd *ast.GenDecl, report reporter) {
	if gd.Tok != token.TYPE && gd.Tok != token.VAR && gd.Tok != token.CONST {
		return
	}
	grouped := gd.Lparen.IsValid()
	groupDoc := grouped && gd.Doc != nil && (gd.Tok == token.VAR || gd.Tok == token.CONST)
	for _, spec := range gd.Specs {
		var doc *ast.CommentGroup
		var names []string
		var pos token.Pos
		switch s := spec.(type) {
		case *ast.TypeSpec:
			doc, pos = s.Doc, s.Pos()
			if s.Name.IsExported() {
				names = []string{s.Name.Name}
			}
		case *ast.ValueSpec:
			doc, pos = s.Doc, s.Pos()
			for _, n := range s.Names {
				if n.IsExported() {
					names = append(names, n.Name)
				}
			}
		}
		if len(names) == 0 {
			continue
		}
		if !grouped {
			doc = gd.Doc
		}
		if doc == nil && groupDoc {
			continue
		}
		checkDoc(doc, pos, gd.Tok.String(), strings.Join(names, ", "), names, report)
	}
}

// checkDoc reports a missing doc comment, or one whose first word is none of
// names (after an optional leading article, as in "A Foo is ...").
func checkDoc(doc *ast.CommentGroup, pos token.Pos, what, label string, names []string, report reporter) {
	text := docText(doc)
	if text == "" {
		report(pos, "%s %s has no doc comment", what, label)
		return
	}
	words := strings.Fields(text)
	first := words[0]
	if (first == "A" || first == "An" || first == "The") && len(words) > 1 {
		first = words[1]
	}
	first = strings.TrimRight(first, ".,:;")
	if slices.Contains(names, first) || slices.Contains(names, words[0]) {
		return
	}
	report(doc.Pos(), "%s %s: doc comment does not start with %q", what, label, names[0])
}

// docText is a comment group's text without surrounding space; "" for none.
func docText(doc *ast.CommentGroup) string {
	if doc == nil {
		return ""
	}
	return strings.TrimSpace(doc.Text())
}
