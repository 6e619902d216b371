// Package desired evaluates a CUE site and produces each node's catalog.
//
// A site is loaded from a repository tree (a commit's files, or a
// directory) together with the schema embedded in the binary, which is
// authoritative: the embedded schema/*.cue files replace whatever the tree
// has at schema/. The profiles (schema/profile/) come from the tree when it
// has them, from the binary otherwise. Nothing is read from the host
// filesystem beyond what the [Source] provides, and no CUE registry is ever
// contacted.
// Which files of the tree are read, and the site's content key ([Key]), are
// decided by package sitefiles, which does not link CUE.
//
// One node's catalog is computed by filling the node's name into the
// profile package's #Catalog definition, so that its cost does not grow with
// the size of the fleet; what a node needs to know of the rest of the site
// (#Topology) is evaluated only for the nodes that need it (topology.go).
// [Site.Vet] does it for every node, in parallel (one CUE context per
// worker, [Site.EvaluateNodes]), and reports every problem with a
// file:line:col position. [Site.InputKey] says whether a node's catalog can
// differ between two loads, so that fsgit plan evaluates only the nodes
// a change concerns.
package desired

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/schema"
)

// Source is where a site is loaded from (see [sitefiles.Source]).
type Source = sitefiles.Source

// Site is a loaded, evaluated site. Its methods are safe for concurrent
// use; CUE evaluation is serialized.
type Site struct {
	mu       sync.Mutex
	src      Source
	revision string
	key      string                // sitefiles.ContentKey of every file the site was evaluated from
	files    map[string]fileOrigin // load tree path -> where it came from
	display  func(string) string
	shown    map[string]fileOrigin // displayed file name -> where it came from

	srcFiles map[string][]byte // the load tree, for the workers of EvaluateNodes
	// schemaDigest is schemaKey, once found.
	schemaDigest string
	// keyParts are the parts of InputKey shared by nodes, once found.
	keyParts map[string]string
	// groups are the evaluations nodes share (groups.go), by group key.
	groups map[string]*group
	// siteAST are the site package's files, as evaluated; srcKeys their
	// nodes' source keys (sourcekey.go), once found (srcKeysDone).
	siteAST     []*ast.File
	srcKeys     map[string]string
	srcKeysDone bool
	// standIn is the random token of the stand-ins for a node's name and
	// fqdn (template.go), made the first time.
	standIn string

	ctx     *cue.Context
	site    cue.Value // the site package
	catalog cue.Value // profile.#Catalog
	// profileDefs is profile.#Profiles when #Catalog is the built-in one,
	// whose way of calling a profile groups.go may then take as its own.
	profileDefs cue.Value
	topo        topology

	name     string
	profiles map[string]bool
	roles    map[string]*roleInfo
	nodes    map[string]*nodeInfo
	order    []string // node names, sorted

	docs docIndex

	// budget is the time left for evaluation; every CUE evaluation of
	// the site runs under it.
	budget *budget

	// pruned is the number of nodes left out of the evaluation (a site
	// loaded for Source.Node); whole makes evaluate leave none out.
	pruned int
	whole  bool

	// problems found while loading that do not stop evaluation: an unknown
	// role or profile, an invalid value in the site's own structure. Vet
	// reports them; Catalog refuses the nodes they concern.
	siteProblems []siteProblem
}

// siteProblem is a problem found while loading, with the role it concerns
// ("" with no node: the whole site).
type siteProblem struct {
	Problem
	role string
}

// concerns reports whether the problem concerns node n: found on it, on
// its role, or on the whole site.
func (sp siteProblem) concerns(n *nodeInfo) bool {
	return sp.Node == n.name || (sp.Node == "" && (sp.role == n.role || sp.role == ""))
}

// hasLoadProblem reports whether a problem found at load time concerns n.
func (s *Site) hasLoadProblem(n *nodeInfo) bool {
	for _, sp := range s.siteProblems {
		if sp.concerns(n) {
			return true
		}
	}
	return false
}

type roleInfo struct {
	name     string
	profiles []string
}

// nodeInfo is a node as the site's structure declares it. Positions are
// found only when a problem needs one: finding them for every node would
// cost more than the node's own catalog.
type nodeInfo struct {
	name  string
	value cue.Value // nodes.<name>
	role  string
	// key is the node's group key (groups.go), once found (keyDone);
	// keyOK is false when it has none.
	key     string
	keyOK   bool
	keyDone bool
}

// fileOrigin says where a file of the load tree came from (see
// [sitefiles.Origin]).
type fileOrigin = sitefiles.Origin

// The origins of a file of the load tree.
const (
	originSite    = sitefiles.OriginSite
	originProfile = sitefiles.OriginProfile
	originSchema  = sitefiles.OriginSchema
)

// InvalidError is returned when a site, or one node's catalog, is invalid:
// by Load when the site cannot be evaluated at all (a syntax error, an
// import that does not resolve, a schema version the binary does not
// speak, a value that conflicts at the site level), by Catalog when the
// node's catalog is not valid.
type InvalidError struct {
	Problems []Problem
}

// Error renders every problem, one per line.
func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load evaluates the site of src. CUE errors are rendered with file:line:col
// in the error's text; the error is a *InvalidError listing every problem.
func Load(ctx context.Context, src Source) (*Site, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	siteDir, err := sitefiles.CleanSiteDir(src.SiteDir)
	if err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	src.SiteDir = siteDir
	lim := src.Limits.WithDefaults()
	big := map[string]int64{}
	t, err := sitefiles.Collect(src.FS, siteDir, lim.MaxFileBytes, big)
	if err != nil {
		return nil, fmt.Errorf("load site %s: %w", siteDir, err)
	}
	files, origins, tree, repoHash := t.Files, t.Origins, t.Repo, t.RepoHash
	if err := checkTree(src, files, tree, big, lim); err != nil {
		return nil, err
	}
	s := &Site{src: src, files: origins, srcFiles: files, revision: src.Revision, key: sitefiles.ContentKey(siteDir, files)}
	s.docs.src = map[string][]byte{}
	for name, o := range origins {
		if o != originSite {
			s.docs.src[name] = files[name]
		}
	}
	if s.revision == "" {
		s.revision = "sha256:" + repoHash
	}
	s.display = func(name string) string {
		if tree[name] && src.Display != nil {
			return src.Display(name)
		}
		return name
	}

	s.shown = make(map[string]fileOrigin, len(origins))
	for name, o := range origins {
		s.shown[s.display(name)] = o
	}

	s.budget = &budget{left: lim.EvalTimeout, total: lim.EvalTimeout, display: displayName(src, siteDir)}
	var evalErr error
	if err := s.budget.run(ctx, func() {
		evalErr = s.evaluate(files)
		if errors.Is(evalErr, errWholeSite) {
			s.reset()
			s.whole = true
			evalErr = s.evaluate(files)
		}
	}); err != nil {
		return nil, err
	}
	if evalErr != nil {
		return nil, evalErr
	}
	return s, nil
}

// evaluate is Load's CUE part: it loads and evaluates the files.
func (s *Site) evaluate(files map[string][]byte) error {
	siteDir := s.src.SiteDir
	mfs := sitefiles.NewMemFS(files)
	cfg := &load.Config{
		FS:         mfs,
		Dir:        "/",
		ModuleRoot: "/",
		Env:        []string{"CUE_REGISTRY=none"},
		FromFSPath: func(p string) string { return s.display(strings.TrimPrefix(p, "/")) },
	}
	insts := load.Instances([]string{"./" + siteDir, schema.ProfileImportPath}, cfg)
	var probs []Problem
	for _, inst := range insts {
		if inst.Err != nil {
			probs = append(probs, s.problemsFromError(inst.Err, "", "")...)
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Problems: probs}
	}
	builtinTopo := builtinTopology(files, s.files)
	var pruned map[string]*prunedNode
	if s.src.Node != "" && !s.whole && builtinTopo && importsNoSite(insts[1].ImportPaths) {
		pruned = prune(insts[0].Files, s.src.Node, siteImports(insts[0]))
	}
	s.siteAST = insts[0].Files
	s.ctx = cuecontext.New()
	vals, err := s.ctx.BuildInstances([]*build.Instance{insts[0], insts[1]})
	if err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	s.site, s.catalog = vals[0], vals[1].LookupPath(cue.MakePath(cue.Def("Catalog")))
	if err := s.catalog.Err(); err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	if err := s.checkVersion(); err != nil {
		return err
	}
	// An invalid value in the site's structure (a resource declared by a
	// node or a role) concerns that node or role: the other nodes are
	// still evaluated.
	siteErr := s.site.Validate()
	if err := s.readStructure(vals[1]); err != nil {
		return err
	}
	// The topology is evaluated when a catalog needs it (topology.go); a
	// site that does not validate is evaluated through it at once, which
	// reports what is wrong in the terms of the whole site.
	s.topo.def = vals[1].LookupPath(cue.MakePath(cue.Def("Topology")))
	if builtinFile(files, s.files, "profile/catalog.cue") {
		s.profileDefs = vals[1].LookupPath(cue.MakePath(cue.Def("Profiles")))
	}
	s.topo.builtin = siteErr == nil && builtinTopo
	if pruned != nil {
		if err := s.checkPruned(pruned); err != nil {
			return err
		}
		s.pruned = len(pruned)
	}
	if !s.topo.builtin {
		if err := s.evalTopology(); err != nil {
			return err
		}
	}
	if siteErr != nil {
		for _, ce := range cueerrors.Errors(siteErr) {
			role := ""
			if path := ce.Path(); len(path) >= 2 && path[0] == "roles" {
				role = unquote(path[1])
			}
			for _, p := range s.problemsFromError(ce, "", "") {
				s.siteProblems = append(s.siteProblems, siteProblem{Problem: p, role: role})
			}
		}
	}
	return nil
}

// reset forgets what evaluate found, before it runs again.
func (s *Site) reset() {
	s.ctx, s.site, s.catalog, s.profileDefs = nil, cue.Value{}, cue.Value{}, cue.Value{}
	s.topo = topology{}
	s.name, s.profiles, s.roles, s.nodes, s.order = "", nil, nil, nil, nil
	s.siteProblems, s.pruned = nil, 0
	s.siteAST, s.srcKeys, s.srcKeysDone = nil, nil, false
}

// LoadDir loads the site in a directory. The repository root is the
// nearest directory above it that has a cue.mod/; without one, the site's
// directory is loaded alone with the embedded module. Positions name files
// relative to the current directory. The revision is "sha256:<hex>" of the
// site's files.
func LoadDir(ctx context.Context, siteDir string) (*Site, error) {
	return LoadDirLimits(ctx, siteDir, Limits{})
}

// LoadDirLimits is LoadDir with limits on what evaluating the site may
// cost.
func LoadDirLimits(ctx context.Context, siteDir string, lim Limits) (*Site, error) {
	return LoadDirNode(ctx, siteDir, "", lim)
}

// LoadDirNode is LoadDirLimits for one node's catalog (Source.Node): the
// Site serves that node only. An empty node loads every node.
func LoadDirNode(ctx context.Context, siteDir, node string, lim Limits) (*Site, error) {
	src, err := sitefiles.DirSource(siteDir)
	if err != nil {
		return nil, err
	}
	src.Limits, src.Node = lim, node
	return Load(ctx, src)
}

// checkVersion refuses a site written for another schema version.
func (s *Site) checkVersion() error {
	want := SchemaVersion()
	v := s.site.LookupPath(cue.ParsePath("schemaVersion"))
	got, err := v.String()
	if err != nil {
		return &InvalidError{Problems: []Problem{{
			Pos: s.firstSitePos(s.site),
			Msg: fmt.Sprintf("the site does not declare schemaVersion: add schemaVersion: %q (the schema version this fsgit speaks)", want),
		}}}
	}
	if got != want {
		return &InvalidError{Problems: []Problem{{
			Pos: s.pos(v),
			Msg: fmt.Sprintf("the site was written for schema version %q, but this fsgit speaks schema version %q: use an fsgit that speaks %q, or port the site to %q", got, want, got, want),
		}}}
	}
	return nil
}

// readStructure reads the site's name, roles and nodes, and checks that
// every node's role and every role's profiles exist.
func (s *Site) readStructure(profilePkg cue.Value) error {
	name, err := s.site.LookupPath(cue.ParsePath("name")).String()
	if err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	s.name = name
	s.profiles = map[string]bool{}
	it, err := profilePkg.LookupPath(cue.MakePath(cue.Def("Profiles"))).Fields()
	if err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	for it.Next() {
		s.profiles[it.Selector().Unquoted()] = true
	}

	s.roles = map[string]*roleInfo{}
	if it, err = s.site.LookupPath(cue.ParsePath("roles")).Fields(); err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	for it.Next() {
		r := &roleInfo{name: it.Selector().Unquoted()}
		var list []cue.Value
		profs := it.Value().LookupPath(cue.ParsePath("profiles"))
		if l, err := profs.List(); err == nil {
			for l.Next() {
				list = append(list, l.Value())
			}
		}
		for _, pv := range list {
			p, err := pv.String()
			if err != nil {
				return &InvalidError{Problems: s.problemsFromError(err, "", "")}
			}
			r.profiles = append(r.profiles, p)
			if !s.profiles[p] {
				s.siteProblems = append(s.siteProblems, siteProblem{role: r.name, Problem: Problem{
					Pos: s.pos(pv),
					Msg: fmt.Sprintf("role %s lists profile %q, which does not exist (known profiles: %s)", r.name, p, strings.Join(sortedKeys(s.profiles), ", ")),
				}})
			}
		}
		s.roles[r.name] = r
	}

	s.nodes = map[string]*nodeInfo{}
	if it, err = s.site.LookupPath(cue.ParsePath("nodes")).Fields(); err != nil {
		return &InvalidError{Problems: s.problemsFromError(err, "", "")}
	}
	roleField := cue.MakePath(cue.Str("role"))
	for it.Next() {
		n := &nodeInfo{name: it.Selector().Unquoted(), value: it.Value()}
		rv := it.Value().LookupPath(roleField)
		role, err := rv.String()
		if err != nil {
			s.siteProblems = append(s.siteProblems, siteProblem{Problem: Problem{Pos: s.pos(n.value), Node: n.name, Msg: fmt.Sprintf("node %s has no role: set role to one of the site's roles (%s)", n.name, strings.Join(sortedKeys(s.roles), ", "))}})
		} else {
			n.role = role
			if s.roles[role] == nil {
				s.siteProblems = append(s.siteProblems, siteProblem{Problem: Problem{
					Pos:  s.pos(rv),
					Node: n.name,
					Msg:  fmt.Sprintf("node %s has role %q, which is not one of the site's roles (%s)%s", n.name, role, strings.Join(sortedKeys(s.roles), ", "), didYouMean(role, sortedKeys(s.roles))),
				}})
			}
		}
		s.nodes[n.name] = n
		s.order = append(s.order, n.name)
	}
	sort.Strings(s.order)
	return nil
}

// Name returns the site's name.
func (s *Site) Name() string { return s.name }

// Revision returns what the site was loaded from: the source's revision,
// or "sha256:<hex>" of the site's files.
func (s *Site) Revision() string { return s.revision }

// Nodes returns the names of the site's nodes, sorted.
func (s *Site) Nodes() []string { return append([]string(nil), s.order...) }

// Role returns the role of a node, or "" for an unknown node.
func (s *Site) Role(node string) string {
	if n := s.nodes[node]; n != nil {
		return n.role
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
