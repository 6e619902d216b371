//go:build !lean

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/invariants"
	"github.com/fsgit/fsgit/internal/plan"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

type planFlags struct {
	repo      string
	base      string
	head      string
	mergeBase bool
	site      string
	nodes     []string
	output    string
	statusRef string
	limits    desired.Limits
}

func newPlanCmd() *cobra.Command {
	f := &planFlags{}
	cmd := &cobra.Command{
		Use:   "plan --base REV [--head REV]",
		Short: "Show what a change to the site would do on each node, from git alone",
		Long: `plan evaluates the site at two revisions of the repository, from its objects (no
checkout), and prints for every node whose catalog changes: resources created, changed
(field by field) or removed, what would restart or be recreated, and destructive changes,
flagged, with the ones held as pending destroys. Where the status branch holds a node's
status, the plan also says whether the node already runs the head revision and what is
drifted or failing there now.

The checks across nodes (docs/invariants.md) run on the head revision: a change on
one node that breaks another is shown on both, and a waived check with its reason.

Exit codes: 0 no change, 2 changes, 1 error (an invalid head revision included, or a
check across nodes that breaks at head, with its sentence).`,
		Example: `  # what the last commit does, per node
  fsgit plan --base HEAD~1
  # a pull request's comment: against the merge base, as markdown
  fsgit plan --base origin/main --head HEAD --merge-base -o markdown
  # one node, as JSON
  fsgit plan --base main --node online-1 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			evalGC()
			return runPlan(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVar(&f.repo, "repo", ".", "repository (any directory inside it)")
	cmd.Flags().StringVar(&f.base, "base", "", "base revision (required)")
	cmd.Flags().StringVar(&f.head, "head", "HEAD", "head revision")
	cmd.Flags().BoolVar(&f.mergeBase, "merge-base", false, "plan against the merge base of --base and --head, as a pull request would merge")
	cmd.Flags().StringVar(&f.site, "site", "", "site directory, relative to the repository root (default: the site the current directory is in, else the repository's one site)")
	nodesFlag(cmd, &f.nodes, "only these nodes")
	addOutputFlag(cmd, &f.output, outText, outText, outMarkdown, outJSON, outYAML)
	cmd.Flags().StringVar(&f.statusRef, "status-ref", "fsgit/status", "status branch to read the nodes' observed state from (skipped when missing)")
	addLimitFlags(cmd, &f.limits)
	_ = cmd.MarkFlagRequired("base")
	return cmd
}

func runPlan(ctx context.Context, out io.Writer, f *planFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	repo, err := gitsource.OpenLocal(f.repo)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	baseRev := f.base
	if f.mergeBase {
		if baseRev, err = repo.MergeBase(f.base, f.head); err != nil {
			return fmt.Errorf("plan: %w", err)
		}
	}
	siteDir, err := planSite(repo, f.repo, f.head, f.site)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}

	// The two revisions are loaded at once: each has its own CUE
	// context. plan.Evaluate then evaluates every head node, and at base
	// only the nodes whose inputs differ.
	type side struct {
		site *desired.Site
		hash string
		err  error
	}
	baseCh := make(chan side, 1)
	go func() {
		defer crash.Exit()
		var s side
		s.site, s.hash, s.err = siteAt(ctx, repo, baseRev, siteDir, f.limits)
		baseCh <- s
	}()
	headS, headHash, err := siteAt(ctx, repo, f.head, siteDir, f.limits)
	base := <-baseCh
	var sides *plan.Sides
	if err == nil {
		if base.err != nil {
			// A base that does not validate (or has no site yet) is
			// planned against as empty: the head is what gets applied.
			var inv *desired.InvalidError
			if !errors.As(base.err, &inv) && !errors.Is(base.err, fs.ErrNotExist) {
				return fmt.Errorf("plan: base revision %s: %w", baseRev, base.err)
			}
			base.site = nil
		}
		sides, err = plan.Evaluate(ctx, base.site, headS, f.nodes)
	}
	if err != nil {
		var inv *desired.InvalidError
		if errors.As(err, &inv) {
			return &exitError{code: 1, err: fmt.Errorf("head revision %s does not validate:\n%w", f.head, err)}
		}
		return fmt.Errorf("plan: head revision %s: %w", f.head, err)
	}
	baseCats, headCats, baseHash := sides.Base, sides.Head, base.hash
	var hs *headSite
	if sides.HeadAll != nil {
		hs = &headSite{site: headS, cats: sides.HeadAll}
	}

	// The checks across nodes run beside the diff: both only read the
	// catalogs.
	checked := make(chan error, 1)
	var inv invariants.Result
	go func() {
		defer crash.Exit()
		var err error
		inv, err = checkHead(hs)
		checked <- err
	}()
	p := plan.Compute(baseCats, headCats, newRegistry())
	p.Base, p.Head = baseHash, headHash
	addObserved(repo, f.statusRef, headHash, p)
	if err := <-checked; err != nil {
		return fmt.Errorf("plan: head revision %s: %w", f.head, err)
	}
	addInvariants(p, hs, inv, f.nodes)

	switch f.output {
	case outJSON:
		err = p.WriteJSON(out)
	case outYAML:
		var buf bytes.Buffer
		if err = p.WriteJSON(&buf); err == nil {
			var y []byte
			if y, err = desired.YAML(buf.Bytes()); err == nil {
				_, err = out.Write(y)
			}
		}
	case "markdown":
		err = p.WriteMarkdown(out)
	default:
		err = p.WriteText(out)
	}
	if err != nil {
		return fmt.Errorf("plan: write: %w", err)
	}
	if broken := p.Broken(); len(broken) > 0 {
		lines := make([]string, len(broken))
		for i, inv := range broken {
			lines[i] = fmt.Sprintf("%s (check %s)", inv.Message, inv.Check)
		}
		return &exitError{code: 1, err: fmt.Errorf("head revision %s breaks %d %s across nodes:\n%s", f.head, len(broken), plural(len(broken), "invariant", "invariants"), strings.Join(lines, "\n"))}
	}
	for _, n := range p.Nodes {
		if n.Status != plan.NodeUnchanged {
			return &exitError{code: 2}
		}
	}
	return nil
}

// planSite returns the site directory, relative to the repository's
// root: the one given, else the sites/ directory the current directory is
// in, else the one site the head revision has.
func planSite(repo *gitsource.Local, repoDir, head, site string) (string, error) {
	if site != "" {
		return path.Clean(filepath.ToSlash(site)), nil
	}
	// The current directory counts when it is in the repository planned.
	cwd, err := os.Getwd()
	if top := gitTop(cwd); err == nil && top != "" && top == gitTop(repoDir) {
		if r, err := filepath.Rel(top, cwd); err == nil {
			parts := strings.Split(filepath.ToSlash(r), "/")
			if len(parts) >= 2 && parts[0] == "sites" {
				return "sites/" + parts[1], nil
			}
		}
	}
	fsys, _, err := repo.Tree(head)
	if err != nil {
		return "", err
	}
	ents, err := fs.ReadDir(fsys, "sites")
	if err != nil {
		return "", fmt.Errorf("no sites/ directory at %s: pass --site DIR", head)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	switch len(names) {
	case 1:
		return "sites/" + names[0], nil
	case 0:
		return "", fmt.Errorf("no site in sites/ at %s: pass --site DIR", head)
	}
	return "", fmt.Errorf("%d sites in sites/ at %s (%s): pass --site DIR", len(names), head, strings.Join(names, ", "))
}

// gitTop is the top of the git work tree dir is in ("" when none).
func gitTop(dir string) string {
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
		d = filepath.Dir(d)
	}
}

// headSite is the evaluated head revision: the site and every node's
// valid catalog with its sources.
type headSite struct {
	site *desired.Site
	cats []desired.NodeCatalog
}

// checkHead runs the checks across nodes on the head revision (nothing
// when head is nil: a node left out of the plan does not validate).
func checkHead(head *headSite) (invariants.Result, error) {
	if head == nil {
		return invariants.Result{}, nil
	}
	in, err := invariants.FromSite(head.site, head.cats)
	if err != nil {
		return invariants.Result{}, err
	}
	return invariants.Check(in), nil
}

// addInvariants records what the checks across nodes found failing, or
// waived, on every node involved (of the planned ones, when --node names
// some).
func addInvariants(p *plan.Plan, head *headSite, res invariants.Result, only []string) {
	if head == nil {
		return
	}
	roles := map[string]string{}
	for _, nc := range head.cats {
		roles[nc.Catalog.Node] = nc.Catalog.Role
	}
	for _, f := range append(res.Findings, res.Waived...) {
		if len(only) > 0 && !slices.Contains(only, f.Side.Node) && !slices.Contains(only, f.Other.Node) {
			continue
		}
		p.AddInvariant(f.Check, []plan.Ref{{Node: f.Side.Node, Resource: f.Side.Resource}, {Node: f.Other.Node, Resource: f.Other.Resource}},
			f.Causes, invariantMessage(f), f.Waived, roles)
	}
}

// invariantMessage is a finding's sentence with its first position.
func invariantMessage(f invariants.Finding) string {
	if f.Side.Pos == "" {
		return fmt.Sprintf("node %s %s: %s", f.Side.Node, f.Side.Resource, f.Msg)
	}
	return fmt.Sprintf("node %s %s (%s): %s", f.Side.Node, f.Side.Resource, f.Side.Pos, f.Msg)
}

// siteAt loads the site at rev, and returns the revision's full hash.
func siteAt(ctx context.Context, repo *gitsource.Local, rev, siteDir string, lim desired.Limits) (*desired.Site, string, error) {
	fsys, hash, err := repo.Tree(rev)
	if err != nil {
		return nil, "", err
	}
	if _, err := fs.Stat(fsys, siteDir); err != nil {
		return nil, hash, fmt.Errorf("site %s at %s: %w", siteDir, rev, err)
	}
	site, err := desired.Load(ctx, desired.Source{FS: fsys, SiteDir: siteDir, Revision: hash, Limits: lim})
	return site, hash, err
}

// addObserved fills in, for each planned node, what the status branch says
// the node has now. A missing branch or node file is not an error: the plan
// is then the configuration diff alone. A node file that cannot be read is
// shown as such (Observed.Unreadable), not taken for a missing one.
func addObserved(repo *gitsource.Local, ref, head string, p *plan.Plan) {
	if ref == "" {
		return
	}
	var fsys fs.FS
	for _, r := range []string{ref, "refs/remotes/origin/" + ref} {
		if t, _, err := repo.Tree(r); err == nil {
			fsys = t
			break
		}
	}
	if fsys == nil {
		return
	}
	for i := range p.Nodes {
		name := "nodes/" + p.Nodes[i].Node + ".json"
		b, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var st *status.Node
		if err == nil {
			st, err = status.Decode(b)
		}
		if err != nil {
			p.Nodes[i].Observed = &plan.Observed{Unreadable: fmt.Sprintf("read %s on %s: %v", name, ref, err)}
			continue
		}
		p.Nodes[i].Observed = &plan.Observed{
			AppliedRevision: st.AppliedRevision,
			HasHead:         st.AppliedRevision == head,
			Drifted:         itemIDs(st.Drifted),
			Failed:          itemIDs(st.Failed),
			PendingDestroy:  itemIDs(st.PendingDestroy),
			Holds:           planHolds(st.Holds, p.Nodes[i].Resources),
		}
	}
}

func itemIDs(items []status.Item) []reconciler.ID {
	ids := make([]reconciler.ID, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// planHolds says which planned changes each hold on the node keeps
// waiting.
func planHolds(holds []status.Hold, planned []plan.ResourcePlan) []plan.Hold {
	var out []plan.Hold
	for _, h := range holds {
		ph := plan.Hold{ID: h.ID, By: h.By, Reason: h.Reason, Until: h.Until}
		for _, r := range planned {
			if h.ID == "" || h.ID == r.ID {
				ph.Waits = append(ph.Waits, r.ID)
			}
		}
		out = append(out, ph)
	}
	return out
}
