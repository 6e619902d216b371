//go:build !lean

package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/invariants"
)

func newVetCmd() *cobra.Command {
	var siteDir string
	var lim desired.Limits
	cmd := &cobra.Command{
		Use:   "vet",
		Short: "Check a site: every node's catalog must evaluate, be concrete and have sound edges",
		Long: `Vet evaluates every node of the site and reports each problem on one line,
"file:line:col: node N: resource R: what is wrong": type and constraint
violations, missing required fields, unknown roles and profiles, require and
notify naming a resource that is not there, dependency cycles, duplicate
resource IDs, relative or escaping paths, values left non-concrete, and a site
written for another schema version. When every node is valid, it checks the
nodes as one system (docs/invariants.md): endpoints, the Iceberg catalog's
database, user, secret and grants, listen addresses, ports, Weaviate's modules
and secrets, each finding naming both sides. Exit status 0 when the site is valid
(warnings are printed but allowed), 1 otherwise.

Without --site, vet checks the site the current directory is in (a directory of
sites/), else the one site of the repository around it.`,
		Example: `  # the site of the repository the current directory is in
  fsgit vet
  # a given site
  fsgit vet --site sites/prod`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			evalGC()
			siteDir, err := resolveSite(siteDir)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			site, err := desired.LoadDirLimits(cmd.Context(), siteDir, lim)
			if err != nil {
				var inv *desired.InvalidError
				if errors.As(err, &inv) {
					for _, p := range inv.Problems {
						fmt.Fprintln(cmd.ErrOrStderr(), p)
					}
					return &exitError{code: 1, err: fmt.Errorf("site %s is invalid", siteDir)}
				}
				return &exitError{code: 1, err: err}
			}
			probs, cats := site.VetCatalogs(cmd.Context())
			errs := 0
			for _, p := range probs {
				fmt.Fprintln(cmd.ErrOrStderr(), p)
				if !p.Warning {
					errs++
				}
			}
			if errs == 0 {
				// The checks across nodes, on the catalogs vet evaluated.
				n, err := vetInvariants(cmd.ErrOrStderr(), site, cats)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				errs += n
			}
			if errs > 0 {
				return &exitError{code: 1, err: fmt.Errorf("site %s: %d %s", site.Name(), errs, plural(errs, "problem", "problems"))}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "site %s: %d %s valid\n", site.Name(), len(site.Nodes()), plural(len(site.Nodes()), "node", "nodes"))
			return nil
		},
	}
	siteFlag(cmd, &siteDir, "the site's directory")
	addLimitFlags(cmd, &lim)
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// vetInvariants runs the checks across nodes and prints what they find:
// findings (errors), waived findings, and waivers that waive nothing
// (warnings). It returns the number of findings.
func vetInvariants(w io.Writer, site *desired.Site, cats []desired.NodeCatalog) (int, error) {
	in, err := invariants.FromSite(site, cats)
	if err != nil {
		return 0, err
	}
	res := invariants.Check(in)
	for _, f := range res.Findings {
		fmt.Fprintln(w, f)
	}
	for _, f := range res.Waived {
		fmt.Fprintln(w, f)
	}
	for _, u := range res.Unused {
		fmt.Fprintf(w, "warning: invariants.waive: check %s for node %s resource %s waives nothing: remove the waiver\n", u.Check, u.Node, u.Resource)
	}
	return len(res.Findings), nil
}
