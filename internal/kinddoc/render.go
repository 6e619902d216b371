package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/template"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Def is one definition of schema/kinds.cue that the page documents: a
// resource kind (Kind is its name in IDs) or a definition kinds share
// (#MariaDBServer, #PortMapping).
type Def struct {
	// Name is the definition's name, "#File".
	Name string
	// Kind is the kind's name ("file") for a resource kind, "" otherwise.
	Kind string
	// Doc is the definition's doc comment.
	Doc string
	// Embeds are the definitions it embeds ("#Common").
	Embeds []string
	// Fields are its fields, nested ones as "limits.maxQueriesPerHour"
	// and "ports[].host".
	Fields []Field
	// Checks are the messages of the schema's own checks across fields,
	// and the doc comment of the kind's check in #Kinds (an exec's guard).
	Checks []string
	// Example is the kind's example in #Kinds, CUE resources by ID.
	Example string
}

// Field is one field of a definition.
type Field struct {
	Name string
	// Type is the field's constraint without its default.
	Type string
	// Default is the default, "" for none.
	Default string
	// Required (name!) must be given; Optional (name?) may be absent.
	Required, Optional bool
	// FromID says the schema takes the field from the resource's ID.
	FromID bool
	// Doc is the field's doc comment.
	Doc string
}

// Page is what the template renders.
type Page struct {
	// Defs are the documented definitions in schema order.
	Defs []Def
	// kinds are the entries of #Kinds in schema order, by kind name.
	kinds []namedEntry
}

// namedEntry is a kind's entry in #Kinds with the kind's name.
type namedEntry struct {
	name string
	entry
}

// skipped are the definitions of kinds.cue that the template documents
// by hand or that are no struct of fields.
var skipped = map[string]bool{"#Common": true, "#MaxInline": true}

// parse reads the definitions of kinds.cue (its source, src).
func parse(src []byte) (*Page, error) {
	f, err := parser.ParseFile("schema/kinds.cue", src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse schema/kinds.cue: %w", err)
	}
	top := map[string]*ast.Field{}
	var order []string
	kinds := map[string]string{}  // definition -> kind
	fromID := map[string]string{} // definition -> field taken from the ID
	examples := map[string]string{}
	checks := map[string]string{} // definition -> its check's doc comment
	var entries []namedEntry
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, _ := ast.LabelName(fd.Label)
		if name == "#Kinds" {
			// "#Kinds: file: {def: #File, key: "path", example: ...}",
			// under each kind's definition.
			for _, e := range structElts(fd.Value) {
				kf, ok := e.(*ast.Field)
				if !ok {
					continue
				}
				kind, _, err := ast.LabelName(kf.Label)
				if err != nil || kind == "" {
					continue // the pattern every entry satisfies
				}
				entry := kindEntry(kf.Value)
				entries = append(entries, namedEntry{name: kind, entry: entry})
				kinds[entry.def] = kind
				fromID[entry.def] = entry.key
				examples[entry.def] = entry.example
				if entry.check != "" {
					checks[entry.def] = entry.check
				}
			}
			continue
		}
		top[name] = fd
		order = append(order, name)
	}
	p := &Page{kinds: entries}
	for _, name := range order {
		fd := top[name]
		st, ok := fd.Value.(*ast.StructLit)
		if !ok || skipped[name] || !strings.HasPrefix(name, "#") {
			continue
		}
		d := Def{Name: name, Kind: kinds[name], Doc: doc(fd), Example: examples[name]}
		d.walk(st, "", fromID[name], top)
		if c, ok := checks[name]; ok {
			d.Checks = append(d.Checks, c)
		}
		p.Defs = append(p.Defs, d)
	}
	return p, nil
}

// walk adds the fields of st, named under prefix; key is the field the
// schema takes from the ID. The fields of an embedded definition of top
// (#DockerEndpoint) are the spec's own and are listed with them; those of
// #Common are not part of a spec.
func (d *Def) walk(st *ast.StructLit, prefix, key string, top map[string]*ast.Field) {
	for _, e := range st.Elts {
		switch e := e.(type) {
		case *ast.EmbedDecl:
			name := source(e.Expr)
			if emb, ok := top[name]; ok && !skipped[name] {
				if est, ok := emb.Value.(*ast.StructLit); ok {
					d.walk(est, prefix, key, top)
					continue
				}
			}
			d.Embeds = append(d.Embeds, name)
		case *ast.Comprehension:
			d.Checks = append(d.Checks, errorMessages(source(&ast.StructLit{Elts: []ast.Decl{e}}))...)
		case *ast.Field:
			name, _, _ := ast.LabelName(e.Label)
			f := Field{
				Name:     prefix + name,
				Required: e.Constraint == token.NOT,
				Optional: e.Constraint == token.OPTION,
				FromID:   prefix == "" && name == key,
				Doc:      doc(e),
			}
			value := e.Value
			if inner, list := elemStruct(value); inner != nil {
				f.Type = "list"
				if !list {
					f.Type = "struct"
				}
				d.Fields = append(d.Fields, f)
				sub := f.Name + "."
				if list {
					sub = f.Name + "[]."
				}
				d.walk(inner, sub, "", top)
				continue
			}
			f.Type, f.Default = typeAndDefault(value)
			d.Fields = append(d.Fields, f)
		}
	}
}

// elemStruct returns the struct of fields that v is ({...}) or holds the
// elements of ([...{...}]), and whether it is a list's.
func elemStruct(v ast.Expr) (*ast.StructLit, bool) {
	switch v := v.(type) {
	case *ast.StructLit:
		for _, e := range v.Elts {
			if f, ok := e.(*ast.Field); ok {
				if _, ok := f.Label.(*ast.ListLit); ok {
					return nil, false // a pattern: a map, not a record
				}
				return v, false
			}
		}
	case *ast.ListLit:
		if len(v.Elts) == 1 {
			if el, ok := v.Elts[0].(*ast.Ellipsis); ok {
				if st, ok := el.Type.(*ast.StructLit); ok {
					return st, true
				}
			}
		}
	}
	return nil, false
}

// typeAndDefault returns a field's constraint, its marked default (*x)
// unmarked, and the default.
func typeAndDefault(v ast.Expr) (typ, def string) {
	var alts []string
	for _, a := range disjuncts(v) {
		if u, ok := a.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			def = source(u.X)
			a = u.X
		}
		alts = append(alts, source(a))
	}
	return strings.Join(alts, " | "), def
}

// disjuncts lists the alternatives of a | b | c.
func disjuncts(v ast.Expr) []ast.Expr {
	if b, ok := v.(*ast.BinaryExpr); ok && b.Op == token.OR {
		return append(disjuncts(b.X), disjuncts(b.Y)...)
	}
	return []ast.Expr{v}
}

// entry is what the page uses of a kind's entry in #Kinds.
type entry struct {
	// def is the definition's name, key the field taken from the ID
	// ("" for none), check the doc comment of its check, example the
	// example's CUE source.
	def, key, check, example string
	// hasCheck says the entry has a check.
	hasCheck bool
}

// kindEntry reads a kind's entry in #Kinds: {def: #File, key: "path",
// check: ..., example: {...}}.
func kindEntry(v ast.Expr) entry {
	var e entry
	for _, d := range structElts(v) {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		switch name, _, _ := ast.LabelName(f.Label); name {
		case "def":
			e.def = source(f.Value)
		case "key":
			if lit, ok := f.Value.(*ast.BasicLit); ok {
				e.key, _ = literal.Unquote(lit.Value)
			}
		case "check":
			e.check, e.hasCheck = doc(f), true
		case "example":
			e.example = example(f.Value)
		}
	}
	return e
}

// example formats an example's resources as CUE, one ID a paragraph.
func example(v ast.Expr) string {
	var parts []string
	for _, d := range structElts(v) {
		b, err := format.Node(d)
		if err != nil {
			continue
		}
		parts = append(parts, strings.TrimSpace(string(b)))
	}
	return strings.Join(parts, "\n")
}

func structElts(v ast.Expr) []ast.Decl {
	if st, ok := v.(*ast.StructLit); ok {
		return st.Elts
	}
	return nil
}

// space folds runs of white space, so that a value fits a table cell.
var space = regexp.MustCompile(`\s+`)

// source formats n as CUE on one line.
func source(n ast.Node) string {
	b, err := format.Node(n)
	if err != nil {
		return fmt.Sprintf("%v", n)
	}
	return strings.TrimSpace(space.ReplaceAllString(string(b), " "))
}

// errorRE finds the messages of error("...") in a check's source.
var errorRE = regexp.MustCompile(`error\("((?:[^"\\]|\\.)*)"\)`)

func errorMessages(src string) []string {
	var out []string
	for _, m := range errorRE.FindAllStringSubmatch(src, -1) {
		out = append(out, strings.ReplaceAll(m[1], `\"`, `"`))
	}
	return out
}

// doc returns a field's doc comment on one line.
func doc(f *ast.Field) string {
	var lines []string
	for _, cg := range ast.Comments(f) {
		if !cg.Doc {
			continue
		}
		for _, c := range cg.List {
			lines = append(lines, strings.TrimSpace(strings.TrimPrefix(c.Text, "//")))
		}
	}
	return strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
}

// render writes the page: tmpl (a text/template) with the definitions of
// kinds.cue (src). A template "note:<kind or definition>" defined in tmpl
// is the hand-written text under that definition's table.
func render(w io.Writer, src []byte, tmpl string) error {
	p, err := parse(src)
	if err != nil {
		return err
	}
	var t *template.Template
	funcs := template.FuncMap{
		"cell": func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
		// field writes a field's name as code, a nested one's last part
		// apart: ports[].host is written `ports[]`.`host`.
		"field": func(name string) string {
			if i := strings.LastIndex(name, "."); i >= 0 {
				return "`" + name[:i] + "`.`" + name[i+1:] + "`"
			}
			return "`" + name + "`"
		},
		"note": func(name string) (string, error) {
			nt := t.Lookup("note:" + name)
			if nt == nil {
				return "", nil
			}
			var b bytes.Buffer
			if err := nt.Execute(&b, nil); err != nil {
				return "", err
			}
			return strings.TrimSpace(b.String()), nil
		},
	}
	t, err = template.New("kinds.md").Funcs(funcs).Parse(tmpl)
	if err != nil {
		return fmt.Errorf("parse the template: %w", err)
	}
	if err := t.Execute(w, p); err != nil {
		return fmt.Errorf("render docs/kinds.md: %w", err)
	}
	return nil
}
