//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

type holdFlags struct {
	config string
	socket string
	state  string
	node   string
	all    bool
	dur    time.Duration
	reason string
	output string
}

func newHoldCmd() *cobra.Command {
	var f holdFlags
	cmd := &cobra.Command{
		Use:   "hold ID...|--node NAME --for DURATION --reason TEXT",
		Short: "Hold resources (or the whole node) for a time: observed, never changed",
		Long: `hold keeps fsgit from changing the resources named (or, with --node NAME, any
resource of the node, which must be this one) for a time: they are still observed, and their drift is reported, but
nothing is applied to them, nor are they restarted; a restart they are owed waits for
the hold's end. A hold always ends: --for is required, and at most the site's
operations.maxHold (24h when the site does not say). It ends by itself at its time,
or by fsgit release. Who placed it, why, since and until are kept in the state file
and shown by fsgit status, in the status document, in metrics and in fsgit plan.

It asks the running agent over its socket; with no agent it writes the state file.
The socket, the state file and this node's name come from the agent's configuration
when there is one; --socket and --state name them where there is none (a node run by
fsgit apply --once from a timer), the host name is then this node's.`,
		Example: `  # keep MariaDB from restarting during a backup
  fsgit hold service:mariadb --for 2h --reason "nightly backup, INC-42"
  # the whole node
  fsgit hold --node online-1 --for 30m --reason "disk replacement"`,
		ValidArgsFunction: completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHold(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	placeFlags(cmd, &f)
	thisNodeFlag(cmd, &f.node, "hold the whole node (this node's name)")
	fl.DurationVar(&f.dur, "for", 0, "how long the hold lasts (required)")
	fl.StringVar(&f.reason, "reason", "", "why (required; shown to everyone)")
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

func newReleaseCmd() *cobra.Command {
	var f holdFlags
	cmd := &cobra.Command{
		Use:   "release ID...|--node NAME|--all",
		Short: "End holds before their time",
		Long: `release ends the holds on the resources named, the hold on the whole node
(--node NAME, this node's name), or every hold (--all). The agent then converges
what was held at once.`,
		Example: `  # end the hold on MariaDB
  fsgit release service:mariadb
  # end the hold on the whole node, then every hold
  fsgit release --node online-1
  fsgit release --all`,
		ValidArgsFunction: completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRelease(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	placeFlags(cmd, &f)
	thisNodeFlag(cmd, &f.node, "end the hold on the whole node (this node's name)")
	fl.BoolVar(&f.all, "all", false, "end every hold")
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

// placeFlags adds the flags that say where hold and release act.
func placeFlags(cmd *cobra.Command, f *holdFlags) {
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	fl.StringVar(&f.socket, "socket", "", "the agent's socket (default: from the configuration)")
	fl.StringVar(&f.state, "state", "", "the state file written when no agent runs (default: from the configuration)")
}

// operator names who runs the command: the user sudo was run by, else
// the user.
func operator() string {
	if s := os.Getenv("SUDO_USER"); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

func ids(args []string) []reconciler.ID {
	out := make([]reconciler.ID, len(args))
	for i, a := range args {
		out[i] = reconciler.ID(a)
	}
	return out
}

func runHold(ctx context.Context, w io.Writer, f holdFlags, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	at, err := placeOf(f.config, f.socket, f.state)
	if err != nil {
		return couldNotRun(err)
	}
	node, err := isThisNode(at.node, f.node)
	if err != nil {
		return couldNotRun(err)
	}
	req := agent.HoldRequest{IDs: ids(args), Node: node, For: jsondoc.Seconds(f.dur), Reason: f.reason, By: operator()}
	var ans agent.HoldAnswer
	err = agent.NewClient(at.socket).Post(ctx, agent.HoldPath, req, &ans)
	switch {
	case err == nil:
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("the agent on %s refused: %w", at.socket, err))
	default:
		// No agent: check as it would without a catalog, and write the
		// state; the agent cuts the hold to the site's maximum.
		add, herr := agent.NewHolds(req, nil, time.Now())
		if herr != nil {
			return couldNotRun(herr)
		}
		if ans.Holds, err = editHolds(at.state, f.state != "", func(hs []state.Hold) ([]state.Hold, []state.Hold) {
			return agent.MergeHolds(hs, add), nil
		}); err != nil {
			return couldNotRun(err)
		}
	}
	return writeHolds(w, f.output, ans)
}

func runRelease(ctx context.Context, w io.Writer, f holdFlags, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if (len(args) > 0) == (f.node != "" || f.all) || (f.node != "" && f.all) {
		return couldNotRun(errors.New("release resources by ID, --node or --all: one of them"))
	}
	at, err := placeOf(f.config, f.socket, f.state)
	if err != nil {
		return couldNotRun(err)
	}
	node, err := isThisNode(at.node, f.node)
	if err != nil {
		return couldNotRun(err)
	}
	req := agent.ReleaseRequest{IDs: ids(args), Node: node, All: f.all, By: operator()}
	var ans agent.HoldAnswer
	err = agent.NewClient(at.socket).Post(ctx, agent.ReleasePath, req, &ans)
	switch {
	case err == nil:
	case errors.Is(err, agent.ErrBadAnswer):
		return couldNotRun(fmt.Errorf("the agent on %s refused: %w", at.socket, err))
	default:
		var released []state.Hold
		if ans.Holds, err = editHolds(at.state, f.state != "", func(hs []state.Hold) ([]state.Hold, []state.Hold) {
			kept, rel := agent.ReleaseHolds(hs, req)
			released = rel
			return kept, rel
		}); err != nil {
			return couldNotRun(err)
		}
		ans.Released = released
	}
	if len(ans.Released) == 0 {
		return couldNotRun(errors.New("no such hold"))
	}
	return writeHolds(w, f.output, ans)
}

// thisNodeFlag adds --node NAME to a command that acts on this node only
// (hold, release): NAME must be this node's, and completes to it.
func thisNodeFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "node", "", usage)
	_ = cmd.RegisterFlagCompletionFunc("node", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		cfgFile, _ := cmd.Flags().GetString("config")
		at, err := placeOf(cfgFile, "", "")
		if err != nil || at.node == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		return []string{at.node}, cobra.ShellCompDirectiveNoFileComp
	})
}

// thisNode is the node the agent's configuration is for: its node, else
// the host name.
func thisNode(cfg *agent.Config) string {
	if cfg.Node != "" {
		return cfg.Node
	}
	h, _ := os.Hostname()
	return h
}

// isThisNode says whether --node was given, and refuses a name other than
// this node's (this): holds are placed on the node they run on.
func isThisNode(this, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	if name != this {
		return false, fmt.Errorf("--node %s: this is node %s; hold and release act on the node they run on (run it on %s)", name, this, name)
	}
	return true, nil
}

// editHolds changes the holds in the state file, for when no agent runs.
// A file named by hand (named: --state) must be there: a wrong path is
// not a file to create, where no run would read the hold.
func editHolds(path string, named bool, edit func([]state.Hold) (kept, released []state.Hold)) ([]state.Hold, error) {
	if named {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--state: %w", err)
		}
	}
	st, err := state.Open(path, state.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	hs, err := st.Holds()
	if err != nil {
		return nil, err
	}
	kept, _ := edit(hs)
	if err := st.SetHolds(kept); err != nil {
		return nil, err
	}
	return kept, nil
}

func writeHolds(w io.Writer, output string, ans agent.HoldAnswer) error {
	if ans.Holds == nil {
		ans.Holds = []state.Hold{}
	}
	if structured(output) {
		return writeOut(w, output, ans)
	}
	now := time.Now()
	for _, h := range ans.Released {
		fmt.Fprintf(w, "released %s\n", holdTarget(h.ID))
	}
	if len(ans.Holds) == 0 {
		_, err := fmt.Fprintln(w, "no hold in force")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD\tBY\tSINCE\tUNTIL\tREASON")
	for _, h := range ans.Holds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\n", holdTarget(h.ID), h.By, h.Since.UTC().Format(time.RFC3339),
			h.Until.UTC().Format(time.RFC3339), inTime(h.Until, now), h.Reason)
	}
	return tw.Flush()
}

func holdTarget(id reconciler.ID) string {
	if id == "" {
		return "the node"
	}
	return string(id)
}

// holdLine is a hold in one line of fsgit status.
func holdLine(h status.Hold, now time.Time) string {
	return fmt.Sprintf("%s by %s until %s (%s): %s", holdTarget(h.ID), h.By, h.Until.UTC().Format(time.RFC3339), inTime(h.Until, now), h.Reason)
}

// inTime says how long until t.
func inTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "ended"
	}
	return "in " + d.String()
}
