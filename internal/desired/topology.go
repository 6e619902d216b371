package desired

import (
	"bytes"
	"io/fs"
	"slices"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/schema"
)

// topology is profile.#Topology for one site: what a node's catalog needs
// to know of the rest of the site.
//
// Filling the whole site into #Topology costs time in proportion to the
// fleet (its comprehensions run over every node), so it is done only for a
// node that needs it. With the built-in #Topology (the embedded profile
// files that define it, unchanged), what it computes is known: the
// icebergCatalogHost every node gets, found in Go from the site's
// structure, and parts for the prometheus_server profile only (the scrape
// targets of the whole fleet); a node whose role does not list builtinPart
// is served without evaluating #Topology at all. A site whose profiles
// define their own #Topology has it evaluated once, at load.
type topology struct {
	def     cue.Value // profile.#Topology
	builtin bool      // def is the built-in #Topology and the site validates

	// out is #Topology.out, concrete, once evaluated (done); err is why it
	// could not be.
	done bool
	out  map[string]any
	err  error

	// iceberg is the built-in icebergCatalogHost ("" when no node has the
	// profile), once found (icebergDone).
	icebergDone bool
	iceberg     string
}

// builtinPart is the profile the built-in #Topology has a part for.
const builtinPart = "prometheus_server"

// builtinTopology reports whether the profile files that mention
// #Topology are exactly the embedded ones: then its semantics are the
// built-in ones.
func builtinTopology(files map[string][]byte, origins map[string]fileOrigin) bool {
	mentions := func(b []byte) bool { return bytes.Contains(b, []byte("#Topology")) }
	want := map[string][]byte{}
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			return false
		}
		if mentions(b) {
			want["schema/"+name] = b
		}
	}
	n := 0
	for name, o := range origins {
		if o != originProfile || !mentions(files[name]) {
			continue
		}
		if b, ok := want[name]; !ok || !bytes.Equal(b, files[name]) {
			return false
		}
		n++
	}
	return n == len(want)
}

// builtinFile reports whether the profile file name ("profile/x.cue") of
// the load tree is the embedded one.
func builtinFile(files map[string][]byte, origins map[string]fileOrigin, name string) bool {
	b, err := fs.ReadFile(schema.Files(), name)
	return err == nil && origins["schema/"+name] == originProfile && bytes.Equal(files["schema/"+name], b)
}

// evalTopology evaluates #Topology.out for the whole site, once. The
// result is filled into catalogs as plain data: filling the CUE value
// would evaluate its comprehensions over every node again for each node.
func (s *Site) evalTopology() error {
	t := &s.topo
	if t.done {
		return t.err
	}
	t.done = true
	if t.builtin {
		if out, ok := s.builtinOut(); ok {
			t.out = out
			return nil
		}
	}
	out := t.def.FillPath(cue.ParsePath("site"), s.site).LookupPath(cue.ParsePath("out"))
	if err := out.Decode(&t.out); err != nil {
		t.err = &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	return t.err
}

// builtinOut is the built-in #Topology's out, computed in Go
// (icebergHosts, scrapeTargets); ok is false when only the CUE can say.
func (s *Site) builtinOut() (map[string]any, bool) {
	hosts, ok := s.icebergHosts()
	if !ok {
		return nil, false
	}
	part, found, ok := s.scrapeTargets()
	if !ok {
		return nil, false
	}
	out := map[string]any{}
	if len(hosts) > 0 {
		out["icebergCatalogHost"] = slices.Min(hosts)
	}
	if found {
		out["profiles"] = map[string]any{builtinPart: part}
	}
	return out, true
}

// topologyFor is the site's topology as one node's catalog sees it: the
// parts computed for a profile (out.profiles.<name>) only when the node's
// role lists that profile, so that a part that lists the whole fleet (the
// scrape targets) costs nothing on the other nodes.
func (s *Site) topologyFor(profiles []string) (map[string]any, error) {
	if s.topo.builtin && !slices.Contains(profiles, builtinPart) {
		t := map[string]any{}
		if h := s.icebergCatalogHost(); h != "" {
			t["icebergCatalogHost"] = h
		}
		return t, nil
	}
	if err := s.evalTopology(); err != nil {
		return nil, err
	}
	parts, ok := s.topo.out["profiles"].(map[string]any)
	if !ok {
		return s.topo.out, nil
	}
	t := make(map[string]any, len(s.topo.out))
	for k, v := range s.topo.out {
		if k != "profiles" {
			t[k] = v
		}
	}
	mine := map[string]any{}
	for _, p := range profiles {
		if v, ok := parts[p]; ok {
			mine[p] = v
		}
	}
	if len(mine) > 0 {
		t["profiles"] = mine
	}
	return t, nil
}

// icebergCatalogHost is the built-in #Topology's icebergCatalogHost: the
// fqdn of the node whose role lists the iceberg_catalog_db profile, the
// first in sorted order; "" when there is none. Only those nodes' fqdn are
// looked up.
func (s *Site) icebergCatalogHost() string {
	t := &s.topo
	if t.icebergDone {
		return t.iceberg
	}
	t.icebergDone = true
	hosts, ok := s.icebergHosts()
	if !ok {
		// An fqdn not concrete: only #Topology can say.
		if s.evalTopology() == nil {
			t.iceberg, _ = s.topo.out["icebergCatalogHost"].(string)
		}
		return t.iceberg
	}
	if len(hosts) > 0 {
		t.iceberg = slices.Min(hosts)
	}
	return t.iceberg
}

// icebergHosts are the fqdns of the site's nodes (those evaluated) whose
// role lists iceberg_catalog_db; ok is false when one is not concrete.
func (s *Site) icebergHosts() (hosts []string, ok bool) {
	fqdn := cue.MakePath(cue.Str("fqdn"))
	for _, name := range s.order {
		n := s.nodes[name]
		if !s.icebergRole(n.role) {
			continue
		}
		h, err := n.value.LookupPath(fqdn).String()
		if err != nil {
			return nil, false
		}
		hosts = append(hosts, h)
	}
	return hosts, true
}

// icebergRole reports whether role lists the iceberg_catalog_db profile.
func (s *Site) icebergRole(role string) bool {
	r := s.roles[role]
	return r != nil && slices.Contains(r.profiles, "iceberg_catalog_db")
}
