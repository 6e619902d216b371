package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
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
written for another schema version. Exit status 0 when the site is valid
(warnings are printed but allowed), 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			probs := site.Vet(cmd.Context())
			errs := 0
			for _, p := range probs {
				fmt.Fprintln(cmd.ErrOrStderr(), p)
				if !p.Warning {
					errs++
				}
			}
			if errs > 0 {
				return &exitError{code: 1, err: fmt.Errorf("site %s: %d %s", site.Name(), errs, plural(errs, "problem", "problems"))}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "site %s: %d %s valid\n", site.Name(), len(site.Nodes()), plural(len(site.Nodes()), "node", "nodes"))
			return nil
		},
	}
	cmd.Flags().StringVar(&siteDir, "site", "sites/example", "the site's directory")
	addLimitFlags(cmd, &lim)
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
