//go:build lean

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/reconciler"
)

// Built with -tags lean, this package is fsgit's front for cached runs:
// the fsgit users run, which runs `fsgit apply --once` itself when the
// node's compiled catalog is cached (the site unchanged since the full
// fsgit compiled it), and hands everything else to the full fsgit beside
// it, fsgit-core, by exec (same process, arguments, environment and
// standard streams). It links neither CUE nor the Docker client nor
// Prometheus, whose packages' initialization is most of what starting the
// full fsgit costs (docs/scale.md, session 11). scripts/build.sh builds
// the pair.
//
// It runs a cached catalog only when the catalog was compiled by the
// fsgit-core it was built with: coreBuild, stamped at link time, is that
// build's identity (pass.BuildIdentity, which `fsgit-core version
// --build-identity` prints), and both are built from one tree. Without a
// stamp it runs nothing itself.
//
// It hands the command over, before it has changed or written anything:
//   - for every command but apply, and for help, completion and flags it
//     cannot parse;
//   - when the cache does not hold the node's catalog for the site's
//     current content and coreBuild (or --no-cache);
//   - when the catalog or the node's memory has a kind it does not link
//     (the Docker kinds), or the report is wanted as YAML (CUE's encoder).

// coreBuild is the identity of the fsgit-core build this front was built
// with, set by the linker (-X main.coreBuild=...): the one link-time
// setting of the package.
var coreBuild string

// coreName is the full fsgit's file name, in the front's directory.
const coreName = "fsgit-core"

// beforeCommand hands every command line but apply's to the full fsgit.
func beforeCommand(args []string) (code int, done bool) {
	if len(args) > 0 && args[0] == "apply" && coreBuild != "" && !asksHelp(args[1:]) {
		return 0, false
	}
	fmt.Fprintln(os.Stderr, "fsgit:", handOver())
	return 1, true
}

// asksHelp reports whether args ask for help, which the full fsgit gives.
func asksHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" || strings.HasPrefix(a, "--help=") {
			return true
		}
	}
	return false
}

// handOver replaces this process with the full fsgit, run with the same
// arguments. It returns only when that cannot be done, with why.
func handOver() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the full fsgit (%s): %w", coreName, err)
	}
	core := filepath.Join(filepath.Dir(exe), coreName)
	argv := append([]string{core}, os.Args[1:]...)
	err = syscall.Exec(core, argv, os.Environ())
	return fmt.Errorf("run the full fsgit, %s, which this fsgit (its front for cached runs) hands the command to: %w", core, err)
}

// handOff hands the run over for what the front cannot do: a YAML
// report (CUE's encoder), or --no-cache (an evaluation).
func handOff(f applyFlags) error {
	if f.output == outYAML || f.noCache {
		return handOver()
	}
	return nil
}

// handOffLacking hands the run over when the node's memory has a kind
// the front lacks; it returns any other error as it is.
func handOffLacking(err error) error {
	var lk *pass.LackingKindError
	if errors.As(err, &lk) {
		return handOver()
	}
	return err
}

// toYAML is never reached: handOff hands a YAML report over.
func toYAML([]byte) ([]byte, error) {
	return nil, errors.New("YAML output is written by the full fsgit")
}

// siteCompiler computes the site's key as the full fsgit does, accepts
// the catalogs coreBuild compiled, of the kinds reg has, and hands the run
// over for anything else.
func siteCompiler(_ sitefiles.Limits, reg *reconciler.Registry) pass.Compiler {
	return pass.Compiler{
		Key: sitefiles.KeyDir,
		Evaluate: func(context.Context, string, string) (*reconciler.Catalog, string, error) {
			return nil, "", handOver()
		},
		Build: func() (string, bool) { return coreBuild, coreBuild != "" },
		Has: func(kind string) bool {
			_, ok := reg.Lookup(kind)
			return ok
		},
	}
}

// newRegistry returns the kinds the front runs: every kind but the
// Docker ones.
func newRegistry() *reconciler.Registry { return newFrontRegistry() }

// completeNodes is never called: the front hands completion requests
// over.
func completeNodes(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// newRootCmd is the front's command line: apply alone. A flag it cannot
// parse hands the command over, so that the full fsgit says what is
// wrong, as it would have.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fsgit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newApplyCmd())
	root.SetFlagErrorFunc(func(*cobra.Command, error) error { return handOver() })
	return root
}
