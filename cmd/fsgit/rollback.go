//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

type rollbackFlags struct {
	config   string
	to       string
	previous bool
	release  bool
	list     bool
	reason   string
	output   string
}

func newRollbackCmd() *cobra.Command {
	var f rollbackFlags
	cmd := &cobra.Command{
		Use:   "rollback --to REV|--previous --reason TEXT | --release | --list",
		Short: "Re-apply a catalog the node applied before, without git, and stay on it",
		Long: `rollback re-applies one of the last catalogs the node applied (it keeps the last
10 in its state file, by revision) and pins the node to it: git is not needed, and a
newer commit on the branch does not undo the pin; the agent reports it, and fsgit
status says "rolled back by hand to REV because REASON". --release returns the node
to following the branch (its newest commit is applied at once). --list shows the
catalogs kept and the pin.

Resources such as images and artifacts are content-addressed: the catalog names
exactly what it ran. Pruning keeps those the last keepCatalogs (site's
pruning.keepCatalogs, 3 by default) reference; an older catalog may need them
fetched again.

It asks the running agent over its socket and streams the run; with no agent it
runs once. Exit codes as fsgit run.`,
		Example: `  # the catalogs kept, and the pin
  fsgit rollback --list
  # back to the catalog before this one
  fsgit rollback --previous --reason "INC-42: bad buffer pool size"
  # follow the branch again
  fsgit rollback --release`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRollback(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	fl.StringVar(&f.to, "to", "", "the revision to roll back to (7 characters or more)")
	fl.BoolVar(&f.previous, "previous", false, "roll back to the catalog applied before the current one")
	fl.BoolVar(&f.release, "release", false, "follow the branch again")
	fl.BoolVar(&f.list, "list", false, "list the catalogs kept for rollback")
	fl.StringVar(&f.reason, "reason", "", "why (required to roll back; shown in the status)")
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

func runRollback(ctx context.Context, stdout, stderr io.Writer, f rollbackFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := agent.LoadConfig(schema.Files(), f.config)
	if err != nil {
		return couldNotRun(err)
	}
	if f.list {
		return listKept(ctx, stdout, cfg, f.output)
	}
	rb := &agent.RollbackRequest{To: f.to, Previous: f.previous, Release: f.release, Reason: f.reason, By: operator()}
	req := agent.RunRequest{Rollback: rb}
	last, err := agent.NewClient(cfg.Socket).Run(ctx, req, func(ev agent.RunEvent) { showRunEvent(stderr, ev) })
	var rep *reconciler.Report
	switch {
	case err == nil && last.Error != "":
		return couldNotRun(errors.New(last.Error))
	case err == nil:
		rep = last.Report
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("ask the agent on %s: %w", cfg.Socket, err))
	default:
		fmt.Fprintf(stderr, "fsgit: no agent answers on %s: running once from %s\n", cfg.Socket, f.config)
		if rep, err = runOnceReq(ctx, stderr, cfg, req, false); err != nil {
			return couldNotRun(err)
		}
		if !rb.Release {
			fmt.Fprintf(stderr, "fsgit: rolled back by hand to %s because %s: the node stays there until fsgit rollback --release\n", shortRev(rep.Revision), rb.Reason)
		}
	}
	if structured(f.output) {
		if err := writeOut(stdout, f.output, rep); err != nil {
			return couldNotRun(err)
		}
	} else if err := rep.WriteText(stdout, reconciler.TextOptions{Times: true}); err != nil {
		return couldNotRun(fmt.Errorf("write report: %w", err))
	}
	return runExit(rep)
}

func listKept(ctx context.Context, w io.Writer, cfg *agent.Config, output string) error {
	var ans agent.KeptAnswer
	_, err := agent.NewClient(cfg.Socket).Get(ctx, agent.KeptPath, &ans)
	switch {
	case err == nil:
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("ask the agent on %s: %w", cfg.Socket, err))
	default:
		st, oerr := state.Open(cfg.StateFile, state.Options{ReadOnly: true, Timeout: 2 * time.Second})
		if state.IsNotExist(oerr) {
			ans.Kept = []state.KeptCatalog{}
			break
		}
		if oerr != nil {
			return couldNotRun(oerr)
		}
		ans, err = agent.Kept(st)
		_ = st.Close()
		if err != nil {
			return couldNotRun(err)
		}
	}
	if structured(output) {
		return writeOut(w, output, ans)
	}
	if p := ans.Pin; p != nil {
		fmt.Fprintf(w, "pinned to %s by %s since %s: %s\n", shortRev(p.Revision), p.By, p.Since.UTC().Format(time.RFC3339), p.Reason)
	}
	if len(ans.Kept) == 0 {
		_, err := fmt.Fprintln(w, "no catalog kept")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tAPPLIED\tRESOURCES")
	for _, k := range ans.Kept {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", k.Revision, k.Applied.UTC().Format(time.RFC3339), k.Resources)
	}
	return tw.Flush()
}
