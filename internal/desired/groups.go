package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/reconciler"
)

// Nodes of one role that differ only in their name and fqdn (the usual
// case in a fleet: same role, same data, same resources) get most of their
// catalog from the same evaluation. The group's catalog is evaluated once
// with the name and fqdn left open: a part (a profile's resources, the
// role's, the node's) that comes out concrete and valid does not depend on
// them, since unification only adds to it; giving a name can make it
// neither different nor, for what the catalog holds, invalid. A test of
// whether the name unifies with something (`!= _|_`) is the exception:
// a part is shared only if the catalog evaluated with stand-ins for the
// name and fqdn (template.go) has the same. Those parts are decoded once
// and shared. The profiles that read the name or fqdn (weaviate_node's
// CLUSTER_HOSTNAME) are evaluated per node, alone, through #Catalog's
// skip, or once for the group when they only copy them (template.go). Any doubt (the group's data is not valid, a shared
// part is not concrete, a per-node part has a problem) falls back to evaluating the
// node on its own, so that what vet reports is what one node's evaluation
// reports.

// minGroup is the smallest group worth a shared evaluation: the group's
// evaluation costs about one node's.
const minGroup = 3

// identity reports whether a field of a node is one its group leaves
// open.
func identity(field string) bool { return field == "name" || field == "fqdn" }

// group is what the nodes of one group share, in one Site (one CUE
// context): found on the first node asked for.
type group struct {
	ok      bool        // the shared evaluation is usable
	data    cue.Value   // the nodes' data
	parts   []groupPart // in catalog order
	skip    map[string]any
	perNode bool // some profile is evaluated per node
	// direct: a per-node profile is evaluated alone, with the group's
	// data, as the built-in #Catalog calls it, rather than in a whole
	// #Catalog (#Data is not unified again for every node). The data is
	// the same for every node of the group: #Data & the site's, the
	// role's and the node's data, which are the group's (its key), and
	// #Data cannot refer to the node.
	direct bool
	topo   map[string]any // the role's topology, for direct
	// templates are the per-node profiles evaluated once for the group
	// (template.go), by profile; nil for a profile that cannot be.
	templates map[string]*template
}

// groupPart is a part of the group's catalog: shared (decoded once) or
// evaluated per node (a profile that reads the node's name or fqdn).
type groupPart struct {
	// profile names a profile's part; "" the role's or the node's, as
	// own says.
	profile string
	own     string // "role" or "node"
	shared  *decodedPart
}

// groupKey is the key of n's group: a digest of its role and of every
// value of the node but its identity. ok is false when a value cannot be
// exported: the node is evaluated on its own then.
func (s *Site) groupKey(n *nodeInfo) (string, bool) {
	if !n.keyDone {
		n.key, n.keyOK = s.computeGroupKey(n)
		n.keyDone = true
	}
	return n.key, n.keyOK
}

// computeGroupKey is groupKey, the first time it is asked for n (vet asks
// for every node's key, plan for every node's again, through InputKey).
func (s *Site) computeGroupKey(n *nodeInfo) (string, bool) {
	if s.roles[n.role] == nil {
		return "", false
	}
	h := sha256.New()
	if txt, ok := s.sourceKey(n.name); ok {
		// The node's entries say it (sourcekey.go); "source" keeps
		// these keys apart from those found from values.
		fmt.Fprintf(h, "source\x00role\x00%s\x00%s", n.role, txt)
		return hex.EncodeToString(h.Sum(nil)), true
	}
	fmt.Fprintf(h, "role\x00%s\x00", n.role)
	// Optional fields too: a constraint the site puts on its node is an
	// input even when it sets no value.
	it, err := n.value.Fields(cue.Optional(true))
	if err != nil {
		return "", false
	}
	for it.Next() {
		f := it.Selector().Unquoted()
		if identity(f) {
			continue
		}
		if !writeValue(h, f, it.Value()) {
			return "", false
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// nodeKey is the group key of node, "" when it has none (unknown, a
// load-time problem, a value that cannot be exported).
func (s *Site) nodeKey(node string) string {
	n := s.nodes[node]
	if n == nil || s.hasLoadProblem(n) {
		return ""
	}
	k, ok := s.groupKey(n)
	if !ok {
		return ""
	}
	return k
}

// knownKey is nodeKey when the node's key was already found; ok is false
// when it was not.
func (s *Site) knownKey(node string) (key string, ok bool) {
	n := s.nodes[node]
	if n == nil || !n.keyDone {
		return "", false
	}
	return s.nodeKey(node), true
}

// filterKeys blanks, in place, the keys fewer than minGroup nodes share,
// and returns keys.
func filterKeys(keys []string) []string {
	count := map[string]int{}
	for _, k := range keys {
		if k != "" {
			count[k]++
		}
	}
	for i, k := range keys {
		if count[k] < minGroup {
			keys[i] = ""
		}
	}
	return keys
}

// groupFor is the group of key, evaluated from n (one of its nodes) the
// first time.
func (s *Site) groupFor(key string, n *nodeInfo) *group {
	if g, ok := s.groups[key]; ok {
		return g
	}
	if s.groups == nil {
		s.groups = map[string]*group{}
	}
	g := s.evalGroup(n)
	s.groups[key] = g
	return g
}

// evalGroup evaluates the catalog of n's group: n without its identity.
func (s *Site) evalGroup(n *nodeInfo) *group {
	g := &group{}
	role := s.roles[n.role]
	topo, err := s.topologyFor(role.profiles)
	if err != nil {
		return g
	}
	open := map[string]any{}
	it, err := n.value.Fields()
	if err != nil {
		return g
	}
	for it.Next() {
		if f := it.Selector().Unquoted(); !identity(f) {
			open[f] = it.Value()
		}
	}
	c := s.catalog.FillPath(cue.Path{}, s.catalogInput(n, open, topo, nil))
	// Invalid data fails every node of the group: catalogFor says how.
	g.data = c.LookupPath(cue.ParsePath("data"))
	if g.data.Validate() != nil {
		return g
	}
	// The same catalog for a node named by the stand-ins (template.go): a
	// part that unification with the name makes concrete is shared only
	// if the stand-ins give it too. A profile that tests whether the name
	// unifies with a literal (`(node.name & "x") != _|_`) answers yes for
	// string, no for a stand-in, and is evaluated per node.
	name, fqdn := s.standIns()
	named := map[string]any{"name": name, "fqdn": fqdn}
	for f, v := range open {
		named[f] = v
	}
	cs := s.catalog.FillPath(cue.Path{}, s.catalogInput(n, named, topo, nil))
	str := s.ctx.CompileString("string")
	agree := func(d *decodedPart, at cue.Path) bool {
		return sameBut(d.value, cs.LookupPath(at), str, name, fqdn)
	}
	// A #Catalog of a site's own profiles may not have skip: its per-node
	// profiles cannot be evaluated alone.
	canSkip := s.catalog.LookupPath(cue.ParsePath("skip")).Exists()
	g.skip = map[string]any{}
	shared := 0
	for _, p := range role.profiles {
		if !s.profiles[p] {
			continue
		}
		at := cue.MakePath(cue.Str("profiles"), cue.Str(p))
		d := &decodedPart{part: part{name: "profile " + p, value: c.LookupPath(at)}}
		if concrete(d.value) && agree(d, at) && d.decode(s, "") == nil {
			g.parts = append(g.parts, groupPart{profile: p, shared: d})
			g.skip[p] = true
			shared++
			continue
		}
		if !canSkip {
			return g
		}
		g.parts = append(g.parts, groupPart{profile: p})
		g.perNode = true
	}
	for _, own := range []string{"role", "node"} {
		at := cue.MakePath(cue.Str(own + "Resources"))
		d := &decodedPart{part: part{value: c.LookupPath(at), own: own == "node"}}
		if !concrete(d.value) || !agree(d, at) || d.decode(s, "") != nil {
			return g
		}
		g.parts = append(g.parts, groupPart{own: own, shared: d})
	}
	g.ok = shared > 0
	if g.perNode && s.profileDefs.Exists() {
		g.direct, g.topo = true, topo
	}
	return g
}

// profileAlone evaluates profile p's resources for node n of group g as
// the built-in #Catalog does: #Profiles[p] & {data: data, node: ctx}.
func (s *Site) profileAlone(g *group, n *nodeInfo, p string) (cue.Value, bool) {
	fqdn, err := nodeFQDN(n)
	if err != nil {
		return cue.Value{}, false
	}
	return s.profileFor(g, s.roles[n.role], p, n.name, fqdn), true
}

// nodeFQDN is n's fqdn, as the site gives it (its name by default).
func nodeFQDN(n *nodeInfo) (string, error) {
	return n.value.LookupPath(cue.MakePath(cue.Str("fqdn"))).String()
}

// profileFor evaluates profile p's resources for a node of group g, of
// role, whose name and fqdn are the values given: the node's own, or the
// stand-ins of a template (template.go).
func (s *Site) profileFor(g *group, role *roleInfo, p string, name, fqdn any) cue.Value {
	// #Catalog's ctx.topology: the topology's parts for the role's
	// profiles (out.profiles), or {}.
	var topo any = map[string]any{}
	if parts, ok := g.topo["profiles"]; ok {
		topo = parts
	}
	ctx := map[string]any{
		"site":     s.name,
		"name":     name,
		"fqdn":     fqdn,
		"role":     role.name,
		"profiles": role.profiles,
		"topology": topo,
	}
	def := s.profileDefs.LookupPath(cue.MakePath(cue.Str(p)))
	v := def.FillPath(cue.Path{}, map[string]any{"data": g.data, "node": ctx})
	return v.LookupPath(cue.MakePath(cue.Str("resources")))
}

// groupCatalog is catalogFor for a node of a group: the shared parts as
// they are, the per-node profiles evaluated alone. ok is false when the
// node must be evaluated on its own (the group's evaluation is not usable,
// or a per-node part has a problem, which catalogFor reports as it would
// for any node).
func (s *Site) groupCatalog(node, key string) (cat *reconciler.Catalog, src *Sources, probs []Problem, ok bool) {
	n := s.nodes[node]
	g := s.groupFor(key, n)
	if !g.ok {
		return nil, nil, nil, false
	}
	role := s.roles[n.role]
	var c cue.Value
	if g.perNode && !g.direct {
		topo, err := s.topologyFor(role.profiles)
		if err != nil {
			return nil, nil, nil, false
		}
		c = s.catalog.FillPath(cue.Path{}, s.catalogInput(n, n.value, topo, g.skip))
	}
	parts := make([]decodedPart, 0, len(g.parts))
	for _, gp := range g.parts {
		switch {
		case gp.shared == nil:
			if t := s.templateFor(g, role, gp.profile); t != nil {
				d, ok := t.forNode(n)
				if !ok {
					return nil, nil, nil, false
				}
				parts = append(parts, d)
				continue
			}
			d := decodedPart{part: part{name: "profile " + gp.profile, alone: true}}
			if g.direct {
				v, ok := s.profileAlone(g, n, gp.profile)
				if !ok {
					return nil, nil, nil, false
				}
				d.value = v
			} else {
				d.value = c.LookupPath(cue.MakePath(cue.Str("profiles"), cue.Str(gp.profile)))
			}
			if len(d.decode(s, node)) > 0 {
				return nil, nil, nil, false
			}
			parts = append(parts, d)
		default:
			d := *gp.shared
			d.res = cloneResources(d.res)
			switch gp.own {
			case "role":
				d.name = "role " + role.name
			case "node":
				d.name = "node " + node
			}
			parts = append(parts, d)
		}
	}
	cat, src, probs = s.assemble(n, g.data, parts, nil)
	// A problem's position may lie in the node's own declarations, which
	// the group's evaluation has from another node: the node's own
	// evaluation says where (a warning about a profile's or the role's
	// resource is positioned there, the same for every node).
	for _, p := range probs {
		if !p.Warning || ownResource(parts, p.Resource) {
			return nil, nil, nil, false
		}
	}
	if src != nil {
		src.group = &groupSources{own: n.value.LookupPath(cue.MakePath(cue.Str("data")))}
		// The per-node values are not kept (see part.alone): with a
		// vector node's profile ~0.2 MB each, a fleet's would be most
		// of vet's heap.
		for id, pt := range src.from {
			if pt.alone {
				pt.value = cue.Value{}
				src.from[id] = pt
			}
		}
	}
	return cat, src, probs, true
}

// ownResource reports whether id is one of the node's own resources.
func ownResource(parts []decodedPart, id reconciler.ID) bool {
	for _, pt := range parts {
		if pt.own {
			for _, r := range pt.res {
				if r.ID == id {
					return true
				}
			}
		}
	}
	return false
}

// concrete reports whether v is concrete throughout (defaults taken),
// its hidden fields too: a hidden field that constrains the node's name
// (valid for one name, not for another) does not show in the resources,
// and Validate does not ask hidden fields to be concrete.
func concrete(v cue.Value) bool {
	return v.Validate(cue.Concrete(true)) == nil && concreteHidden(v)
}

// concreteHidden is concrete's walk: every value under v, defaults
// taken, hidden fields included, is concrete.
func concreteHidden(v cue.Value) bool {
	if d, ok := v.Default(); ok {
		v = d
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		it, err := v.Fields(cue.Hidden(true))
		return err == nil && everyConcrete(it.Next, it.Value)
	case cue.ListKind:
		it, err := v.List()
		return err == nil && everyConcrete(it.Next, it.Value)
	default:
		return v.IsConcrete()
	}
}

// everyConcrete is concreteHidden of every value an iterator gives.
func everyConcrete(next func() bool, value func() cue.Value) bool {
	for next() {
		if !concreteHidden(value()) {
			return false
		}
	}
	return true
}

// cloneResources copies resources, so that no two catalogs share a slice
// or a spec.
func cloneResources(res []reconciler.Resource) []reconciler.Resource {
	out := make([]reconciler.Resource, len(res))
	for i, r := range res {
		r.Spec = append([]byte(nil), r.Spec...)
		r.Require = append([]reconciler.ID(nil), r.Require...)
		r.Notify = append([]reconciler.ID(nil), r.Notify...)
		out[i] = r
	}
	return out
}
