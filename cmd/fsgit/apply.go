package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// applyFlags are the flags of fsgit apply.
type applyFlags struct {
	once        bool
	site        string
	node        string
	noop        bool
	root        string
	statePath   string
	summaryPath string
	secretsDir  string
	ageIdentity string
	parallel    int
	timeout     time.Duration
	lockTimeout time.Duration
	output      string
	verbose     bool
	noPrune     bool
	noCache     bool
	limits      sitefiles.Limits
}

func newApplyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply --once --site DIR --node NAME [--noop] [--root DIR]",
		Short: "Evaluate the site for a node and converge the node once",
		Long: `apply evaluates the CUE site in DIR for one node, observes the node, applies what
differs in dependency order, restarts what the changes notify, and prints a report.

With --noop nothing is changed and nothing is written (not even the state): the
report says what would change and what would restart. With --root every managed path
is placed under DIR, so that a site can be applied in a sandbox; kinds that cannot
honour a root (packages, services, accounts) are reported as skipped.

The node's compiled catalog is cached next to the state file
(catalog-<node>.json), keyed by a hash of every file the site is evaluated from
and by the fsgit build: while neither changes, the next run reads it instead of
evaluating CUE. Noop reads the cache but never writes it; --no-cache neither
reads nor writes it. With -v the log says where the catalog came from.

Exit codes (Puppet's detailed codes): 0 nothing changed, 2 changes (or, in noop,
changes found), 4 failures, 6 changes and failures, 1 the run could not start.`,
		Example: `  # what would change on this host, in a sandbox, changing nothing
  fsgit apply --once --site sites/prod --root /tmp/sandbox --noop
  # converge node online-1 now, with the report as JSON
  fsgit apply --once --node online-1 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The heap's huge pages and the collector's ballast
			// were prepared before the packages initialized, from
			// the command line (internal/startheap).
			return runApply(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.once, "once", false, "run once and exit (the daemon is fsgit agent)")
	siteFlag(cmd, &f.site, "the site's directory (sites/<name> of the repository)")
	nodeFlag(cmd, &f.node, "the node to converge (default: the host name)")
	fl.BoolVar(&f.noop, "noop", false, "change nothing; report what would change and restart")
	fl.StringVar(&f.root, "root", "", "prefix every managed path with this directory (a sandbox)")
	fl.StringVar(&f.statePath, "state", "", "the state file (default "+state.DefaultPath+", under --root if set)")
	fl.StringVar(&f.summaryPath, "summary", "", "the last-run summary file (default "+state.DefaultSummaryPath+", under --root if set)")
	fl.StringVar(&f.secretsDir, "secrets-dir", secrets.DefaultDir, "directory of secret files (root only)")
	fl.StringVar(&f.ageIdentity, "age-identity", "", "the node's age identity, to decrypt <site>/secrets/<name>.age")
	fl.IntVar(&f.parallel, "parallel", reconciler.DefaultParallel, "how many independent resources to handle at once")
	fl.DurationVar(&f.timeout, "timeout", reconciler.DefaultTimeout, "time limit for one resource")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", state.DefaultTimeout, "how long to wait for the state file's lock")
	addOutputFlag(cmd, &f.output, outText)
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list unchanged resources and log each resource")
	fl.BoolVar(&f.noPrune, "no-prune", false, "do not remove resources that left the catalog")
	fl.BoolVar(&f.noCache, "no-cache", false, "evaluate the site even if the compiled catalog is cached, and do not cache it")
	addLimitFlags(cmd, &f.limits)
	return cmd
}

// couldNotRun wraps an error that kept the run from starting: exit code 1.
func couldNotRun(err error) error { return &exitError{code: 1, err: err} }

func runApply(ctx context.Context, stdout, stderr io.Writer, f applyFlags) error {
	if !f.once {
		return couldNotRun(errors.New("apply runs once and needs --once; the daemon is fsgit agent"))
	}
	if err := handOff(f); err != nil {
		return couldNotRun(err)
	}
	site, err := resolveSite(f.site)
	if err != nil {
		return couldNotRun(err)
	}
	if err := checkParallel(f.parallel); err != nil {
		return couldNotRun(err)
	}
	if f.node == "" {
		h, err := os.Hostname()
		if err != nil {
			return couldNotRun(fmt.Errorf("find the node's name: %w (pass --node)", err))
		}
		f.node = h
	}
	if ctx == nil {
		ctx = context.Background()
	}
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	progress := newProgress(stderr)
	reg := newRegistry()
	defer reg.Close() // its kinds' clients: Docker Engine API, MariaDB pools
	local := pass.Local{
		Site: site, Node: f.node, Noop: f.noop, Root: f.root,
		StatePath: f.statePath, SummaryPath: f.summaryPath,
		SecretsDir: f.secretsDir, AgeIdentity: f.ageIdentity,
		NoCache: f.noCache, Compiler: siteCompiler(f.limits, reg), LockTimeout: f.lockTimeout,
		Engine:  reconciler.NewEngine(reconciler.Config{Registry: reg, Log: log, Parallel: f.parallel, Timeout: f.timeout}),
		Options: reconciler.RunOptions{Progress: progress.update, NoPrune: f.noPrune},
		Interrupt: func() {
			fmt.Fprintln(stderr, "fsgit: stopping after the resources in hand (signal again to cancel them)")
		},
		Log: log,
	}
	res := local.Run(ctx)
	progress.done()
	if res.Err != nil {
		return couldNotRun(handOffLacking(res.Err))
	}
	rep := res.Report
	if err := writeReport(stdout, f.output, f.verbose, rep); err != nil {
		return err
	}

	if res.RecordErr != nil {
		// The node changed but its memory did not: say so, and count it as
		// a failure.
		return &exitError{code: rep.ExitCode() | 4, err: fmt.Errorf("the run is not recorded: %w", res.RecordErr)}
	}
	return runExit(rep)
}
