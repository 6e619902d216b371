//go:build !lean

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

type statusFlags struct {
	config string
	socket string
	state  string
	fleet  bool
	repo   string
	branch string
	output string
	maxLag time.Duration
}

func newStatusCmd() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [--fleet] [-o text|json|yaml]",
		Short: "Show this node's status, or every node's with --fleet",
		Long: `status shows the node: its role, the applied and desired revisions, whether it is
converged and since when, the last run, drifted, failed and pending-destroy resources,
refused commits and the git source's health. It asks the running agent over its local
socket; when the agent is not running it reads the state file (read-only), which knows
less (drift is only counted).

With --fleet it reads the status repository (nodes/<node>.json on the status branch,
or each node's own ref refs/<branch>/<node> in the refs layout; a node's ref wins)
and shows every node in one table, with the tip of the branch its source serves and
how old that commit is. A node whose source looks frozen (its tip older than its
source.maxTipAge) is flagged FROZEN; one whose tip is older than the newest tip of the
nodes on the same site and branch by more than --max-tip-lag (default: the node's own
maxTipAge) is flagged BEHIND: a node on a mirror that stopped following the repository,
while the others move on.

The socket, state file and status repository come from the agent's configuration
file when it can be read; flags override them.`,
		Example: `  # this node
  fsgit status
  # every node, from the status branch
  fsgit status --fleet
  # this node, as JSON
  fsgit status -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", agent.DefaultConfigFile, "the agent's configuration file")
	fl.StringVar(&f.socket, "socket", "", "the agent's socket (default: from the configuration)")
	fl.StringVar(&f.state, "state", "", "the state file read when the agent is down (default: from the configuration)")
	fl.BoolVar(&f.fleet, "fleet", false, "show every node, from the status branch")
	fl.StringVar(&f.repo, "repo", "", "the status repository's URL, for --fleet (default: from the configuration)")
	fl.StringVar(&f.branch, "branch", "", "the status branch, for --fleet (default: from the configuration, else "+status.DefaultBranch+")")
	fl.DurationVar(&f.maxLag, "max-tip-lag", 0, "with --fleet, flag a node whose source tip is older than the fleet's newest by more than this (default: each node's source.maxTipAge)")
	addOutputFlag(cmd, &f.output, outText)
	return cmd
}

func runStatus(ctx context.Context, w io.Writer, f statusFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.fleet {
		cfg, err := agent.LoadConfig(schema.Files(), f.config)
		if err != nil {
			// Without a configuration, the flags must do.
			if !errors.Is(err, fs.ErrNotExist) {
				return couldNotRun(err)
			}
			cfg = nil
		}
		return fleetStatus(ctx, w, f, cfg)
	}
	at, err := placeOf(f.config, f.socket, f.state)
	if err != nil {
		return couldNotRun(err)
	}
	statePath := at.state
	n, noAgent, err := nodeStatus(ctx, at.socket, statePath)
	if err != nil {
		return couldNotRun(err)
	}
	if structured(f.output) {
		return writeOut(w, f.output, n)
	}
	return writeNode(w, n, noAgent, statePath, time.Now())
}

// nodeStatus asks the agent on sock; when no agent answers, it reads the
// state file, and noAgent says why the agent did not answer. An agent that
// answers something unreadable is an error, not a reason to read the state
// file (which it holds locked), and when neither answers, the error says
// why for both.
func nodeStatus(ctx context.Context, sock, statePath string) (n *status.Node, noAgent, err error) {
	var live status.Node
	_, agentErr := agent.NewClient(sock).Get(ctx, agent.StatusPath, &live)
	switch {
	case agentErr == nil:
		return &live, nil, nil
	case errors.Is(agentErr, agent.ErrBadAnswer):
		return nil, nil, fmt.Errorf("ask the agent on %s: %w", sock, agentErr)
	}
	n, err = agent.StatusFromState(statePath, 2*time.Second)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("fsgit has not run on this node: no agent answers on %s and there is no state file at %s; start the agent (systemctl start fsgit, see docs/operating.md) or run fsgit apply --once, or pass --config for another agent", sock, statePath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the agent does not answer on %s (%w), and the state file cannot be read: %w", sock, agentErr, err)
	}
	return n, agentErr, nil
}

func fleetStatus(ctx context.Context, w io.Writer, f statusFlags, cfg *agent.Config) error {
	url, branch := f.repo, f.branch
	var cred gitsource.Credentials
	if cfg != nil {
		if url == "" {
			url = cfg.StatusURL()
			if c := cfg.StatusCredentials(); c != nil {
				cred = gitsource.Credentials{Username: c.Username, PasswordFile: c.PasswordFile, SSHKeyFile: c.SSHKeyFile, KnownHostsFile: c.KnownHostsFile}
			}
		}
		if branch == "" {
			branch = cfg.Status.Branch
		}
	}
	if url == "" {
		return couldNotRun(errors.New("status --fleet needs --repo URL (or a configuration file naming the status repository)"))
	}
	auth, err := cred.AuthMethod(url)
	if err != nil {
		return couldNotRun(err)
	}
	nodes, tip, err := status.ReadFleet(ctx, url, branch, auth)
	if err != nil && len(nodes) == 0 {
		return couldNotRun(err)
	}
	now := time.Now()
	compareTips(nodes, now, f.maxLag)
	if structured(f.output) {
		if nodes == nil {
			nodes = []status.Node{}
		}
		if werr := writeOut(w, f.output, nodes); werr != nil {
			return werr
		}
	} else if werr := writeFleet(w, nodes, tip, now); werr != nil {
		return couldNotRun(werr)
	}
	if err != nil {
		// Some documents could not be read: they are shown with their
		// error, and the exit status says the fleet is not fully known.
		return &exitError{code: 1, err: err}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return couldNotRun(fmt.Errorf("write status: %w", err))
	}
	return nil
}

// writeNode prints one node's status as a two-column table: from the
// agent, or, when noAgent says why it did not answer, from the state file.
func writeNode(w io.Writer, n *status.Node, noAgent error, statePath string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	node := n.Node
	if n.Role != "" || n.Site != "" {
		node += fmt.Sprintf(" (role %s, site %s)", orDash(n.Role), orDash(n.Site))
	}
	row("node", node)
	fromAgent := noAgent == nil
	if fromAgent {
		row("agent", "running")
	} else {
		row("agent", "not running: read from "+statePath+" ("+noAgent.Error()+")")
	}
	row("applied", shortRev(n.AppliedRevision))
	row("desired", shortRev(n.DesiredRevision))
	conv := "no"
	if n.Converged {
		conv = "yes"
	}
	if !n.Since.IsZero() {
		conv += ", since " + when(n.Since, now)
	}
	row("converged", conv)
	if p := n.Pinned; p != nil {
		row("pinned", fmt.Sprintf("rolled back by hand to %s by %s, %s, because %s (fsgit rollback --release follows the branch again)",
			shortRev(p.Revision), p.By, when(p.Since, now), p.Reason))
	}
	for i, h := range n.Holds {
		k := "held"
		if i > 0 {
			k = ""
		}
		row(k, holdLine(h, now))
	}
	if r := n.LastRun; r != nil {
		trigger := r.Trigger
		if trigger == "" {
			trigger = "run"
		}
		line := fmt.Sprintf("%s %s, %s: %s (exit %d)", trigger, when(r.Started, now), r.Duration.D().Round(time.Millisecond),
			counts(r.Counts), r.ExitCode)
		if r.Error != "" {
			line += "; " + r.Error
		}
		row("last run", line)
	} else {
		row("last run", "-")
	}
	if fromAgent {
		src := fmt.Sprintf("%s %s: ", n.Source.URL, n.Source.Branch)
		switch {
		case n.Source.Reachable:
			src += "reachable, last poll " + when(n.Source.LastSuccess, now)
		case !n.Source.UnreachableSince.IsZero():
			src += "UNREACHABLE since " + when(n.Source.UnreachableSince, now) + ": " + n.Source.Error
		default:
			src += "not polled yet"
		}
		row("source", src)
		if t := n.Source; !t.TipTime.IsZero() {
			line := fmt.Sprintf("%s committed %s, first seen %s", shortRev(t.Tip), when(t.TipTime, now), when(t.TipSeen, now))
			if t.MaxTipAge > 0 {
				line += "; maxTipAge " + t.MaxTipAge.D().String()
			}
			row("tip", line)
		}
		if n.Source.Frozen != "" {
			row("FROZEN", n.Source.Frozen)
		}
	}
	if st := n.State; st != nil {
		for i, line := range stateLines(st, now) {
			k := "state"
			if i > 0 {
				k = ""
			}
			row(k, line)
		}
	}
	items := func(k string, list []status.Item) {
		if len(list) == 0 {
			row(k, "none")
			return
		}
		for i, it := range list {
			v := string(it.ID)
			if it.Reason != "" {
				v += ": " + it.Reason
			} else if len(it.Changes) > 0 {
				fields := make([]string, len(it.Changes))
				for j, c := range it.Changes {
					fields[j] = c.Field
				}
				v += " (" + strings.Join(fields, ", ") + ")"
			}
			if i > 0 {
				k = ""
			}
			row(k, v)
		}
	}
	if fromAgent {
		items("drift", n.Drifted)
	} else if r := n.LastRun; r != nil {
		drifted := r.Counts[reconciler.Drifted]
		row("drift", fmt.Sprintf("%d %s (names are known to the running agent)", drifted, plural(drifted, "resource", "resources")))
	}
	items("failures", n.Failed)
	items("pending destroy", n.PendingDestroy)
	for i, r := range n.Refused {
		k := "refused"
		if i > 0 {
			k = ""
		}
		row(k, fmt.Sprintf("%s %s: %s", shortRev(r.Commit), when(r.At, now), firstLine(r.Reason)))
	}
	return tw.Flush()
}

// stateLines says what is wrong with the node's state file, or was: a
// fault in force (runs are not recorded), and the corrupt files moved
// aside and replaced since the agent started, with the newest one's why.
func stateLines(st *status.StateFile, now time.Time) []string {
	var out []string
	if st.Error != "" {
		line := "FAULT: " + st.Error
		if !st.ErrorSince.IsZero() {
			line = "FAULT since " + when(st.ErrorSince, now) + ": " + st.Error
		}
		out = append(out, line+" (runs go on; they are not recorded)")
	}
	if r := st.LastRecovery; r != nil {
		times := "once"
		if st.Recoveries > 1 {
			times = fmt.Sprintf("%d times", st.Recoveries)
		}
		line := fmt.Sprintf("found corrupt and replaced %s since the agent started; last %s: %s", times, when(r.At, now), r.Reason)
		if r.MovedTo != "" {
			line += "; kept as " + r.MovedTo
		}
		if r.InventoryLost != "" {
			line += "; the inventory copy could not be used (" + r.InventoryLost + "): what the node managed before is not pruned"
		} else {
			line += fmt.Sprintf("; %d resources restored from the inventory copy", r.Restored)
		}
		out = append(out, line)
	}
	return out
}

// compareTips measures every node's source tip at now (its age, whether
// it looks frozen) and compares it with the others' (status.CompareTips).
func compareTips(nodes []status.Node, now time.Time, maxLag time.Duration) {
	for i := range nodes {
		nodes[i].Source.CheckTip(now)
	}
	lags := status.CompareTips(nodes, maxLag)
	for i := range nodes {
		if l, ok := lags[nodes[i].Node]; ok {
			nodes[i].TipLag = &l
		}
	}
}

// writeFleet prints one line per node, then what stands out about the
// nodes' source tips.
func writeFleet(w io.Writer, nodes []status.Node, tip string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tCONVERGED\tSINCE\tAPPLIED\tDESIRED\tDRIFTED\tFAILED\tPENDING\tREFUSED\tSOURCE\tTIP\tTIP-AGE\tUPDATED")
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	converged, unreadable, minority := 0, 0, false
	var notes []string
	for _, n := range nodes {
		if n.Unreadable != "" {
			unreadable++
			fmt.Fprintf(tw, "%s\t-\t?\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tUNREADABLE: %s\n", n.Node, firstLine(n.Unreadable))
			continue
		}
		conv := "no"
		if n.Converged {
			conv = "yes"
			converged++
		}
		var src []string
		if !n.Source.Reachable {
			src = append(src, "DOWN")
		}
		if n.Source.Frozen != "" {
			src = append(src, "FROZEN")
			notes = append(notes, n.Node+" FROZEN: "+n.Source.Frozen)
		}
		tipCell, ageCell := shortRev(n.Source.Tip), "-"
		if !n.Source.TipTime.IsZero() {
			ageCell = n.Source.TipAge.D().String()
		}
		if l := n.TipLag; l != nil {
			if l.Reason != "" {
				src = append(src, "BEHIND")
				notes = append(notes, n.Node+" BEHIND: "+l.Reason)
			}
			if l.Minority {
				tipCell += "*"
				minority = true
			}
		}
		if len(src) == 0 {
			src = append(src, "ok")
		}
		refused := "-"
		if len(n.Refused) > 0 {
			refused = shortRev(n.Refused[0].Commit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", n.Node, orDash(n.Role), conv, when(n.Since, now),
			shortRev(n.AppliedRevision), shortRev(n.DesiredRevision), len(n.Drifted), len(n.Failed), len(n.PendingDestroy),
			refused, strings.Join(src, ","), tipCell, ageCell, when(n.Updated, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	line := fmt.Sprintf("%d nodes, %d converged", len(nodes), converged)
	if unreadable > 0 {
		line += fmt.Sprintf(", %d unreadable", unreadable)
	}
	from := "status branch at " + shortRev(tip)
	if tip == "" && len(nodes) > 0 {
		from = "the nodes' own refs" // the refs layout
	}
	if _, err := fmt.Fprintf(w, "%s (%s)\n", line, from); err != nil {
		return err
	}
	if minority {
		seen := map[string]bool{}
		for _, n := range nodes {
			if l := n.TipLag; l != nil && l.Minority && !seen[l.Majority+l.Newest] {
				seen[l.Majority+l.Newest] = true
				fmt.Fprintf(w, "* not the tip most nodes of %s report (%s; the newest is %s, committed %s, on %s)\n",
					orDash(n.Site), shortRev(l.Majority), shortRev(l.Newest), when(l.NewestTime, now), l.NewestNode)
			}
		}
	}
	for _, note := range notes {
		if _, err := fmt.Fprintln(w, note); err != nil {
			return err
		}
	}
	return nil
}

func counts(c map[reconciler.Outcome]int) string {
	var parts []string
	for _, o := range reconciler.Outcomes {
		if c[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func shortRev(r string) string {
	if r == "" {
		return "-"
	}
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// when prints a time with how long ago it was.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	ago := now.Sub(t).Round(time.Second)
	if ago < 0 {
		ago = 0
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format("2006-01-02 15:04:05"), ago)
}
