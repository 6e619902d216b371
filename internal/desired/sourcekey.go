package desired

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/schema"
)

// A node's group key (groups.go) is a digest of every value of the node
// but its identity. Exporting those values from CUE (writeValue) costs
// ~0.3 ms a node: most of the group keys' cost at 1,000 nodes, paid by
// vet, and by plan at each revision. A fleet's inventory is usually plain
// data, though, and then the node's value is known from its source: the
// schema's #Node (the same for every node, but its name) unified with the
// node's entries. sourceKeys reads the entries when that is certain:
//
//   - every declaration of the site's nodes is an entry of a top-level
//     `nodes: {...}` whose value is plain data (isData): no reference, no
//     comprehension, no pattern, no constraint;
//   - nothing else in the site's files can add to nodes: no other field
//     named nodes at the top level, no top-level pattern or computed
//     label, no top-level comprehension, and no embedding but the
//     schema's #Site.
//
// Two nodes whose entries read the same, their identity (name, fqdn)
// aside, then have the same values but for their identity. The converse
// need not hold (two spellings of one value give two keys): that only
// shares less. Any doubt gives no source keys, and every node's key is
// then found from its values, as before.

// identityFree is the text of a node's entries without their top-level
// identity fields, in file order, one per line.
func identityFree(entries []*ast.StructLit) (string, bool) {
	var b strings.Builder
	for _, lit := range entries {
		kept := make([]ast.Decl, 0, len(lit.Elts))
		for _, d := range lit.Elts {
			if f, ok := d.(*ast.Field); ok {
				if name, ok := plainLabel(f.Label); ok && identity(name) {
					continue
				}
			}
			kept = append(kept, d)
		}
		txt, err := format.Node(&ast.StructLit{Elts: kept})
		if err != nil {
			return "", false
		}
		b.WriteString(strconv.Itoa(len(txt)))
		b.WriteByte('\x00')
		b.Write(txt)
		b.WriteByte('\n')
	}
	return b.String(), true
}

// sourceKeys returns, by node, the text its group key is taken from
// (identityFree of its entries), or nil when the site's files do not make
// the nodes' values certain from their entries.
func sourceKeys(files []*ast.File) map[string]string {
	entries := map[string][]*ast.StructLit{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.Attribute, *ast.LetClause:
			case *ast.EmbedDecl:
				if !embedsSchemaSite(f, d.Expr) {
					return nil
				}
			case *ast.Field:
				if !topLevelField(d, entries) {
					return nil
				}
			default:
				return nil
			}
		}
	}
	out := make(map[string]string, len(entries))
	for name, es := range entries {
		txt, ok := identityFree(es)
		if !ok {
			return nil
		}
		out[name] = txt
	}
	return out
}

// topLevelField checks a top-level field of a site file: a `nodes: {...}`
// of plain entries, which it adds to entries, or a field that cannot be
// nodes. It reports false when the field may add to nodes otherwise.
func topLevelField(f *ast.Field, entries map[string][]*ast.StructLit) bool {
	var name string
	switch l := f.Label.(type) {
	case *ast.Ident:
		name = l.Name
	case *ast.BasicLit:
		s, ok := stringLit(l)
		if !ok {
			return false
		}
		name = s
	default:
		// A pattern, a computed label or an alias.
		return false
	}
	if name != "nodes" {
		return true
	}
	lit, ok := f.Value.(*ast.StructLit)
	if !ok || f.Constraint != token.ILLEGAL {
		return false
	}
	for _, e := range lit.Elts {
		switch e := e.(type) {
		case *ast.CommentGroup:
		case *ast.Field:
			node, ok := plainLabel(e.Label)
			if !ok || e.Constraint != token.ILLEGAL || !isData(e.Value) {
				return false
			}
			v, ok := e.Value.(*ast.StructLit)
			if !ok {
				return false
			}
			entries[node] = append(entries[node], v)
		default:
			return false
		}
	}
	return true
}

// embedsSchemaSite reports whether x, embedded at the top of f, is the
// schema's #Site (schema.#Site, through f's import of the schema).
func embedsSchemaSite(f *ast.File, x ast.Expr) bool {
	sel, ok := x.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	if name, _, _ := ast.LabelName(sel.Sel); name != "#Site" {
		return false
	}
	isSchema := func(spec *ast.ImportSpec) bool {
		p, err := strconv.Unquote(spec.Path.Value)
		return err == nil && p == schema.ImportPath
	}
	if id.Node != nil {
		// The parser resolved the identifier: to an import, or to
		// something of the file's that hides one.
		spec, ok := id.Node.(*ast.ImportSpec)
		return ok && isSchema(spec)
	}
	for spec := range f.ImportSpecs() {
		local := "schema"
		if spec.Name != nil {
			local = spec.Name.Name
		}
		if isSchema(spec) && local == id.Name {
			return true
		}
	}
	return false
}

// sourceKey is the text node's group key is taken from when the site's
// nodes are plain data (sourceKeys), found once per load; ok is false
// when the key must be found from the node's values.
func (s *Site) sourceKey(node string) (string, bool) {
	if !s.srcKeysDone {
		s.srcKeysDone = true
		s.srcKeys = sourceKeys(s.siteAST)
	}
	txt, ok := s.srcKeys[node]
	return txt, ok
}
