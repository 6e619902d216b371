package desired

import (
	"errors"
	"fmt"
	"runtime"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/reconciler"
)

// A node that declares many resources itself (an inventory of files, a
// generated list) spends most of its catalog's evaluation typing them by
// schema.#Resources, on one core: a cue.Context is not safe for
// concurrent use. A site loaded for that node (Source.Node) therefore
// evaluates them in two CUE contexts at once: the site itself keeps the
// first share of the node's resources, and a second evaluation of the
// same files, built and run in parallel, keeps the rest and decodes them;
// the node's catalog is assembled from both shares. Each of the two is an
// ordinary evaluation of the site, with fewer resources in the node.
//
// That is done only where the shares cannot interact: the site's nodes
// are plain data (plainNodeEntries: every declaration is an entry of a
// top-level `nodes: {...}`, nothing else adds to nodes), the node
// declares resources in one struct whose entries have distinct literal
// labels (each is then a resource of its own, typed by its ID alone),
// nothing reads nodes, and the catalog and topology are the built-in ones
// (the built-in #Catalog reads node.resources for nodeResources only).
//
// Whenever either share has a problem (a warning included), or a caller
// needs more than the node's catalog (its Sources, the site's values, the
// other nodes), the site is evaluated again whole (unsplit), as it would
// have been without the split: problems, positions and values are then
// exactly those of a whole evaluation.

// errNotKept ends the second share's evaluation when its files do not
// hold the share it was given.
var errNotKept = errors.New("the second share of the node's resources is not in the files")

// defaultSplitMin is the fewest resources a node must declare itself for
// its catalog to be evaluated in two shares: below it, the second
// evaluation's fixed cost (the schema, the profiles, the site) outweighs
// what it takes off the first.
const defaultSplitMin = 256

// splitJob is the second share of a split node's resources: its
// evaluation runs in a goroutine of its own, on a Site of its own.
type splitJob struct {
	// from and to are the indexes of the entries it keeps, among the
	// fields of the node's resources struct; total is their number.
	from, to, total int
	done            chan struct{}
	// own is its node part, decoded; probs are every problem its
	// evaluation found (none: the part may be merged).
	own   decodedPart
	probs []Problem
}

// splitResources returns the fields of node's resources struct, when the
// site's files make a split sound (see above): nil otherwise. files are
// the site package's files, none of which reads nodes (the caller checks
// it).
func splitResources(files []*ast.File, node string) (lit *ast.StructLit, fields []*ast.Field) {
	entries := plainNodeEntries(files)
	if entries == nil {
		return nil, nil
	}
	for _, e := range entries[node] {
		for _, d := range e.Elts {
			f, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			if name, ok := plainLabel(f.Label); !ok || name != "resources" {
				continue
			}
			if lit != nil {
				// Declared twice: the declarations unify.
				return nil, nil
			}
			if lit, ok = f.Value.(*ast.StructLit); !ok {
				return nil, nil
			}
		}
	}
	if lit == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, d := range lit.Elts {
		switch d := d.(type) {
		case *ast.CommentGroup:
		case *ast.Field:
			name, ok := plainLabel(d.Label)
			if !ok || seen[name] || d.Constraint != token.ILLEGAL {
				return nil, nil
			}
			seen[name] = true
			fields = append(fields, d)
		default:
			return nil, nil
		}
	}
	return lit, fields
}

// keepFields makes lit hold fields[from:to] only.
func keepFields(lit *ast.StructLit, fields []*ast.Field, from, to int) {
	elts := make([]ast.Decl, 0, to-from)
	for _, f := range fields[from:to] {
		elts = append(elts, f)
	}
	lit.Elts = elts
}

// startSplit is called by evaluate with the site package's files, before
// they are built: on the site Load made for its node, when the node's
// resources are many and a split is sound, it starts the second share's
// evaluation and keeps the first share in files. On the second share's
// own site (cut), it keeps that share. It reports false when the second
// share cannot keep what it was given, cutKept stays false (and its part
// is not merged).
func (s *Site) startSplit(files []*ast.File, builtinCatalog bool) {
	if s.cut != nil {
		lit, fields := splitResources(files, s.src.Node)
		if lit != nil && len(fields) == s.cut.total {
			keepFields(lit, fields, s.cut.from, s.cut.to)
			s.cutKept = true
		}
		return
	}
	if s.splitMin <= 0 || !builtinCatalog || runtime.GOMAXPROCS(0) < 2 {
		// With one processor, a second share is only more work.
		return
	}
	lit, fields := splitResources(files, s.src.Node)
	if lit == nil || len(fields) < s.splitMin {
		return
	}
	// Halves: the second share parses the files again, but evaluates
	// neither the profiles nor the site for this site's callers (in a
	// profile of BenchmarkRender_1000Files the two took about as long).
	k := len(fields) / 2
	job := &splitJob{from: k, to: len(fields), total: len(fields), done: make(chan struct{})}
	keepFields(lit, fields, 0, k)
	s.split = job
	other := &Site{
		src:      s.src,
		revision: s.revision,
		key:      s.key,
		files:    s.files,
		srcFiles: s.srcFiles,
		display:  s.display,
		shown:    s.shown,
		budget:   s.budget,
		whole:    s.whole,
		cut:      job,
	}
	other.docs.src = s.docs.src
	go func() {
		defer crash.Exit()
		defer close(job.done)
		job.own, job.probs = other.splitShare()
	}()
}

// splitShare evaluates the second share (s is its own site) and decodes
// the node's part of it.
func (s *Site) splitShare() (decodedPart, []Problem) {
	if err := s.evaluate(s.srcFiles); err != nil {
		return decodedPart{}, []Problem{{Msg: fmt.Sprintf("the second share of the node's resources: %v", err)}}
	}
	_, _, parts, probs, ok := s.catalogParts(s.src.Node, true)
	if !ok || len(parts) != 1 || !parts[0].ok {
		probs = append(probs, Problem{Msg: "the second share of the node's resources did not decode"})
	}
	if len(probs) > 0 {
		return decodedPart{}, probs
	}
	return parts[0], nil
}

// mergeSplit assembles the node's catalog from this site's parts and the
// second share's node part, when neither has a problem and no warning
// concerns the second share's resources (a warning's position is found in
// the part its resource comes from); otherwise it evaluates the whole
// site and the catalog again.
func (s *Site) mergeSplit(node string, n *nodeInfo, data cue.Value, parts []decodedPart, probs []Problem, ok bool) (*reconciler.Catalog, *Sources, []Problem) {
	job := s.split
	<-job.done
	if ok && len(probs) == 0 && len(job.probs) == 0 {
		cat, src, warnings := s.assemble(n, data, append(parts, job.own), nil)
		if cat != nil && !concerns(warnings, job.own.res) {
			return cat, src, warnings
		}
	}
	if probs := s.unsplit(); probs != nil {
		return nil, nil, probs
	}
	return s.catalogFor(node)
}

// unsplit evaluates the whole site again, without a split, when it was
// loaded with one; the problems say why it could not (nil: done).
func (s *Site) unsplit() []Problem {
	if s.split == nil {
		return nil
	}
	// The second share's goroutine may still run: its result is left.
	s.reset()
	s.split, s.splitMin = nil, 0
	err := s.evaluate(s.srcFiles)
	if errors.Is(err, errWholeSite) {
		s.reset()
		s.whole = true
		err = s.evaluate(s.srcFiles)
	}
	if err == nil {
		return nil
	}
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Problems
	}
	return []Problem{{Node: s.src.Node, Msg: err.Error()}}
}

// concerns reports whether a problem is not a warning, or is a warning
// about one of res.
func concerns(probs []Problem, res []reconciler.Resource) bool {
	ids := make(map[reconciler.ID]bool, len(res))
	for _, r := range res {
		ids[r.ID] = true
	}
	for _, p := range probs {
		if !p.Warning || p.Resource == "" || ids[p.Resource] {
			return true
		}
	}
	return false
}
