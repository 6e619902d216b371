package desired

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/reconciler"
)

// Sources says where the values of one node's valid catalog come from, as
// file:line:col, for messages about something that is valid on each node
// alone but wrong across nodes. Lookups are lazy: building the catalog
// costs nothing more, and a position is found only when asked for.
type Sources struct {
	site *Site
	node string
	data cue.Value
	from map[reconciler.ID]part
	// group is set for a node evaluated with its group (groups.go): its
	// data and its own part are the group's, whose node-layer positions
	// are those of the node the group was evaluated from. A position that
	// may lie in the node's own declarations is found in the node's own
	// evaluation, done the first time one is asked for (alone).
	group *groupSources
}

// groupSources is what Sources needs for a node of a group.
type groupSources struct {
	own   cue.Value // the node's own data layer, in the site
	alone *Sources  // the node's own evaluation, once done
	done  bool
}

// Resource returns the most useful position of a resource of the catalog
// or, with field, of a field within it ("env", "TRANSFORMERS_INFERENCE_API";
// a number selects a list element). A field that is not there gives the
// resource's position; "" when the resource is not in the catalog.
func (src *Sources) Resource(id reconciler.ID, field ...string) string {
	if src == nil {
		return ""
	}
	s := src.site
	s.mu.Lock()
	defer s.mu.Unlock()
	return src.resource(id, field)
}

// resource is Resource; s.mu is held.
func (src *Sources) resource(id reconciler.ID, field []string) string {
	s := src.site
	pt, ok := src.from[id]
	if !ok {
		return ""
	}
	if (pt.own || pt.alone) && src.group != nil {
		if alone := src.alone(); alone != nil {
			return alone.resource(id, field)
		}
	}
	if !pt.value.Exists() {
		return ""
	}
	v := pt.value.LookupPath(cue.MakePath(cue.Str(string(id))))
	base := s.pos(v)
	if w := lookup(v, field); w.Exists() {
		if p := s.pos(w); p != "" {
			return p
		}
	}
	return base
}

// Data returns the position of a field of the node's data (the layers
// site, role and node unified, with the profiles' defaults), such as
// "iceberg", "db", "host": where the site sets it, else the profile
// default's position. "" when the field is not there.
func (src *Sources) Data(path ...string) string {
	if src == nil {
		return ""
	}
	s := src.site
	s.mu.Lock()
	defer s.mu.Unlock()
	return src.dataPos(path)
}

// dataPos is Data; s.mu is held.
func (src *Sources) dataPos(path []string) string {
	if g := src.group; g != nil && lookup(g.own, path).Exists() {
		if alone := src.alone(); alone != nil {
			return alone.dataPos(path)
		}
	}
	if w := lookup(src.data, path); w.Exists() {
		return src.site.pos(w)
	}
	return ""
}

// alone is the node's own evaluation, for a node of a group; nil when it
// has none (it would not validate alone, which cannot be: its catalog
// did). s.mu is held.
func (src *Sources) alone() *Sources {
	g := src.group
	if !g.done {
		g.done = true
		_, g.alone, _ = src.site.catalogFor(src.node)
	}
	return g.alone
}

// InSite reports whether a position returned by Sources or Site.Pos names
// a file of the site itself (not a profile or the schema).
func (s *Site) InSite(pos string) bool {
	for name, o := range s.shown {
		if o == originSite && len(pos) > len(name) && pos[:len(name)] == name && pos[len(name)] == ':' {
			return true
		}
	}
	return false
}

// Pos returns the position of a field of the site value, such as "nodes",
// "online-1", "fqdn"; "" when it is not there.
func (s *Site) Pos(path ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := lookup(s.site, path); w.Exists() {
		return s.pos(w)
	}
	return ""
}

// Decode decodes a field of the site value (such as "invariants") into v,
// through JSON. found is false when the site does not set the field.
func (s *Site) Decode(v any, path ...string) (found bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := lookup(s.site, path)
	if !w.Exists() {
		return false, nil
	}
	b, err := w.MarshalJSON()
	if err != nil {
		return true, &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("decode %v: %w", path, err)
	}
	return true, nil
}

// FQDN returns the fqdn of a node, "" for an unknown node.
func (s *Site) FQDN(node string) string {
	var f string
	if _, err := s.Decode(&f, "nodes", node, "fqdn"); err != nil {
		return ""
	}
	return f
}

// Files returns the file system the site was loaded from and the site's
// directory in it, with the name positions print for a path in it.
func (s *Site) Files() (fsys fs.FS, siteDir string, display func(string) string) {
	return s.src.FS, s.src.SiteDir, s.display
}

// lookup selects a path in v: a number selects a list element.
func lookup(v cue.Value, path []string) cue.Value {
	if len(path) == 0 {
		return v
	}
	sel := make([]cue.Selector, len(path))
	for i, f := range path {
		if n, err := strconv.Atoi(f); err == nil && v.LookupPath(cue.MakePath(sel[:i]...)).IncompleteKind() == cue.ListKind {
			sel[i] = cue.Index(n)
		} else {
			sel[i] = cue.Str(f)
		}
	}
	return v.LookupPath(cue.MakePath(sel...))
}
