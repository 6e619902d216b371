package desired

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/reconciler"
)

// Problem is one thing wrong with a site, as vet reports it.
type Problem struct {
	// Pos is "file:line:col" of the most useful position: in a site file
	// when there is one, else in a profile, else in the schema. Empty when
	// nothing has a position.
	Pos string
	// Node and Resource say where in the catalog, when that is known.
	Node     string
	Resource reconciler.ID
	// Msg is a sentence a person understands.
	Msg string
	// Warning marks a problem that does not make the site invalid.
	Warning bool
}

// String renders the problem on one line:
// "file:line:col: node N: resource R: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Pos != "" {
		b.WriteString(p.Pos)
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	switch {
	case strings.Contains(p.Node, ", "):
		fmt.Fprintf(&b, "nodes %s: ", p.Node)
	case p.Node != "":
		fmt.Fprintf(&b, "node %s: ", p.Node)
	}
	if p.Resource != "" {
		fmt.Fprintf(&b, "resource %s: ", p.Resource)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// pos renders a value's position, "" when it has none.
func (s *Site) pos(v cue.Value) string {
	return fmtPos(v.Pos())
}

func fmtPos(p token.Pos) string {
	if !p.IsValid() || p.Filename() == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename(), p.Line(), p.Column())
}

// firstSitePos returns the position of the first site file, for problems
// about the site as a whole.
func (s *Site) firstSitePos(v cue.Value) string {
	if p := s.pos(v); p != "" {
		return p
	}
	var names []string
	for name, o := range s.files {
		if o == originSite && isUnder(name, s.src.SiteDir) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return s.display(names[0]) + ":1:1"
}

// originOf says where the file a position names came from.
func (s *Site) originOf(p token.Pos) fileOrigin {
	name := p.Filename()
	if strings.HasPrefix(name, "schema/profile/") {
		if o, ok := s.files[name]; ok {
			return o
		}
		return originProfile
	}
	if strings.HasPrefix(name, "schema/") || strings.HasPrefix(name, "cue.mod/") {
		return originSchema
	}
	return originSite
}

// errRank orders the messages CUE gives for one field, so that vet leads
// with the real cause and drops the noise of disjunctions: a sentence from
// the schema's error("...") first, then a violated bound or a missing
// field, then a conflict, never "N errors in empty disjunction".
func errRank(msg string) int {
	switch {
	case strings.Contains(msg, "errors in empty disjunction"):
		return 0
	case strings.HasPrefix(msg, "conflicting values"):
		return 2
	case strings.HasPrefix(msg, "invalid value"),
		strings.Contains(msg, "out of bound"),
		strings.Contains(msg, "does not satisfy"),
		strings.HasPrefix(msg, "field is required"),
		strings.HasPrefix(msg, "field not allowed"),
		strings.HasPrefix(msg, "incomplete value"),
		strings.HasPrefix(msg, "non-concrete value"),
		strings.HasPrefix(msg, "undefined field"),
		strings.HasPrefix(msg, "reference"),
		strings.HasPrefix(msg, "cannot"),
		strings.HasPrefix(msg, "invalid"),
		strings.HasPrefix(msg, "index out of range"),
		strings.Contains(msg, "mismatched types"):
		return 3
	default:
		// A sentence from error("...") in the schema.
		return 4
	}
}

// cueErr is one CUE error, flattened.
type cueErr struct {
	path []string
	msg  string
	pos  []token.Pos
}

// problemsFromError turns a CUE error into problems: one per field, the
// real cause first, positioned in the site when the site is involved.
// node and res are used when the error's path does not say.
func (s *Site) problemsFromError(err error, node string, res reconciler.ID) []Problem {
	var flat []cueErr
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		ce := cueErr{path: e.Path(), msg: fmt.Sprintf(format, args...)}
		seen := map[token.Pos]bool{}
		for _, p := range append([]token.Pos{e.Position()}, e.InputPositions()...) {
			if p.IsValid() && !seen[p] {
				seen[p] = true
				ce.pos = append(ce.pos, p)
			}
		}
		flat = append(flat, ce)
	}
	best := map[string]int{}
	for _, ce := range flat {
		k := strings.Join(ce.path, "\x00")
		if r := errRank(ce.msg); r > best[k] {
			best[k] = r
		}
	}
	var out []Problem
	seen := map[string]bool{}
	for _, ce := range flat {
		k := strings.Join(ce.path, "\x00")
		r := errRank(ce.msg)
		if r == 0 || r < best[k] {
			continue
		}
		p := s.problemFrom(ce, node, res)
		if key := p.String(); !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// problemFrom renders one flattened error.
func (s *Site) problemFrom(ce cueErr, node string, res reconciler.ID) Problem {
	p := Problem{Node: node, Resource: res}
	field, where := s.locate(ce.path, &p)

	// The most useful position: the site's, then a profile's, then the
	// schema's. Two site positions on a conflict are two layers.
	var sitePos, otherPos []string
	sort.SliceStable(ce.pos, func(i, j int) bool { return s.originOf(ce.pos[i]) < s.originOf(ce.pos[j]) })
	for _, pos := range ce.pos {
		if s.originOf(pos) == originSite {
			sitePos = append(sitePos, fmtPos(pos))
		} else {
			otherPos = append(otherPos, fmtPos(pos))
		}
	}
	switch {
	case len(sitePos) > 0:
		p.Pos = sitePos[0]
	case len(otherPos) > 0:
		p.Pos = otherPos[0]
	}

	msg := explain(ce.msg, sitePos)
	switch {
	case field != "" && where != "":
		p.Msg = fmt.Sprintf("%s %s: %s", where, field, msg)
	case field != "":
		p.Msg = fmt.Sprintf("field %s: %s", field, msg)
	default:
		p.Msg = msg
	}
	return p
}

// locate reads an error path: it fills in the problem's node and resource
// when the path names them, and returns the field within, and how to
// introduce it ("field", "data field").
func (s *Site) locate(path []string, p *Problem) (field, where string) {
	if len(path) > 0 && path[0] == "#Catalog" {
		path = path[1:]
	}
	switch {
	case len(path) >= 3 && path[0] == "profiles":
		p.Resource = reconciler.ID(unquote(path[2]))
		return strings.Join(path[3:], "."), "field"
	case len(path) >= 2 && (path[0] == "role" || path[0] == "local"):
		p.Resource = reconciler.ID(unquote(path[1]))
		return strings.Join(path[2:], "."), "field"
	case len(path) >= 1 && path[0] == "data":
		return strings.Join(path[1:], "."), "data field"
	case len(path) >= 2 && path[0] == "nodes":
		if p.Node == "" {
			p.Node = unquote(path[1])
		}
		if len(path) >= 5 && path[2] == "resources" {
			p.Resource = reconciler.ID(unquote(path[3]))
			return strings.Join(path[4:], "."), "field"
		}
		return strings.Join(path[2:], "."), "node field"
	case len(path) >= 2 && path[0] == "roles":
		if len(path) >= 5 && path[2] == "resources" {
			p.Resource = reconciler.ID(unquote(path[3]))
			return strings.Join(path[4:], "."), "field"
		}
		return unquote(path[1]) + "." + strings.Join(path[2:], "."), "role"
	}
	return strings.Join(path, "."), "field"
}

// explain rewrites CUE's wording where it is obscure for a site author.
func explain(msg string, sitePos []string) string {
	switch {
	case strings.HasPrefix(msg, "conflicting values") && len(sitePos) >= 2:
		return fmt.Sprintf("%s: the value is set in more than one place (%s); a field is set by exactly one layer (site, role or node), so remove all but one", msg, strings.Join(sitePos, ", "))
	case strings.HasPrefix(msg, "field not allowed"):
		return "field not allowed: the schema has no such field (a typo, or a field of another kind?)"
	case strings.HasPrefix(msg, "incomplete value"), strings.HasPrefix(msg, "non-concrete value"):
		return msg + ": the value is not concrete: set it in the site, role or node data"
	case strings.HasPrefix(msg, "field is required but not present"):
		return "is required but not set"
	}
	return msg
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := literal.Unquote(s); err == nil {
			return u
		}
	}
	return s
}
