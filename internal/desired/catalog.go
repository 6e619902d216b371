package desired

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// part is one source of resources in a node's catalog: a profile, the
// role's own resources or the node's.
type part struct {
	name  string    // "profile base", "role feature_store_online", "node online-1"
	value cue.Value // struct keyed by resource ID
	own   bool      // the node's own resources
	// alone: evaluated for this node alone within its group (a profile
	// that reads the node's name). Its value is dropped once the catalog
	// is assembled, so that a fleet's per-node evaluations are not all
	// kept: a position in it is found in the node's own evaluation.
	alone bool
}

// Catalog returns the node's catalog: every resource of its profiles, role
// and node, sorted by ID, with edges checked by reconciler.BuildGraph. An
// invalid catalog returns an *InvalidError listing every problem.
//
// The evaluation runs under the site's time budget (Limits.EvalTimeout):
// past it, the error is a *BudgetError.
func (s *Site) Catalog(node string) (*reconciler.Catalog, error) {
	cat, _, err := s.CatalogSources(node)
	return cat, err
}

// CatalogSources is Catalog that also says where the catalog's values come
// from, for checks across nodes (internal/invariants).
func (s *Site) CatalogSources(node string) (*reconciler.Catalog, *Sources, error) {
	var cat *reconciler.Catalog
	var src *Sources
	var probs []Problem
	if err := s.budget.run(context.Background(), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cat, src, probs = s.catalogFor(node)
	}); err != nil {
		return nil, nil, err
	}
	var errs []Problem
	for _, p := range probs {
		if !p.Warning {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, nil, &InvalidError{Problems: errs}
	}
	return cat, src, nil
}

// catalogFor computes the node's catalog, where its resources come from,
// and every problem with it. Warnings do not prevent a catalog; any other
// problem does.
func (s *Site) catalogFor(node string) (*reconciler.Catalog, *Sources, []Problem) {
	n := s.nodes[node]
	if n == nil {
		return nil, nil, []Problem{{Msg: fmt.Sprintf("node %q is not in site %s (nodes: %s)", node, s.name, strings.Join(s.order, ", "))}}
	}
	// Problems found at load time that concern this node, its role or the
	// whole site make the catalog invalid; the catalog is still evaluated
	// (when the role exists) to find the others.
	var probs []Problem
	for _, sp := range s.siteProblems {
		if sp.concerns(n) {
			probs = append(probs, sp.Problem)
		}
	}
	role := s.roles[n.role]
	if role == nil {
		return nil, nil, probs
	}

	topo, err := s.topologyFor(role.profiles)
	if err != nil {
		var inv *InvalidError
		if errors.As(err, &inv) {
			return nil, nil, append(probs, inv.Problems...)
		}
		return nil, nil, append(probs, Problem{Node: node, Msg: err.Error()})
	}
	// One fill with everything: each FillPath evaluates the result, so
	// filling field by field would evaluate the catalog once per field.
	c := s.catalog.FillPath(cue.Path{}, s.catalogInput(n, n.value, topo, nil))
	// Invalid data would fail every profile that reads it, each with the
	// same message: report it once, and check only the resources the role
	// and the node declare themselves.
	data := c.LookupPath(cue.ParsePath("data"))
	dataErr := data.Validate()
	if dataErr != nil {
		probs = append(probs, s.problemsFromError(dataErr, node, "", data)...)
	}

	parts := make([]decodedPart, 0, len(role.profiles)+2)
	for _, p := range role.profiles {
		if !s.profiles[p] || dataErr != nil {
			continue
		}
		parts = append(parts, decodedPart{part: part{name: "profile " + p, value: c.LookupPath(cue.MakePath(cue.Str("profiles"), cue.Str(p)))}})
	}
	parts = append(parts,
		decodedPart{part: part{name: "role " + role.name, value: c.LookupPath(cue.ParsePath("roleResources"))}},
		decodedPart{part: part{name: "node " + node, value: c.LookupPath(cue.ParsePath("nodeResources")), own: true}},
	)
	for i := range parts {
		probs = append(probs, parts[i].decode(s, node)...)
	}
	return s.assemble(n, data, parts, probs)
}

// catalogInput is what catalogFor fills into #Catalog for node n: the
// node's value (nodeValue: n's own, or the part of it a group shares) and
// skip, the profiles to leave out (nil: none).
func (s *Site) catalogInput(n *nodeInfo, nodeValue any, topo map[string]any, skip map[string]any) map[string]any {
	in := map[string]any{
		"siteName": s.name,
		"siteData": s.site.LookupPath(cue.ParsePath("data")),
		"node":     nodeValue,
		"role":     s.site.LookupPath(cue.MakePath(cue.Str("roles"), cue.Str(n.role))),
		"topology": topo,
	}
	if skip != nil {
		in["skip"] = skip
	}
	return in
}

// decodedPart is a part with its resources, once decoded (ok).
type decodedPart struct {
	part
	res []reconciler.Resource
	ok  bool
}

// decode checks that the part is concrete and decodes its resources; the
// problems say why it could not.
func (d *decodedPart) decode(s *Site, node string) []Problem {
	if err := d.value.Validate(cue.Concrete(true)); err != nil {
		return s.problemsFromError(err, node, "", d.value)
	}
	// The built-in #Catalog (profileDefs) types every part by
	// schema.#Resources.
	res, err := decodePart(d.value, s.profileDefs.Exists())
	if err != nil {
		return []Problem{{Pos: s.pos(d.value), Node: node, Msg: fmt.Sprintf("%s: %v", d.name, err)}}
	}
	d.res, d.ok = res, true
	return nil
}

// assemble makes node n's catalog of its decoded parts (in order: the
// profiles', the role's, the node's) and its data: the operations settings,
// duplicate IDs, edges and warnings. probs are the problems found so far;
// any that is not a warning makes the catalog invalid.
func (s *Site) assemble(n *nodeInfo, data cue.Value, parts []decodedPart, probs []Problem) (*reconciler.Catalog, *Sources, []Problem) {
	node := n.name
	cat := &reconciler.Catalog{Site: s.name, Node: node, Role: n.role, Revision: s.revision}
	if v := s.site.LookupPath(cue.ParsePath("pruning.keepCatalogs")); v.Exists() {
		if keep, err := v.Int64(); err == nil {
			cat.KeepCatalogs = int(keep)
		}
	}
	for _, at := range []cue.Path{
		cue.MakePath(cue.Str("nodes"), cue.Str(node), cue.Str("operations"), cue.Str("windows")),
		cue.MakePath(cue.Str("roles"), cue.Str(n.role), cue.Str("operations"), cue.Str("windows")),
		cue.ParsePath("operations.windows"),
	} {
		if v := s.site.LookupPath(at); v.Exists() {
			var ws []reconciler.Window
			if err := v.Decode(&ws); err == nil {
				cat.Windows = ws
			}
			for i, w := range ws {
				if err := w.Check(); err != nil {
					probs = append(probs, Problem{Pos: s.pos(v.LookupPath(cue.MakePath(cue.Index(i)))), Node: node, Msg: "maintenance window: " + err.Error()})
				}
			}
			break
		}
	}
	if v := s.site.LookupPath(cue.ParsePath("operations.maxHold")); v.Exists() {
		if str, err := v.String(); err == nil {
			if d, err := time.ParseDuration(str); err == nil {
				cat.MaxHold = jsondoc.Seconds(d)
			}
		}
	}
	from := map[reconciler.ID]part{}
	for _, pt := range parts {
		if !pt.ok {
			continue
		}
		for _, r := range pt.res {
			if prev, dup := from[r.ID]; dup {
				probs = append(probs, Problem{
					Pos:      s.resourcePos(pt.value, r.ID),
					Node:     node,
					Resource: r.ID,
					Msg: fmt.Sprintf("is declared by %s (%s) and by %s: an ID names one resource; remove one, or give them different IDs",
						prev.name, s.resourcePos(prev.value, r.ID), pt.name),
				})
				continue
			}
			from[r.ID] = pt.part
			cat.Resources = append(cat.Resources, r)
		}
	}
	if len(probs) > 0 {
		return nil, nil, dedupe(probs)
	}
	cat.Sort()
	if _, errs := reconciler.BuildGraph(cat); len(errs) > 0 {
		for _, err := range errs {
			probs = append(probs, s.edgeProblem(err, node, from))
		}
		return nil, nil, probs
	}
	return cat, &Sources{site: s, node: node, data: data, from: from}, s.warnings(cat, node, from)
}

// dedupe drops problems that read the same (a load-time problem found
// again while evaluating the catalog).
func dedupe(probs []Problem) []Problem {
	seen := map[string]bool{}
	out := probs[:0]
	for _, p := range probs {
		k := p.Pos + "\x00" + string(p.Resource) + "\x00" + p.Msg
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// decodePart decodes a concrete struct of resources keyed by ID: the
// fields every resource has into reconciler.Resource's own, the rest into
// the spec as canonical JSON (see specJSON), read straight from the CUE
// value.
//
// When typed, the part's resources are typed by schema.#Resources (as
// every part of the built-in #Catalog is): each is closed by its kind's
// definition, and its fields are looked up by name (kindFields) rather
// than listed. Listing a struct's fields (cue.Value.Fields) sorts them
// topologically, which cost 40 % of a catalog of 1,000 files, and their
// order does not matter here (the spec's keys are sorted). A part of a
// site's own #Catalog may hold resources of one kind with different
// fields: their fields are listed.
func decodePart(v cue.Value, typed bool) ([]reconciler.Resource, error) {
	it, err := v.Fields()
	if err != nil {
		return nil, fmt.Errorf("decode resources: %w", err)
	}
	known := kindFields{}
	var out []reconciler.Resource
	for it.Next() {
		id := reconciler.ID(it.Selector().Unquoted())
		r := reconciler.Resource{ID: id, Mode: reconciler.ModeEnforce}
		spec := map[string]any{}
		field := func(name string, f cue.Value) error {
			switch name {
			case "require", "notify":
				ids, err := decodeIDs(f)
				if err != nil {
					return fmt.Errorf("decode %s %s: %w", id, name, err)
				}
				if name == "require" {
					r.Require = ids
				} else {
					r.Notify = ids
				}
			case "drift":
				mode, err := f.String()
				if err != nil {
					return fmt.Errorf("decode %s drift: %w", id, err)
				}
				r.Mode = reconciler.Mode(mode)
			case "allowDestroy":
				b, err := f.Bool()
				if err != nil {
					return fmt.Errorf("decode %s allowDestroy: %w", id, err)
				}
				r.AllowDestroy = b
			default:
				x, err := jsonValue(f)
				if err != nil {
					return fmt.Errorf("encode %s spec: %w", id, err)
				}
				spec[name] = x
			}
			return nil
		}
		rv := it.Value()
		if typed {
			names, err := known.of(id.Kind(), rv)
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", id, err)
			}
			for _, fn := range names {
				f := rv.LookupPath(fn.path)
				if !f.Exists() {
					// An optional field the resource does not set.
					continue
				}
				if err := field(fn.name, f); err != nil {
					return nil, err
				}
			}
		} else {
			fields, err := rv.Fields()
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", id, err)
			}
			for fields.Next() {
				if err := field(fields.Selector().Unquoted(), fields.Value()); err != nil {
					return nil, err
				}
			}
		}
		if r.Spec, err = specJSON(spec); err != nil {
			return nil, fmt.Errorf("encode %s spec: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// decodeIDs decodes a list of IDs (require, notify) as Decode into
// []reconciler.ID would (an empty list is an empty slice, not nil), with
// one list iterator instead of Decode's reflection.
func decodeIDs(v cue.Value) ([]reconciler.ID, error) {
	it, err := v.List()
	if err != nil {
		return nil, err
	}
	ids := []reconciler.ID{}
	for it.Next() {
		s, err := it.Value().String()
		if err != nil {
			return nil, err
		}
		ids = append(ids, reconciler.ID(s))
	}
	return ids, nil
}

// kindFields holds, by kind, the fields a resource of the kind can have,
// as its first resource in a part typed by schema.#Resources lists them
// with its optional fields (cue.Optional): every field the kind's
// definition declares. The definition is closed, so a resource has no
// other regular field; a field that only a comprehension of the
// definition declares, or a definition left open, would escape this
// (TestKindDefs_NoConditionalFields keeps the schema free of both).
type kindFields map[string][]fieldName

// fieldName is a field's name and its path, made once.
type fieldName struct {
	name string
	path cue.Path
}

// of returns the fields of kind, listing those of rv, a resource of that
// kind, the first time.
func (k kindFields) of(kind string, rv cue.Value) ([]fieldName, error) {
	if names, ok := k[kind]; ok {
		return names, nil
	}
	it, err := rv.Fields(cue.Optional(true))
	if err != nil {
		return nil, err
	}
	var names []fieldName
	for it.Next() {
		sel := it.Selector()
		if sel.LabelType() != cue.StringLabel {
			continue
		}
		names = append(names, fieldName{name: sel.Unquoted(), path: cue.MakePath(cue.Str(sel.Unquoted()))})
	}
	k[kind] = names
	return names, nil
}

// jsonValue converts a concrete CUE value into what encoding/json encodes
// as the same JSON: objects as maps (whose keys it sorts), numbers as
// json.Number with the text CUE gives them.
func jsonValue(v cue.Value) (any, error) {
	if d, ok := v.Default(); ok {
		v = d
	}
	switch v.Kind() {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		for it.Next() {
			if m[it.Selector().Unquoted()], err = jsonValue(it.Value()); err != nil {
				return nil, err
			}
		}
		return m, nil
	case cue.ListKind:
		it, err := v.List()
		if err != nil {
			return nil, err
		}
		l := []any{}
		for it.Next() {
			e, err := jsonValue(it.Value())
			if err != nil {
				return nil, err
			}
			l = append(l, e)
		}
		return l, nil
	case cue.StringKind:
		return v.String()
	case cue.BoolKind:
		return v.Bool()
	case cue.NullKind:
		return nil, nil
	case cue.IntKind, cue.FloatKind, cue.NumberKind:
		b, err := v.MarshalJSON()
		return json.Number(b), err
	default:
		// Not concrete: MarshalJSON says what is wrong.
		_, err := v.MarshalJSON()
		if err == nil {
			err = fmt.Errorf("%s: not a JSON value", v.Path())
		}
		return nil, err
	}
}

// specJSON encodes a spec with the keys of every object sorted and numbers
// kept as CUE writes them, so that the same resource always has the same
// spec bytes (stable renders, stable hashes).
func specJSON(spec map[string]any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// resourcePos is where a resource is declared in a part.
func (s *Site) resourcePos(part cue.Value, id reconciler.ID) string {
	return s.pos(part.LookupPath(cue.MakePath(cue.Str(string(id)))))
}

// edgeProblem maps an edge error of BuildGraph back to the CUE position of
// the edge (the require or notify entry) or of the resource.
func (s *Site) edgeProblem(err error, node string, from map[reconciler.ID]part) Problem {
	var ee *reconciler.EdgeError
	if !errors.As(err, &ee) {
		return Problem{Node: node, Msg: err.Error()}
	}
	p := Problem{Node: node, Resource: ee.ID}
	switch {
	case len(ee.Cycle) > 0:
		p.Resource = ""
		parts := make([]string, len(ee.Cycle))
		for i, id := range ee.Cycle {
			parts[i] = string(id)
		}
		p.Pos = s.edgePos(from, ee.Cycle[0], "", ee.Cycle[1])
		p.Msg = "dependency cycle: " + strings.Join(parts, " -> ") + " (an arrow means \"runs before\"; remove one require or notify on this path)"
	case ee.Field != "":
		p.Pos = s.edgePos(from, ee.ID, ee.Field, ee.Target)
		p.Msg = fmt.Sprintf("%s names %s, which is not in the catalog of node %s (a typo, or a profile missing from role %s?)", ee.Field, ee.Target, node, s.nodes[node].role)
	default:
		p.Pos = s.resourcePos(from[ee.ID].value, ee.ID)
		p.Msg = "is declared more than once"
	}
	return p
}

// edgePos finds the require or notify entry of id that names target (any
// edge field when field is ""), or the resource itself. For a cycle the
// edge from a to b is "b requires a" or "a notifies b".
func (s *Site) edgePos(from map[reconciler.ID]part, id reconciler.ID, field string, target reconciler.ID) string {
	find := func(owner reconciler.ID, field string, target reconciler.ID) string {
		pt, ok := from[owner]
		if !ok {
			return ""
		}
		l, err := pt.value.LookupPath(cue.MakePath(cue.Str(string(owner)), cue.Str(field))).List()
		if err != nil {
			return ""
		}
		for l.Next() {
			if str, _ := l.Value().String(); str == string(target) {
				return s.pos(l.Value())
			}
		}
		return ""
	}
	if field != "" {
		if p := find(id, field, target); p != "" {
			return p
		}
	} else {
		if p := find(target, "require", id); p != "" {
			return p
		}
		if p := find(id, "notify", target); p != "" {
			return p
		}
	}
	if pt, ok := from[id]; ok {
		return s.resourcePos(pt.value, id)
	}
	return ""
}

// warnings are findings that do not make a catalog invalid.
func (s *Site) warnings(cat *reconciler.Catalog, node string, from map[reconciler.ID]part) []Problem {
	var out []Problem
	zero := strings.Repeat("0", 64)
	for _, r := range cat.Resources {
		if r.Kind() != "artifact" {
			continue
		}
		var spec struct {
			SHA256 string `json:"sha256"`
		}
		if json.Unmarshal(r.Spec, &spec) == nil && spec.SHA256 == zero {
			pos := s.pos(from[r.ID].value.LookupPath(cue.MakePath(cue.Str(string(r.ID)), cue.Str("sha256"))))
			if pos == "" {
				pos = s.resourcePos(from[r.ID].value, r.ID)
			}
			out = append(out, Problem{
				Pos:      pos,
				Node:     node,
				Resource: r.ID,
				Warning:  true,
				Msg:      "sha256 is the all-zero placeholder: no download can match it, so this artifact fails until the real digest is filled in",
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out
}
