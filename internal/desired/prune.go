package desired

import (
	"errors"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/schema"
)

// Loading a site for one node ([Source.Node]: an agent, fsgit render, fsgit
// apply) need not evaluate the other nodes: a node's catalog is computed
// from its own entry, its role and the site's data, plus the topology. So
// that its cost does not grow with the fleet, the entries of the other
// nodes are taken out of the site's syntax before it is evaluated, where
// that cannot change the node's catalog:
//
//   - an entry is taken out only when it is plain data (structs, lists and
//     literals: no reference, no comprehension, no pattern), which is how a
//     fleet's inventory is written; a node with any other entry is kept;
//   - nothing is taken out when a file of the site refers to nodes (a
//     comprehension over the fleet, a reference to another node), or when
//     the profiles are not the built-in ones that define #Topology, or
//     import a package other than the standard library and the schema;
//   - the built-in topology's icebergCatalogHost (the first fqdn of the
//     nodes whose role lists iceberg_catalog_db) is found from the entries
//     taken out, and the node it names is evaluated to check its fqdn;
//   - a node whose role lists prometheus_server, which reads the whole
//     fleet, and any doubt (a node that is not plain data where it
//     matters, a topology that does not evaluate) load the whole site.
//
// What changes is only what another node's mistake does: a node whose
// entry does not validate no longer stops the others' catalogs (fsgit vet,
// which evaluates every node, still reports it, and that node refuses its
// own). The one exception is the node that icebergCatalogHost names, whose
// fqdn every catalog carries.

// errWholeSite makes Load evaluate the whole site after all.
var errWholeSite = errors.New("the node's catalog needs the whole site")

// prunedNode is another node, taken out of the evaluation: what the
// built-in topology may need of it.
type prunedNode struct {
	name    string
	role    string     // its role, as its entries set it
	fqdn    string     // its fqdn, "" when no entry sets it (the default is its name)
	entries []ast.Expr // its entries' values: plain data
}

// nodeEntry is one entry of the top-level nodes struct: `"db1": {...}` in
// `nodes: {...}`.
type nodeEntry struct {
	lit   *ast.StructLit // the nodes struct it is in
	field *ast.Field
}

// importsNoSite reports whether the profiles import nothing but the
// standard library and the schema, so that nothing of theirs can read a
// site. (Taking nodes out also needs the built-in #Topology.)
func importsNoSite(profileImports []string) bool {
	for _, p := range profileImports {
		if p != schema.ImportPath && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			return false
		}
	}
	return true
}

// prune takes out of files the entries of the nodes other than keep that
// are plain data, and returns those nodes by name. It returns nil and
// leaves files alone when a file, or a file of a package the site
// imports, reads nodes, or when keep has no entry of its own (its catalog then needs whatever declares it).
func prune(files []*ast.File, keep string, imported []*ast.File) map[string]*prunedNode {
	if readsNodes(files) || readsNodes(imported) {
		return nil
	}
	byNode := map[string][]nodeEntry{}
	var order []string
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok || fd.Constraint != token.ILLEGAL {
				continue
			}
			if name, ok := plainLabel(fd.Label); !ok || name != "nodes" {
				continue
			}
			lit, ok := fd.Value.(*ast.StructLit)
			if !ok {
				continue
			}
			for _, e := range lit.Elts {
				ef, ok := e.(*ast.Field)
				if !ok || ef.Constraint != token.ILLEGAL {
					continue
				}
				name, ok := plainLabel(ef.Label)
				if !ok {
					continue
				}
				if byNode[name] == nil {
					order = append(order, name)
				}
				byNode[name] = append(byNode[name], nodeEntry{lit: lit, field: ef})
			}
		}
	}
	if byNode[keep] == nil {
		return nil
	}
	out := map[string]*prunedNode{}
	drop := map[*ast.Field]bool{}
	for _, name := range order {
		if name == keep {
			continue
		}
		n := plainNode(name, byNode[name])
		if n == nil {
			continue
		}
		out[name] = n
		for _, e := range byNode[name] {
			drop[e.field] = true
		}
	}
	if len(out) == 0 {
		return nil
	}
	done := map[*ast.StructLit]bool{}
	for _, es := range byNode {
		for _, e := range es {
			if done[e.lit] {
				continue
			}
			done[e.lit] = true
			e.lit.Elts = slices.DeleteFunc(e.lit.Elts, func(d ast.Decl) bool {
				f, ok := d.(*ast.Field)
				return ok && drop[f]
			})
		}
	}
	return out
}

// siteImports are the files of the packages the site imports, directly or
// not, but the schema's: a package shared by sites may read the nodes of
// a site that embeds it.
func siteImports(inst *build.Instance) []*ast.File {
	var files []*ast.File
	seen := map[*build.Instance]bool{}
	var walk func(*build.Instance)
	walk = func(i *build.Instance) {
		for _, imp := range i.Imports {
			if seen[imp] || imp.ImportPath == schema.ImportPath {
				continue
			}
			seen[imp] = true
			files = append(files, imp.Files...)
			walk(imp)
		}
	}
	walk(inst)
	return files
}

// plainNode returns the node of the entries when every one is plain data
// and they agree on a role (and on an fqdn, where they set one); nil
// otherwise, and the node is kept.
func plainNode(name string, entries []nodeEntry) *prunedNode {
	n := &prunedNode{name: name}
	for _, e := range entries {
		if !isData(e.field.Value) {
			return nil
		}
		lit, ok := e.field.Value.(*ast.StructLit)
		if !ok {
			return nil
		}
		for _, d := range lit.Elts {
			f, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			label, _ := plainLabel(f.Label)
			var into *string
			switch label {
			case "role":
				into = &n.role
			case "fqdn":
				into = &n.fqdn
			default:
				continue
			}
			s, ok := stringLit(f.Value)
			if !ok || (*into != "" && *into != s) {
				return nil
			}
			*into = s
		}
		n.entries = append(n.entries, e.field.Value)
	}
	if n.role == "" {
		// No role: a problem of that node, which the whole site reports.
		return nil
	}
	return n
}

// readsNodes reports whether any file refers to a field named nodes (by
// name, selector or index) other than by declaring it: the site may then
// read other nodes into one node's catalog.
func readsNodes(files []*ast.File) bool {
	labels := map[*ast.Ident]bool{}
	found := false
	for _, f := range files {
		ast.Walk(f, func(n ast.Node) bool {
			if fd, ok := n.(*ast.Field); ok {
				switch l := fd.Label.(type) {
				case *ast.Ident:
					labels[l] = true
				case *ast.Alias:
					// X=nodes: ... would let X read it.
					found = true
				}
			}
			return !found
		}, nil)
	}
	for _, f := range files {
		if found {
			break
		}
		ast.Walk(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				if x.Name == "nodes" && !labels[x] {
					found = true
				}
			case *ast.SelectorExpr:
				if name, _, _ := ast.LabelName(x.Sel); name == "nodes" {
					found = true
				}
			case *ast.IndexExpr:
				if s, ok := stringLit(x.Index); ok && s == "nodes" {
					found = true
				}
			}
			return !found
		}, nil)
	}
	return found
}

// isData reports whether x is plain data: structs of regular fields,
// lists and literals, without references, comprehensions, patterns,
// interpolations or constraints.
func isData(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		return true
	case *ast.UnaryExpr:
		_, ok := x.X.(*ast.BasicLit)
		return ok && (x.Op == token.SUB || x.Op == token.ADD)
	case *ast.ParenExpr:
		return isData(x.X)
	case *ast.ListLit:
		for _, e := range x.Elts {
			if !isData(e) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		for _, d := range x.Elts {
			switch f := d.(type) {
			case *ast.CommentGroup, *ast.Attribute:
			case *ast.Field:
				if _, ok := plainLabel(f.Label); !ok || f.Constraint != token.ILLEGAL || !isData(f.Value) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	return false
}

// plainLabel returns the name of a regular field's label: an identifier
// that is not a definition or hidden, or a string literal.
func plainLabel(l ast.Label) (string, bool) {
	switch l := l.(type) {
	case *ast.Ident:
		if strings.HasPrefix(l.Name, "#") || strings.HasPrefix(l.Name, "_") {
			return "", false
		}
		return l.Name, true
	case *ast.BasicLit:
		return stringLit(l)
	}
	return "", false
}

// stringLit returns the value of a string literal.
func stringLit(x ast.Expr) (string, bool) {
	b, ok := x.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := literal.Unquote(b.Value)
	if err != nil {
		return "", false
	}
	return s, true
}

// checkPruned decides whether the site, evaluated without the nodes of
// pruned, serves its node as the whole site would: the topology must be
// the built-in one, the node's role must not need the whole fleet, and
// icebergCatalogHost is found here, from the nodes kept and those taken
// out. It returns errWholeSite otherwise.
func (s *Site) checkPruned(pruned map[string]*prunedNode) error {
	n := s.nodes[s.src.Node]
	if !s.topo.builtin || n == nil {
		return errWholeSite
	}
	if r := s.roles[n.role]; r != nil && slices.Contains(r.profiles, builtinPart) {
		return errWholeSite
	}
	hosts, ok := s.icebergHosts()
	if !ok {
		return errWholeSite
	}
	var first *prunedNode
	for _, p := range pruned {
		// The first by host, then by name: the same node every time.
		if s.icebergRole(p.role) && (first == nil || p.host() < first.host() || p.host() == first.host() && p.name < first.name) {
			first = p
		}
	}
	host := ""
	if len(hosts) > 0 {
		host = slices.Min(hosts)
	}
	if first != nil && (host == "" || first.host() < host) {
		// The host is a node taken out: evaluate it, as the whole site
		// would, to be sure of its fqdn.
		nodes := s.site.LookupPath(cue.MakePath(cue.Str("nodes")))
		at := cue.MakePath(cue.Str(first.name))
		for _, e := range first.entries {
			nodes = nodes.FillPath(at, s.ctx.BuildExpr(e))
		}
		v := nodes.LookupPath(at)
		h, err := v.LookupPath(cue.MakePath(cue.Str("fqdn"))).String()
		if err != nil || v.Validate() != nil || h != first.host() {
			return errWholeSite
		}
		host = h
	}
	s.topo.icebergDone = true
	s.topo.iceberg = host
	return nil
}

// host is the node's fqdn as its entries give it (its name by default).
func (p *prunedNode) host() string {
	if p.fqdn != "" {
		return p.fqdn
	}
	return p.name
}
