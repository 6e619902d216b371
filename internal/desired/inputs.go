package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"sort"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/format"
)

// InputKey is a digest of everything a node's catalog is computed from,
// but the revision: the schema and profile files, the site's name, data,
// pruning and operations, the node's role and the node itself (their
// values, not the files that give them), and the part of the topology the
// node sees. Two loads of a site that give a node the same key give it the
// same catalog (Revision aside) and the same problems, so fsgit plan
// evaluates a node at both revisions only when its key differs.
//
// ok is false when there is a doubt (the node has load-time problems, or a
// value cannot be exported): evaluate then.
func (s *Site) InputKey(node string) (key string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[node]
	if n == nil || s.roles[n.role] == nil {
		return "", false
	}
	if s.hasLoadProblem(n) {
		return "", false
	}
	if s.keyParts == nil {
		s.keyParts = map[string]string{}
	}
	site, ok := s.keyPart("site", func(h hash.Hash) bool {
		fmt.Fprintf(h, "schema\x00%s\x00site\x00%s\x00", s.schemaKey(), s.name)
		for _, p := range []string{"data", "pruning", "operations"} {
			if !writeValue(h, p, s.site.LookupPath(cue.MakePath(cue.Str(p)))) {
				return false
			}
		}
		return true
	})
	if !ok {
		return "", false
	}
	role, ok := s.keyPart("role "+n.role, func(h hash.Hash) bool {
		return writeValue(h, "role", s.site.LookupPath(cue.MakePath(cue.Str("roles"), cue.Str(n.role))))
	})
	if !ok {
		return "", false
	}
	// The node: its group's key (every value but its name and fqdn), and
	// those two.
	group, ok := s.groupKey(n)
	if !ok {
		return "", false
	}
	fqdn, err := n.value.LookupPath(cue.MakePath(cue.Str("fqdn"))).String()
	if err != nil {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00", site, n.role, role, group, n.name, fqdn)
	topo, err := s.topologyFor(s.roles[n.role].profiles)
	if err != nil {
		return "", false
	}
	b, err := json.Marshal(topo)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(h, "topology\x00%d\x00%s", len(b), b)
	return hex.EncodeToString(h.Sum(nil)), true
}

// keyPart is a part of InputKey shared by nodes (the site's, a role's),
// computed once; "" when write reports false.
func (s *Site) keyPart(name string, write func(h hash.Hash) bool) (string, bool) {
	if k, ok := s.keyParts[name]; ok {
		return k, k != ""
	}
	h := sha256.New()
	k := ""
	if write(h) {
		k = hex.EncodeToString(h.Sum(nil))
	}
	s.keyParts[name] = k
	return k, k != ""
}

// schemaKey is the digest of the files that are not the site's (the
// schema and the profiles), once.
func (s *Site) schemaKey() string {
	if s.schemaDigest != "" {
		return s.schemaDigest
	}
	var names []string
	for name, o := range s.files {
		if o != originSite {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(s.srcFiles[name]))
		h.Write(s.srcFiles[name])
	}
	s.schemaDigest = hex.EncodeToString(h.Sum(nil))
	return s.schemaDigest
}

// writeValue writes the exported syntax of v, evaluated, to h. The
// export is self-contained: a definition or value it refers to is exported
// with it (as a helper definition), so that two equal texts are two equal
// values. It reports false when v cannot be exported.
func writeValue(h hash.Hash, label string, v cue.Value) bool {
	fmt.Fprintf(h, "%s\x00", label)
	if !v.Exists() {
		h.Write([]byte("-\x00"))
		return true
	}
	b, err := format.Node(v.Syntax(cue.Docs(false), cue.Attributes(true), cue.Optional(true), cue.Definitions(true), cue.Hidden(true)))
	if err != nil {
		return false
	}
	fmt.Fprintf(h, "%d\x00", len(b))
	h.Write(b)
	return true
}
