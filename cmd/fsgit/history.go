//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

type historyFlags struct {
	config   string
	state    string
	n        int
	resource string
	output   string
}

func newHistoryCmd() *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history [-n N] [--resource ID] [-o text|json|yaml]",
		Short: "Show the runs this node keeps, or when one resource changed and why",
		Long: `history lists the runs the node's state keeps (the last 100), newest first: when,
which revision, what triggered it (commit, poll, watch, run, once), the counts of
outcomes, how long it took and the exit code.

With --resource it lists the runs that changed that resource (or would have, in
noop), failed it or held its destroy, and why: the commit (the desired state
changed), drift (the node moved and the run put it back), refresh (a notify edge),
prune (it left the catalog).

It asks the running agent over its socket; with no agent it reads the state file.`,
		Example: `  # the last 5 runs
  fsgit history -n 5
  # when MariaDB's config file changed, and why
  fsgit history --resource file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHistory(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	fl.StringVar(&f.state, "state", "", "the state file read when the agent is down (default: from the configuration)")
	fl.IntVarP(&f.n, "number", "n", 20, "how many runs to show (0: all kept)")
	fl.StringVar(&f.resource, "resource", "", "show the runs that touched this resource")
	_ = cmd.RegisterFlagCompletionFunc("resource", completeResources)
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

func runHistory(ctx context.Context, w io.Writer, f historyFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.n < 0 {
		return couldNotRun(fmt.Errorf("-n %d: want a count, 0 for all", f.n))
	}
	cfg, err := agent.LoadConfig(schema.Files(), f.config)
	if err != nil {
		return couldNotRun(err)
	}
	statePath := cfg.StateFile
	if f.state != "" {
		statePath = f.state
	}
	n := f.n
	if f.resource != "" {
		n = 0 // filtered below
	}
	runs, err := readHistory(ctx, cfg.Socket, statePath, n)
	if err != nil {
		return couldNotRun(err)
	}
	if f.resource != "" {
		runs = touching(runs, reconciler.ID(f.resource), f.n)
	}
	if structured(f.output) {
		if runs == nil {
			runs = []state.Run{}
		}
		return writeOut(w, f.output, runs)
	}
	if f.resource != "" {
		return writeResourceHistory(w, runs, reconciler.ID(f.resource))
	}
	return writeHistory(w, runs)
}

// readHistory asks the agent on sock for n runs; with no agent, it reads
// the state file.
func readHistory(ctx context.Context, sock, statePath string, n int) ([]state.Run, error) {
	var runs []state.Run
	_, agentErr := agent.NewClient(sock).Get(ctx, agent.HistoryPath+"?n="+strconv.Itoa(n), &runs)
	switch {
	case agentErr == nil:
		return runs, nil
	case errors.Is(agentErr, agent.ErrBadAnswer):
		return nil, fmt.Errorf("ask the agent on %s: %w", sock, agentErr)
	}
	st, err := state.Open(statePath, state.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if state.IsNotExist(err) {
		return nil, nil // a node that never ran
	}
	if err != nil {
		return nil, fmt.Errorf("no agent answers on %s (%v), and the state file cannot be read: %w", sock, agentErr, err)
	}
	defer st.Close()
	return st.History(n)
}

// touching keeps the runs that name id, at most n (n <= 0: all).
func touching(runs []state.Run, id reconciler.ID, n int) []state.Run {
	var out []state.Run
	for _, r := range runs {
		if n > 0 && len(out) == n {
			break
		}
		if _, ok := resourceIn(r, id); ok {
			out = append(out, r)
		}
	}
	return out
}

// resourceIn returns what a run did to id, in words.
func resourceIn(r state.Run, id reconciler.ID) (string, bool) {
	for _, c := range r.Changed {
		if c.ID == id {
			s := fmt.Sprintf("%s (%s)", c.Outcome, c.Why)
			if c.Fields > 0 {
				s += fmt.Sprintf(", %d fields", c.Fields)
			}
			return s, true
		}
	}
	for _, p := range r.Problems {
		if p.ID == id {
			return fmt.Sprintf("%s: %s", p.Outcome, p.Message), true
		}
	}
	return "", false
}

func writeHistory(w io.Writer, runs []state.Run) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs recorded")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tREVISION\tTRIGGER\tRESULT\tDURATION\tEXIT")
	for _, r := range runs {
		trigger := r.Trigger
		if trigger == "" {
			trigger = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%.2fs\t%d\n", r.Seq, r.Started.UTC().Format(time.RFC3339), shortRev(r.Revision),
			trigger, countsLine(r), r.Duration.D().Seconds(), r.ExitCode)
	}
	return tw.Flush()
}

func writeResourceHistory(w io.Writer, runs []state.Run, id reconciler.ID) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintf(w, "no run kept changed %s\n", id)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tREVISION\tTRIGGER\tWHAT")
	for _, r := range runs {
		what, _ := resourceIn(r, id)
		trigger := r.Trigger
		if trigger == "" {
			trigger = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Started.UTC().Format(time.RFC3339), shortRev(r.Revision), trigger, what)
	}
	return tw.Flush()
}

// countsLine says what a run did, in a few words.
func countsLine(r state.Run) string {
	var parts []string
	for _, o := range reconciler.Outcomes {
		if o == reconciler.Unchanged || o == reconciler.Skipped {
			continue
		}
		if c := r.Summary.Outcomes[o]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, o))
		}
	}
	if r.Noop {
		parts = append(parts, "noop")
	}
	if r.Stopped != "" {
		parts = append(parts, "stopped")
	}
	if len(parts) == 0 {
		return "unchanged"
	}
	return strings.Join(parts, ", ")
}

type diffFlags struct {
	config string
	output string
}

func newDiffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff ID [-o text|json|yaml]",
		Short: "Show one resource's live state against its desired state",
		Long: `diff observes one resource and compares it with its desired state in the catalog
the agent runs, field by field, normalized as the engine compares them (a mode as
four octal digits, sizes in bytes...), with the class of each change (safe,
disruptive, destructive). Nothing is changed and nothing is recorded. Secret values
are never shown.

It asks the running agent over its socket; with no agent it builds the catalog from
the branch's tip, from the agent's configuration.

Exit codes (like flux diff): 0 no difference, 2 differences, 1 the resource could
not be compared (not in the catalog, its observation failed, it cannot run here).`,
		Example: `  # is MariaDB's config file as the site says?
  fsgit diff file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf
  # a database, as JSON
  fsgit diff mariadb.database:feature_store -o json`,
		Args:              exactArgs(1, "one resource ID"),
		ValidArgsFunction: completeFirstResource,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, reconciler.ID(args[0]))
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

func runDiff(ctx context.Context, stdout, stderr io.Writer, f diffFlags, id reconciler.ID) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := agent.LoadConfig(schema.Files(), f.config)
	if err != nil {
		return couldNotRun(err)
	}
	req := agent.RunRequest{Resource: id}
	last, err := agent.NewClient(cfg.Socket).Run(ctx, req, nil)
	var rep *reconciler.Report
	switch {
	case err == nil && last.Error != "":
		return couldNotRun(errors.New(last.Error))
	case err == nil:
		rep = last.Report
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("ask the agent on %s: %w", cfg.Socket, err))
	default:
		if rep, err = runOnceReq(ctx, stderr, cfg, req, false); err != nil {
			return couldNotRun(err)
		}
	}
	var res *reconciler.Result
	for i := range rep.Results {
		if rep.Results[i].ID == id {
			res = &rep.Results[i]
		}
	}
	if res == nil {
		return couldNotRun(fmt.Errorf("%s was not observed", id))
	}
	if structured(f.output) {
		if err := writeOut(stdout, f.output, res); err != nil {
			return couldNotRun(err)
		}
	} else {
		writeDiff(stdout, rep, res)
	}
	switch res.Outcome {
	case reconciler.Unchanged:
		return nil
	case reconciler.Drifted, reconciler.PendingDestroy:
		return &exitError{code: 2}
	case reconciler.Failed:
		return couldNotRun(fmt.Errorf("%s could not be observed: %s", id, res.Error))
	default:
		return couldNotRun(fmt.Errorf("%s was not compared (%s): %s", id, res.Outcome, res.Reason))
	}
}

func writeDiff(w io.Writer, rep *reconciler.Report, res *reconciler.Result) {
	at := shortRev(rep.Revision)
	switch res.Outcome {
	case reconciler.Unchanged:
		fmt.Fprintf(w, "%s: no difference with %s\n", res.ID, at)
		return
	case reconciler.Drifted, reconciler.PendingDestroy:
	default:
		return
	}
	what := "differs"
	switch res.Action {
	case reconciler.ActionCreate:
		what = "missing (would be created)"
	case reconciler.ActionDelete:
		what = "present (would be deleted)"
	}
	fmt.Fprintf(w, "%s: %s from %s\n", res.ID, what, at)
	for _, c := range res.Changes {
		fmt.Fprintf(w, "  %s: %s -> %s  [%s]\n", c.Field, quoteOrNone(c.Before), quoteOrNone(c.After), c.Class)
	}
	if res.Reason != "" {
		fmt.Fprintf(w, "  %s\n", res.Reason)
	}
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return strconv.Quote(s)
}
