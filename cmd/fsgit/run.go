//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

type runFlags struct {
	config  string
	noop    bool
	output  string
	verbose bool
	now     bool
	reason  string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [--noop] [--config FILE] [-o text|json|yaml]",
		Short: "Have the agent poll and converge now (puppet agent -t)",
		Long: `run asks the running agent, over its local socket, to poll the branch and converge
the node now, without waiting for the next poll. Each resource's result is shown on
stderr as the run goes; the report follows on stdout.

Disruptive changes (restarts, recreates) wait for the node's maintenance window when
the site declares windows (operations.windows of the site, role or node); --now runs
them at once, with a --reason that is recorded in the run's history.

With --noop the agent observes the catalog in force and changes nothing; it does not
poll (a poll that finds a new commit applies it).

With no agent running, run does what the agent would do once, from the agent's
configuration: it polls the branch, verifies and loads the tip (with git unreachable,
the last applied commit from the git cache), runs it and records the run.

Exit codes (Puppet's detailed codes): 0 nothing changed, 2 changes (or, in noop,
changes found), 4 failures, 6 changes and failures, 1 the run could not happen.`,
		Example: `  # converge now
  fsgit run
  # what a run would change, changing nothing
  fsgit run --noop
  # restart outside the maintenance window
  fsgit run --now --reason "INC-42: apply the fix now"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	fl.BoolVar(&f.noop, "noop", false, "change nothing; report what would change")
	addOutputFlag(cmd, &f.output, outText)
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list unchanged resources too")
	fl.BoolVar(&f.now, "now", false, "run disruptive changes now, outside the maintenance window (needs --reason)")
	fl.StringVar(&f.reason, "reason", "", "why --now: recorded in the run's history and logged")
	return cmd
}

func runNow(ctx context.Context, stdout, stderr io.Writer, f runFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.now && f.reason == "" {
		return couldNotRun(errors.New("--now needs a reason (--reason): it is recorded"))
	}
	cfg, err := agent.LoadConfig(schema.Files(), f.config)
	if err != nil {
		return couldNotRun(err)
	}
	req := agent.RunRequest{Noop: f.noop, Now: f.now, Reason: f.reason}
	last, err := agent.NewClient(cfg.Socket).Run(ctx, req, func(ev agent.RunEvent) { showRunEvent(stderr, ev) })
	var rep *reconciler.Report
	switch {
	case err == nil && last.Error != "":
		return couldNotRun(fmt.Errorf("the agent could not run: %s", last.Error))
	case err == nil:
		rep = last.Report
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("ask the agent on %s: %w", cfg.Socket, err))
	default:
		// No agent answers: do its work once.
		fmt.Fprintf(stderr, "fsgit: no agent answers on %s: running once from %s\n", cfg.Socket, f.config)
		if rep, err = runOnceReq(ctx, stderr, cfg, req, f.verbose); err != nil {
			if errors.Is(err, state.ErrLocked) {
				err = fmt.Errorf("%w\nan agent holds the state file but does not answer on %s: is it starting?", err, cfg.Socket)
			}
			return couldNotRun(err)
		}
	}
	if err := writeReport(stdout, f.output, f.verbose, rep); err != nil {
		return err
	}
	return runExit(rep)
}

// showRunEvent shows a streamed event as one line: a resource that did
// something (or would), or a note.
func showRunEvent(w io.Writer, ev agent.RunEvent) {
	switch {
	case ev.Note != "":
		fmt.Fprintln(w, "fsgit:", ev.Note)
	case ev.Result != nil:
		r := ev.Result
		if r.Outcome == reconciler.Unchanged && !r.Refreshed {
			return
		}
		fmt.Fprintf(w, "  %-16s %s\n", r.Outcome, r.ID)
	}
}

// runOnceReq does the agent's work for req once, in this process.
func runOnceReq(ctx context.Context, stderr io.Writer, cfg *agent.Config, req agent.RunRequest, verbose bool) (*reconciler.Report, error) {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg := newRegistry()
	defer reg.Close() // its kinds' clients: Docker Engine API, MariaDB pools
	a, err := agent.New(agent.Options{
		Config:   cfg,
		SchemaFS: schema.Files(),
		Registry: reg,
		Secrets:  agent.NodeSecrets,
		Log:      log,
	})
	if err != nil {
		return nil, err
	}
	return a.Once(ctx, req)
}
