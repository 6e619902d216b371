package desired

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/internal/sitefiles"
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
	// incomplete marks a value left non-concrete: on a node other than
	// one whose role is missing, it may only follow from that one
	// (dropConsequences).
	incomplete bool
}

// maxNamesShown is how many node names a problem of several nodes shows.
const maxNamesShown = 5

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
		// A fleet's worth of names would make a line no one reads: the
		// first few, and how many in all (Node keeps them all).
		names := strings.Split(p.Node, ", ")
		if len(names) > maxNamesShown {
			fmt.Fprintf(&b, "nodes %s and %d more (%d in all): ", strings.Join(names[:maxNamesShown], ", "), len(names)-maxNamesShown, len(names))
		} else {
			fmt.Fprintf(&b, "nodes %s: ", p.Node)
		}
	case p.Node != "":
		fmt.Fprintf(&b, "node %s: ", p.Node)
	}
	if p.Resource != "" {
		fmt.Fprintf(&b, "resource %s: ", p.Resource)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// pos renders the most useful position of a value, "" when it has none:
// of the places that make up the value, one in a site file, else one in a
// profile, else the first.
func (s *Site) pos(v cue.Value) string {
	return fmtPos(s.bestPos(v))
}

// bestPos is the position behind pos.
func (s *Site) bestPos(v cue.Value) token.Pos {
	best := v.Pos()
	var walk func(v cue.Value, depth int)
	walk = func(v cue.Value, depth int) {
		if p := v.Pos(); p.IsValid() && (!best.IsValid() || s.originOf(p) < s.originOf(best)) {
			best = p
		}
		if depth > 3 {
			return
		}
		if op, args := v.Expr(); op == cue.AndOp {
			for _, a := range args {
				walk(a, depth+1)
			}
		}
	}
	walk(v, 0)
	return best
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
		if o == originSite && sitefiles.IsUnder(name, s.src.SiteDir) {
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
	if o, ok := s.shown[p.Filename()]; ok {
		return o
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
		strings.HasPrefix(msg, "required field missing"),
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

// defaultsNoise reports whether a message is the noise of a schema's
// defaults (a conflict with a default, an empty disjunction) rather than
// the cause, by errRank; CUE's bare "empty disjunction" too.
func defaultsNoise(msg string) bool {
	return errRank(msg) <= 2 || msg == "empty disjunction"
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
// within, when given, is the value the error's paths are relative to (a
// catalog part, or the node's data): when an error has no position in the
// site, the position of the failing value in it is used, or of its
// resource.
func (s *Site) problemsFromError(err error, node string, res reconciler.ID, within ...cue.Value) []Problem {
	var flat []cueErr
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		path := e.Path()
		if len(path) > 0 && path[0] == "#Catalog" {
			path = path[1:]
		}
		if len(path) > 0 && path[0] == "site" {
			path = path[1:]
		}
		msg := fmt.Sprintf(format, args...)
		// Some errors (a failed import) wrap their cause: keep it.
		if full := e.Error(); strings.Contains(full, msg+": ") {
			msg = posInMsg().ReplaceAllString(full[strings.Index(full, msg+": "):], "")
		}
		// A load error's path is the package ("module/pkg@v0"), not a field.
		if len(path) == 1 && strings.Contains(path[0], "@") {
			path = nil
		}
		ce := cueErr{path: path, msg: msg}
		seen := map[token.Pos]bool{}
		for _, p := range append([]token.Pos{e.Position()}, e.InputPositions()...) {
			if p.IsValid() && !seen[p] {
				seen[p] = true
				ce.pos = append(ce.pos, p)
			}
		}
		flat = append(flat, ce)
	}
	// matchN reports each alternative it tried as a missing required
	// field, at the matchN's own position: that is noise once matchN's
	// own failure is reported.
	matchLines := map[string]bool{}
	for _, ce := range flat {
		if strings.Contains(ce.msg, "does not satisfy matchN") {
			for _, p := range ce.pos {
				if s.originOf(p) != originSite {
					matchLines[fmt.Sprintf("%s:%d", p.Filename(), p.Line())] = true
				}
			}
		}
	}
	noise := func(ce cueErr) bool {
		if len(matchLines) == 0 || !strings.HasPrefix(ce.msg, "field is required") {
			return false
		}
		for _, p := range ce.pos {
			if !matchLines[fmt.Sprintf("%s:%d", p.Filename(), p.Line())] {
				return false
			}
		}
		return true
	}

	// Group by field, keep the group's best rank; a group of conflicts
	// becomes one problem.
	var keys []string
	groups := map[string][]cueErr{}
	for _, ce := range flat {
		if noise(ce) {
			continue
		}
		k := strings.Join(ce.path, "\x00")
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], ce)
	}
	var out []Problem
	seen := map[string]bool{}
	emit := func(ce cueErr) {
		p := s.problemFrom(ce, node, res)
		if p.Resource == "" && !ce.inSite(s) && len(within) > 0 && len(ce.path) > 1 && ce.path[0] == "data" {
			// A check on a data field made by a profile (a map key's
			// name): the site's position of the field it checks.
			if dp := s.dataPos(within[0], ce.path[1:]); dp != "" {
				p.Pos = dp
			}
		}
		if strings.HasPrefix(ce.msg, "field not allowed") && p.Resource == "" && len(within) > 0 && len(ce.path) > 1 && ce.path[0] == "data" {
			if hint := allowedHint(within[0], visiblePath(ce.path[1:])); hint != "" {
				p.Msg = fmt.Sprintf("data field %s: %s", strings.Join(visiblePath(ce.path[1:]), "."), hint)
			}
		}
		if p.Resource != "" && !ce.inSite(s) {
			rp := s.declaredResourcePos(ce.path)
			if rp == "" && len(within) > 0 {
				rp = s.valuePos(within[0], ce.path, p.Resource)
			}
			if rp != "" {
				p.Pos = rp
			}
		}
		if key := p.String(); !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	for _, k := range keys {
		g := groups[k]
		best := 0
		for _, ce := range g {
			best = max(best, errRank(ce.msg))
		}
		if best == 0 {
			continue
		}
		if best > 2 {
			for _, ce := range g {
				if errRank(ce.msg) == best {
					emit(ce)
				}
			}
			continue
		}
		emit(pickConflict(s, g))
	}
	return out
}

// declaredResourcePos is the position of a resource that a site declares
// outside profiles (nodes.N.resources.ID, roles.R.resources.ID), for an
// error path inside it; "" for any other path.
func (s *Site) declaredResourcePos(path []string) string {
	if len(path) >= 4 && (path[0] == "nodes" || path[0] == "roles") && path[2] == "resources" {
		sel := make([]cue.Selector, 4)
		for i, name := range path[:4] {
			sel[i] = cue.Str(unquote(name))
		}
		return s.pos(s.site.LookupPath(cue.MakePath(sel...)))
	}
	return ""
}

// valuePos finds the failing value in part by the error's path (which
// ends with the resource ID and the field) and returns its most useful
// position, or the resource's when that is no better.
func (s *Site) valuePos(part cue.Value, path []string, id reconciler.ID) string {
	for i, name := range path {
		if unquote(name) != string(id) {
			continue
		}
		sel := []cue.Selector{cue.Str(string(id))}
		for _, f := range path[i+1:] {
			sel = append(sel, cue.Str(unquote(f)))
		}
		v := part.LookupPath(cue.MakePath(sel...))
		if v.Exists() {
			if p := s.bestPos(v); p.IsValid() && s.originOf(p) == originSite {
				return fmtPos(p)
			}
		}
		break
	}
	return s.resourcePos(part, id)
}

// dataPos returns the site's position of a data field, for an error path
// within data; hidden fields in it (a profile's check of a map key, such as
// _names.databases.<key>) are dropped. "" when the site has no position.
func (s *Site) dataPos(data cue.Value, path []string) string {
	path = visiblePath(path)
	sel := make([]cue.Selector, len(path))
	for i, name := range path {
		sel[i] = cue.Str(unquote(name))
	}
	v := data.LookupPath(cue.MakePath(sel...))
	if !v.Exists() {
		return ""
	}
	if p := s.bestPos(v); p.IsValid() && s.originOf(p) == originSite {
		return fmtPos(p)
	}
	return ""
}

// visiblePath drops the hidden fields and definitions of an error path: a
// profile checks a map key the site wrote (databases.<key>) in a hidden
// field (_names.databases.<key>), and the error is about the key.
func visiblePath(path []string) []string {
	out := make([]string, 0, len(path))
	for _, p := range path {
		if !strings.HasPrefix(p, "_") && !strings.HasPrefix(p, "#") {
			out = append(out, p)
		}
	}
	return out
}

// inSite reports whether one of the error's positions is in a site file.
func (ce cueErr) inSite(s *Site) bool {
	for _, p := range ce.pos {
		if s.originOf(p) == originSite {
			return true
		}
	}
	return false
}

// pickConflict chooses, of the conflicts on one field, the one that says
// most: the one that names two places of the site (two layers setting the
// field), else a type mismatch against a type rather than against a
// default value, else the first. The chosen error carries every site
// position of the group.
func pickConflict(s *Site, g []cueErr) cueErr {
	siteCount := func(ce cueErr) int {
		n := 0
		for _, p := range ce.pos {
			if s.originOf(p) == originSite {
				n++
			}
		}
		return n
	}
	bestIdx, bestScore := 0, -1
	for i, ce := range g {
		if errRank(ce.msg) != 2 {
			continue
		}
		score := 2 * siteCount(ce)
		if strings.Contains(ce.msg, "mismatched types") && typeOperand().MatchString(ce.msg) {
			score++
		}
		if score > bestScore {
			bestIdx, bestScore = i, score
		}
	}
	return g[bestIdx]
}

// maxRunes matches a violated strings.MaxRunes(N) and captures N.
var maxRunes = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\(does not satisfy strings\.MaxRunes\(([0-9]+)\)\)$`)
})

// posInMsg matches a position that a wrapped error repeats in its text.
var posInMsg = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\S+\.cue:\d+:\d+: `) })

// typeOperand matches a conflict whose second operand is a type, as in
// `conflicting values "3306" and int`.
var typeOperand = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(` and (int|string|bool|number|float|bytes|struct|list|null)( |$)`)
})

// problemFrom renders one flattened error.
func (s *Site) problemFrom(ce cueErr, node string, res reconciler.ID) Problem {
	p := Problem{Node: node, Resource: res}
	field, where := s.locate(ce.path, &p)
	p.incomplete = strings.HasPrefix(ce.msg, "incomplete value") || strings.Contains(ce.msg, "non-concrete value")

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
	if strings.HasPrefix(ce.msg, "incomplete value") || strings.HasPrefix(ce.msg, "non-concrete value") {
		if sp, ok := s.docs.lookup(ce.pos); ok {
			msg = fmt.Sprintf("has no concrete value: set it, in one layer of the site, role or node data, to a %s: %s", sp.label, sp.doc)
		} else {
			msg = fmt.Sprintf("has no concrete value (%s): set it in one layer of the site, role or node data", strings.TrimPrefix(ce.msg, "incomplete value "))
		}
	}
	if strings.Contains(ce.msg, "does not satisfy matchN") {
		// The sentence is the comment on the matchN in the schema.
		if sp, ok := s.docs.lookup(ce.pos); ok {
			msg = sp.doc
		}
	} else if v, ok := invalidValue(ce.msg); ok {
		if sp, ok := s.docs.lookup(ce.pos); ok {
			msg = fmt.Sprintf("%s is not a valid %s: %s", v, sp.label, sp.doc)
			if m := maxRunes().FindStringSubmatch(ce.msg); m != nil {
				// A length limit's doc says whose limit it is.
				msg = fmt.Sprintf("%s is longer than %s characters, %s", v, m[1], sp.doc)
			}
		}
	}
	if field == "" && p.Resource != "" && strings.HasPrefix(ce.msg, "field not allowed") {
		kind := p.Resource.Kind()
		if !p.Resource.Valid() {
			kind = string(p.Resource)
		}
		p.Msg = fmt.Sprintf("%q is not a resource kind fsgit knows; an ID is kind:name with kind one of %s", kind, strings.Join(s.docs.kinds(), ", "))
		return p
	}
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
	if len(path) > 0 && path[0] == "site" {
		path = path[1:]
	}
	switch {
	case len(path) >= 3 && path[0] == "profiles":
		p.Resource = reconciler.ID(unquote(path[2]))
		return strings.Join(path[3:], "."), "field"
	case len(path) >= 2 && (path[0] == "roleResources" || path[0] == "nodeResources"):
		p.Resource = reconciler.ID(unquote(path[1]))
		return strings.Join(path[2:], "."), "field"
	case len(path) >= 1 && path[0] == "data":
		return strings.Join(visiblePath(path[1:]), "."), "data field"
	case len(path) >= 2 && path[0] == "nodes":
		if p.Node == "" {
			p.Node = unquote(path[1])
		}
		if len(path) >= 4 && path[2] == "resources" {
			p.Resource = reconciler.ID(unquote(path[3]))
			return strings.Join(path[4:], "."), "field"
		}
		return strings.Join(path[2:], "."), "node field"
	case len(path) >= 2 && path[0] == "roles":
		if len(path) >= 4 && path[2] == "resources" {
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
		return "field not allowed: the schema has no such field here, or no such name (a typo, a field of another kind, or a name that breaks the naming rule?)"
	case strings.HasPrefix(msg, "field is required but not present"),
		strings.HasPrefix(msg, "required field missing"):
		return "is required but not set"
	}
	return msg
}

// invalidValue returns the value of an "invalid value V (out of bound B)"
// or "invalid value V (does not satisfy F)" message.
func invalidValue(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "invalid value ")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, " (")
	if i < 0 || !(strings.Contains(rest[i:], "out of bound") || strings.Contains(rest[i:], "does not satisfy")) {
		return "", false
	}
	return rest[:i], true
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := literal.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// allowedHint says, for a data key the schema does not allow, which keys
// are allowed there, and which one was meant when one is close: "no field
// pols in base.chrony (did you mean pools?); allowed: package, pools,
// service". "" when the keys cannot be listed (a map of any key).
func allowedHint(data cue.Value, path []string) string {
	if len(path) == 0 {
		return ""
	}
	key := unquote(path[len(path)-1])
	sel := make([]cue.Selector, len(path)-1)
	for i, name := range path[:len(path)-1] {
		sel[i] = cue.Str(unquote(name))
	}
	parent := data.LookupPath(cue.MakePath(sel...))
	it, err := parent.Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	var allowed []string
	for it.Next() {
		name := it.Selector().Unquoted()
		if name != key && it.Selector().IsString() {
			allowed = append(allowed, name)
		}
	}
	if len(allowed) == 0 {
		return ""
	}
	sort.Strings(allowed)
	where := "in data"
	if len(sel) > 0 {
		where = "in " + strings.Join(path[:len(path)-1], ".")
	}
	msg := fmt.Sprintf("field not allowed: no field %s %s", key, where)
	if m := closest(key, allowed); m != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", m)
	}
	return msg + "; allowed: " + strings.Join(allowed, ", ")
}

// didYouMean is ": did you mean X?" when a candidate is close to word,
// "" otherwise.
func didYouMean(word string, candidates []string) string {
	if m := closest(word, candidates); m != "" {
		return fmt.Sprintf(": did you mean %q?", m)
	}
	return ""
}

// closest returns the candidate nearest to word by edit distance, when it
// is near enough to be a typo (at most a third of the word's length, and
// at least 1 and at most 3 edits); "" otherwise.
func closest(word string, candidates []string) string {
	limit := min(max(len(word)/3, 1), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two strings, by rune.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// dropConsequences keeps a node whose role is missing or unknown from
// failing the others: nodes read each other's data (a catalog's
// endpoints, the scrape targets), and see values left non-concrete on that
// node. Those problems on other nodes are dropped, and the node's own
// problem says how many were; everything else is kept. broken are the
// site's problems about a node's role.
func dropConsequences(all []Problem, broken []Problem) []Problem {
	if len(broken) == 0 {
		return all
	}
	bad := map[string]bool{}
	for _, b := range broken {
		bad[b.Node] = true
	}
	var out []Problem
	dropped := 0
	for _, p := range all {
		if p.incomplete && !p.Warning && !anyNode(p.Node, bad) {
			dropped++
			continue
		}
		out = append(out, p)
	}
	if dropped > 0 {
		for i := range out {
			if out[i].Node == broken[0].Node && out[i].Msg == broken[0].Msg {
				out[i].Msg += fmt.Sprintf(" (%d %s on other nodes that read its values left out until it is fixed)", dropped, pluralWord(dropped, "problem", "problems"))
				break
			}
		}
	}
	return out
}

// anyNode reports whether a problem's node list ("a, b") has a node of
// set.
func anyNode(list string, set map[string]bool) bool {
	for _, n := range strings.Split(list, ", ") {
		if set[n] {
			return true
		}
	}
	return false
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// roleProblems are the site's problems about a node's role (none, or one
// the site does not define).
func (s *Site) roleProblems() []Problem {
	var out []Problem
	for _, sp := range s.siteProblems {
		if sp.Node != "" && !sp.Warning && s.nodes[sp.Node] != nil && s.roles[s.nodes[sp.Node].role] == nil {
			out = append(out, sp.Problem)
		}
	}
	return out
}
