//go:build !lean

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/reconciler"
)

// This file and the others without the build tag lean make the full
// fsgit: every command. Built with -tags lean, the package is fsgit's
// front for cached runs instead (front.go), which hands every other
// command to the full fsgit beside it.

// beforeCommand runs before the command line is parsed: the full fsgit
// runs every command itself.
func beforeCommand([]string) (code int, done bool) { return 0, false }

// handOff is where the front for cached runs hands a run to the full
// fsgit; the full fsgit runs every one itself.
func handOff(applyFlags) error { return nil }

// handOffLacking returns err: the full fsgit has every kind.
func handOffLacking(err error) error { return err }

// toYAML turns a JSON document into YAML.
func toYAML(js []byte) ([]byte, error) { return desired.YAML(js) }

// siteCompiler evaluates the CUE site for apply, within lim, on a cache
// miss.
func siteCompiler(lim sitefiles.Limits, _ *reconciler.Registry) pass.Compiler {
	return pass.Compiler{
		Key: desired.KeyDir,
		Evaluate: func(ctx context.Context, dir, node string) (*reconciler.Catalog, string, error) {
			site, err := desired.LoadDirNode(ctx, dir, node, lim)
			if err != nil {
				return nil, "", fmt.Errorf("load site %s:\n%w", dir, err)
			}
			cat, err := site.Catalog(node)
			if err != nil {
				return nil, "", fmt.Errorf("build the catalog of node %s:\n%w", node, err)
			}
			if cat.Revision == "" {
				cat.Revision = site.Revision()
			}
			return cat, site.Key(), nil
		},
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fsgit",
		Short:         "GitOps reconciler for a hybrid ML feature store",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion().line(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(
		newVersionCmd(),
		newInitCmd(),
		newApplyCmd(),
		newPlanCmd(),
		newVetCmd(),
		newRenderCmd(),
		newVerifyCmd(),
		newAgentCmd(),
		newStatusCmd(),
		newServeCmd(),
		newRunCmd(),
		newHistoryCmd(),
		newDiffCmd(),
		newHoldCmd(),
		newReleaseCmd(),
		newRollbackCmd(),
		// Each subcommand lives in its own file and is added here.
	)
	return root
}
