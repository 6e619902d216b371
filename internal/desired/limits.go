package desired

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/schema"
)

// Limits bound what evaluating a site may cost (see [sitefiles.Limits],
// where the type lives so that it can be named without linking CUE). A
// zero field takes its default; a negative one disables that limit.
//
// The limits are checked in two steps. Before CUE sees anything, the size
// of each file and of the site, and the nesting depth of each file, are
// checked by reading the files and scanning their tokens (checkTree): no
// parse tree is built, so the check costs a few milliseconds even for the
// inputs it refuses, and the inputs whose evaluation cost grows with
// depth cannot reach the evaluator. Then evaluation runs under a time
// budget, for what a cheap check cannot foresee.
type Limits = sitefiles.Limits

// The defaults of the limits, which sitefiles defines (see the reasons
// given there).
const (
	// DefaultMaxFileBytes is the default of Limits.MaxFileBytes: 1 MiB.
	DefaultMaxFileBytes = sitefiles.DefaultMaxFileBytes
	// DefaultMaxSiteBytes is the default of Limits.MaxSiteBytes: 8 MiB.
	DefaultMaxSiteBytes = sitefiles.DefaultMaxSiteBytes
	// DefaultMaxDepth is the default of Limits.MaxDepth.
	DefaultMaxDepth = sitefiles.DefaultMaxDepth
	// DefaultMaxTerms is the default of Limits.MaxTerms.
	DefaultMaxTerms = sitefiles.DefaultMaxTerms
	// DefaultEvalTimeout is the default of Limits.EvalTimeout.
	DefaultEvalTimeout = sitefiles.DefaultEvalTimeout
)

// limitNote says how a limit is raised, for the end of a message.
func limitNote(flag, config string) string {
	return fmt.Sprintf("the limit is set with fsgit's %s flag, or %s in the agent's configuration", flag, config)
}

// shape is what scanning a file found beyond a limit: where, and which
// limit (one of "depth" and "terms"); an invalid Pos when nothing is.
type shape struct {
	Pos   token.Pos
	Limit string
}

// checkShape scans src's tokens and returns the first token that is
// nested deeper than maxDepth, or that makes one chain of binary
// operators longer than maxTerms terms (a negative limit is not checked).
// It builds no syntax tree and does not recurse, so its cost is linear in
// the file's size whatever the input. Syntax errors are left to the
// parser.
func checkShape(name string, src []byte, maxDepth, maxTerms int) shape {
	type frame struct {
		colons int  // labels of the chain being read at this level
		ops    int  // binary operators of the expression being read
		interp bool // the ( of a string interpolation
	}
	var s scanner.Scanner
	f := token.NewFile(name, -1, len(src))
	s.Init(f, src, func(token.Pos, string, []interface{}) {}, 0)
	stack := []frame{{}}
	depth := 0 // len(stack)-1 plus every frame's colons
	interpNext := false
	operand := false // the token before ended an operand: an operator now is binary
	for {
		pos, tok, _ := s.Scan()
		top := &stack[len(stack)-1]
		after := operand
		operand = endsOperand(tok)
		switch {
		case tok == token.EOF:
			return shape{}
		case tok == token.INTERPOLATION:
			interpNext = true
			continue
		case tok == token.LBRACE, tok == token.LBRACK, tok == token.LPAREN:
			stack = append(stack, frame{interp: interpNext && tok == token.LPAREN})
			depth++
		case tok == token.RBRACE, tok == token.RBRACK, tok == token.RPAREN:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
				depth -= 1 + top.colons
				if top.interp && tok == token.RPAREN {
					// The scanner needs to be told where an
					// interpolated expression ends.
					if seg := s.ResumeInterpolation(); strings.HasSuffix(seg, "(") {
						interpNext, operand = true, false
						continue
					}
				}
			}
		case tok == token.COLON:
			top.colons++
			top.ops = 0
			depth++
		case tok == token.COMMA:
			depth -= top.colons
			top.colons, top.ops = 0, 0
		case tok.Precedence() > token.LowestPrec && after:
			top.ops++
			if maxTerms >= 0 && top.ops+1 > maxTerms {
				return shape{Pos: pos, Limit: "terms"}
			}
		}
		interpNext = false
		if maxDepth >= 0 && depth > maxDepth {
			return shape{Pos: pos, Limit: "depth"}
		}
	}
}

// endsOperand reports whether tok can end an operand, so that an operator
// after it is binary (a * or a =~ after an operator or a colon is unary).
func endsOperand(tok token.Token) bool {
	switch tok {
	case token.IDENT, token.INT, token.FLOAT, token.STRING, token.RPAREN, token.RBRACK, token.RBRACE,
		token.NULL, token.TRUE, token.FALSE, token.BOTTOM:
		return true
	}
	return false
}

// budget is a Site's time budget for evaluation. CUE cannot be stopped
// midway (the evaluator takes no context and has no hook to abort it), so
// the evaluation runs in a goroutine and the caller stops waiting when the
// budget is spent: the call returns the budget error, and every later call
// on the Site returns it at once. The abandoned goroutine runs on until
// CUE returns; what stops it is the process: the CLI commands exit right
// after reporting the error, and the agent (a long-running process)
// refuses the commit and, when the evaluation still runs after a grace
// period, restarts (see [BudgetError.Done]). The cheap checks before
// evaluation (sizes, depth) make the known slow inputs impossible, so the
// budget is the backstop for what they cannot foresee.
type budget struct {
	mu      sync.Mutex
	left    time.Duration
	total   time.Duration
	spent   *BudgetError // set once the budget ran out
	display string       // the site, as messages name it
}

// BudgetError is returned when evaluating a site took longer than its time
// budget (Limits.EvalTimeout).
type BudgetError struct {
	// Site is the site's directory, as messages name it.
	Site string
	// Budget is the time budget that was spent.
	Budget time.Duration
	// done is closed when the abandoned evaluation returns.
	done chan struct{}
}

// Error says which site, which limit, and how to raise it.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("%s: evaluating the site took longer than its time budget of %s and was abandoned: "+
		"a site this slow to evaluate is refused (look for a comprehension or disjunction that multiplies); %s",
		e.Site, e.Budget, limitNote("--eval-timeout", "limits.evalTimeout"))
}

// Done is closed when the abandoned evaluation has returned. Until then
// it holds a CPU and its memory: a long-running process that cannot wait
// should restart.
func (e *BudgetError) Done() <-chan struct{} { return e.done }

// run calls f, which evaluates CUE, waiting at most what is left of the
// budget (and while ctx is live). Time spent in f is charged to the
// budget.
func (b *budget) run(ctx context.Context, f func()) error {
	b.mu.Lock()
	if b.spent != nil {
		b.mu.Unlock()
		return b.spent
	}
	if b.total < 0 {
		b.mu.Unlock()
		f()
		return nil
	}
	left := b.left
	b.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}

	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(left)
	defer timer.Stop()
	select {
	case <-done:
		b.mu.Lock()
		b.left -= time.Since(start)
		b.mu.Unlock()
		return nil
	case <-timer.C:
		b.mu.Lock()
		defer b.mu.Unlock()
		b.left = 0
		b.spent = &BudgetError{Site: b.display, Budget: b.total, done: done}
		return b.spent
	case <-ctx.Done():
		// The caller gave up: the evaluation is abandoned the same way.
		b.mu.Lock()
		defer b.mu.Unlock()
		b.left = 0
		b.spent = &BudgetError{Site: b.display, Budget: b.total, done: done}
		return fmt.Errorf("%s: evaluation abandoned: %w", b.display, ctx.Err())
	}
}

// displayName is how positions name a file (or directory) of src.
func displayName(src Source, name string) string {
	if src.Display != nil {
		return src.Display(name)
	}
	return name
}

// checkTree checks, before any CUE evaluation, the size of each of the
// site's files (big lists those not read for being too big), of all of
// them together, and the shape of each (depth, terms). The site's files are the
// files of the tree that CUE reads for it (see siteFiles): a sibling
// site's files do not count.
func checkTree(src Source, files map[string][]byte, tree map[string]bool, big map[string]int64, lim Limits) error {
	names := siteFiles(src.SiteDir, files, tree, big)
	var tooBig []Problem
	for _, name := range names {
		if size, ok := big[name]; ok {
			tooBig = append(tooBig, Problem{Pos: displayName(src, name), Msg: fmt.Sprintf(
				"the file is %d bytes, more than the limit of %d bytes per file: a site is written by hand, and data this big belongs in an artifact; %s",
				size, lim.MaxFileBytes, limitNote("--max-file-bytes", "limits.maxFileBytes"))})
		}
	}
	if len(tooBig) > 0 {
		return &InvalidError{Problems: tooBig}
	}
	var total int64
	for _, name := range names {
		total += int64(len(files[name]))
	}
	slices.Sort(names)
	if lim.MaxSiteBytes >= 0 && total > lim.MaxSiteBytes {
		return &InvalidError{Problems: []Problem{{
			Pos: displayName(src, src.SiteDir),
			Msg: fmt.Sprintf("the site's .cue files (with the profiles of the repository) are %d bytes together, more than the limit of %d bytes per site; %s",
				total, lim.MaxSiteBytes, limitNote("--max-site-bytes", "limits.maxSiteBytes")),
		}}}
	}
	var probs []Problem
	for _, name := range names {
		sh := checkShape(displayName(src, name), files[name], lim.MaxDepth, lim.MaxTerms)
		switch sh.Limit {
		case "depth":
			probs = append(probs, Problem{
				Pos: fmtPos(sh.Pos),
				Msg: fmt.Sprintf("nested deeper than the limit of %d levels (each label of a chain like a: b: c: is a level, and so is each {, [ or ( around it): "+
					"a site this deep is refused before it is evaluated, since evaluation time grows faster than the depth; flatten it; %s",
					lim.MaxDepth, limitNote("--max-depth", "limits.maxDepth")),
			})
		case "terms":
			probs = append(probs, Problem{
				Pos: fmtPos(sh.Pos),
				Msg: fmt.Sprintf("an expression of more than %d terms (a chain of operators like a | b | c or 1 + 2 + 3): "+
					"it is refused before it is evaluated, since evaluation time grows faster than its length; use a list, or a pattern for an enum; %s",
					lim.MaxTerms, limitNote("--max-terms", "limits.maxTerms")),
			})
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Problems: probs}
	}
	return nil
}

// siteFiles returns, sorted, the files of the tree that CUE reads for the
// site in siteDir: those of the site's directory and its ancestors (one
// package), of the tree's profiles, and of the packages of the module
// they import, transitively. Imports are read with the parser stopping
// after the import declarations, which costs nothing whatever follows.
func siteFiles(siteDir string, files map[string][]byte, tree map[string]bool, big map[string]int64) []string {
	byDir := map[string][]string{}
	for name := range tree {
		byDir[path.Dir(name)] = append(byDir[path.Dir(name)], name)
	}
	for name := range big {
		byDir[path.Dir(name)] = append(byDir[path.Dir(name)], name)
	}
	var queue []string
	seen := map[string]bool{}
	addDir := func(dir string) {
		if !seen[dir] {
			seen[dir] = true
			queue = append(queue, dir)
		}
	}
	for d := siteDir; ; d = path.Dir(d) {
		addDir(d)
		if d == "." {
			break
		}
	}
	addDir("schema/profile")
	var out []string
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for _, name := range byDir[dir] {
			out = append(out, name)
			if _, unread := big[name]; unread {
				continue
			}
			f, err := parser.ParseFile(name, files[name], parser.ImportsOnly)
			if err != nil {
				continue // the loader reports it
			}
			for imp := range f.ImportSpecs() {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					continue
				}
				p, _, _ = strings.Cut(p, ":")
				rest, ok := strings.CutPrefix(p, schema.ModulePath+"/")
				if !ok {
					continue
				}
				rest, _, _ = strings.Cut(rest, "@")
				addDir(path.Clean(rest))
			}
		}
	}
	slices.Sort(out)
	return out
}
