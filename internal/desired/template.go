package desired

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/reconciler"
)

// A per-node profile of a group (one that reads the node's name or fqdn)
// usually reads them only to copy them, whole, into a field: weaviate_node
// sets CLUSTER_HOSTNAME: node.fqdn. Every node of the group then has the
// same resources but for those fields, and the profile is evaluated twice
// for the group instead of once per node (~2 ms each, most of vet's time
// at 300 nodes):
//
//   - open: with the name and fqdn left as string. Unification only adds
//     to a value, so a value that comes out concrete is every node's; a
//     value that depends on the name or fqdn comes out not concrete.
//   - stand-in: with the name and fqdn as two strings made of a random
//     token (per Site, so that no site can contain them).
//
// The template is usable when the two agree: the same fields, the same
// concrete values, and where the open one is exactly string (nothing but
// the name or fqdn put there), the stand-in one is one of the stand-ins
// (so the field is a copy of the name or of the fqdn, not of both, not a
// schema's string left unset). A value computed from the name or fqdn
// (interpolated, compared, measured, constrained, made a label) is not
// exactly string in the open evaluation, or errs there: the profile is
// then evaluated per node, as before. A test whose answer the name or
// fqdn decides (`(node.fqdn & "x") != _|_`, a disjunction that only
// one name leaves unambiguous) answers differently for string and for a
// stand-in, which fails the comparison too.
//
// What this cannot see: a test that string and the stand-in answer the
// same way and a node's real name answers the other way (a regular
// expression that both string and the stand-in meet, tested with
// `!= _|_` on a value derived from the fqdn). The groups' shared parts
// are checked the same way (evalGroup) and rest on the same assumption:
// a profile does not branch on whether a value derived from the node's
// identity unifies with a constraint that a random token meets.
//
// The stand-in evaluation is decoded once; a node's part is that, with
// every JSON string that is a stand-in replaced by the node's name or
// fqdn. A stand-in in an ID or an edge (require, notify) is not replaced:
// the profile is evaluated per node then.

// template is a per-node profile evaluated once for its group.
type template struct {
	part       decodedPart // decoded from the stand-in evaluation
	name, fqdn []byte      // the stand-ins, as JSON strings in a spec
}

// standIns returns the name and fqdn stand-ins of s, made the first time.
func (s *Site) standIns() (name, fqdn string) {
	if s.standIn == "" {
		b := make([]byte, 16)
		// crypto/rand.Read does not fail (it crashes the program
		// rather than return an error).
		_, _ = rand.Read(b)
		s.standIn = hex.EncodeToString(b)
	}
	return "fsgit-stand-in-name-" + s.standIn, "fsgit-stand-in-fqdn-" + s.standIn
}

// templateFor is the template of profile p for group g of role, nil when p
// must be evaluated per node (see above), found the first time.
func (s *Site) templateFor(g *group, role *roleInfo, p string) *template {
	if !g.direct {
		return nil
	}
	if t, ok := g.templates[p]; ok {
		return t
	}
	if g.templates == nil {
		g.templates = map[string]*template{}
	}
	t := s.makeTemplate(g, role, p)
	g.templates[p] = t
	return t
}

// makeTemplate is templateFor's evaluation.
func (s *Site) makeTemplate(g *group, role *roleInfo, p string) *template {
	str := s.ctx.CompileString("string")
	open := s.profileFor(g, role, p, str, str)
	if open.Validate() != nil {
		return nil
	}
	name, fqdn := s.standIns()
	stand := s.profileFor(g, role, p, name, fqdn)
	if !sameBut(open, stand, str, name, fqdn) {
		return nil
	}
	d := decodedPart{part: part{name: "profile " + p, value: stand, alone: true}}
	if len(d.decode(s, "")) > 0 {
		return nil
	}
	for _, r := range d.res {
		if namesStandIn(r, s.standIn) {
			return nil
		}
	}
	return &template{part: d, name: specString(name), fqdn: specString(fqdn)}
}

// namesStandIn reports whether r's ID or one of its edges holds the
// stand-ins' token: forNode replaces it in specs only.
func namesStandIn(r reconciler.Resource, token string) bool {
	for _, id := range slices.Concat([]reconciler.ID{r.ID}, r.Require, r.Notify) {
		if strings.Contains(string(id), token) {
			return true
		}
	}
	return false
}

// forNode is the template's part for node n: the stand-ins replaced by
// its name and fqdn. ok is false when n has no fqdn to give.
func (t *template) forNode(n *nodeInfo) (decodedPart, bool) {
	fqdn, err := nodeFQDN(n)
	if err != nil {
		return decodedPart{}, false
	}
	qn, qf := specString(n.name), specString(fqdn)
	d := decodedPart{part: t.part.part, ok: true, res: make([]reconciler.Resource, len(t.part.res))}
	for i, r := range t.part.res {
		// ReplaceAll returns a copy: no two catalogs share a spec.
		r.Spec = bytes.ReplaceAll(bytes.ReplaceAll(r.Spec, t.name, qn), t.fqdn, qf)
		r.Require = append([]reconciler.ID(nil), r.Require...)
		r.Notify = append([]reconciler.ID(nil), r.Notify...)
		d.res[i] = r
	}
	return d, true
}

// specString is s as a JSON string in a spec (specJSON: no HTML escapes).
func specString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A string always encodes.
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// sameBut reports whether open (the profile evaluated with the name and
// fqdn as string) and stand (with the stand-ins) agree: the same fields,
// hidden ones too, the same concrete values, and, where open is exactly
// str, the name's or the fqdn's stand-in.
func sameBut(open, stand, str cue.Value, name, fqdn string) bool {
	if open.Err() != nil || stand.Err() != nil {
		return false
	}
	if d, ok := open.Default(); ok {
		open = d
	}
	if d, ok := stand.Default(); ok {
		stand = d
	}
	switch open.IncompleteKind() {
	case cue.StructKind:
		if stand.IncompleteKind() != cue.StructKind {
			return false
		}
		oi, err := open.Fields(cue.Hidden(true))
		if err != nil {
			return false
		}
		si, err := stand.Fields(cue.Hidden(true))
		if err != nil {
			return false
		}
		for oi.Next() {
			if !si.Next() || oi.Selector() != si.Selector() || !sameBut(oi.Value(), si.Value(), str, name, fqdn) {
				return false
			}
		}
		return !si.Next()
	case cue.ListKind:
		if stand.IncompleteKind() != cue.ListKind {
			return false
		}
		oi, err := open.List()
		if err != nil {
			return false
		}
		si, err := stand.List()
		if err != nil {
			return false
		}
		for oi.Next() {
			if !si.Next() || !sameBut(oi.Value(), si.Value(), str, name, fqdn) {
				return false
			}
		}
		return !si.Next()
	}
	if open.IsConcrete() {
		return stand.IsConcrete() && open.Equals(stand)
	}
	if open.Subsume(str) != nil || str.Subsume(open) != nil {
		return false
	}
	v, err := stand.String()
	return err == nil && (v == name || v == fqdn)
}
