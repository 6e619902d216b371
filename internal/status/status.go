// Package status is what a node says about itself: the [Node] document
// that fsgit status prints and that the agent publishes as
// nodes/<node>.json on the status branch, the [Publisher] that commits it
// there (fetch, rebuild on the new tip, push, retry with jittered backoff:
// many nodes converge at once after a deploy), [ReadFleet], which reads
// every node's document back, and the [Reader] it is made of, which reads
// them again and again with their histories (fsgit serve).
//
// A Node holds resource IDs, outcomes, revisions, error messages and
// secret-free change summaries, never a secret value.
package status

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// Node is one node's status.
type Node struct {
	// Node, Site and Role name the node.
	Node string `json:"node"`
	Site string `json:"site,omitempty"`
	Role string `json:"role,omitempty"`
	// AppliedRevision is the last commit whose catalog was run;
	// DesiredRevision the newest commit seen on the branch (they differ
	// while a run is in flight, or when the newest was refused).
	AppliedRevision string `json:"appliedRevision,omitempty"`
	DesiredRevision string `json:"desiredRevision,omitempty"`
	// Converged is true when the last run left nothing drifted, failed or
	// pending and the applied revision is the desired one.
	Converged bool `json:"converged"`
	// Since is when Converged took its current value.
	Since time.Time `json:"since,omitzero"`
	// LastRun summarizes the last run.
	LastRun *Run `json:"lastRun,omitempty"`
	// Drifted, Failed and PendingDestroy list the resources in those
	// states after the last run.
	Drifted        []Item `json:"drifted,omitempty"`
	Failed         []Item `json:"failed,omitempty"`
	PendingDestroy []Item `json:"pendingDestroy,omitempty"`
	// Refused lists the commits refused (bad signature, invalid CUE) since
	// the last commit accepted, newest first: a newer commit accepted
	// clears it.
	Refused []Refusal `json:"refused,omitempty"`
	// Source is the health of the git source.
	Source Source `json:"source"`
	// Holds are the operators' holds in force (fsgit hold): the resources
	// they name (or, with no ID, the whole node) are observed, never
	// changed, until each hold ends.
	Holds []Hold `json:"holds,omitempty"`
	// Pinned is set while the node is rolled back by hand (fsgit
	// rollback): it runs that catalog and does not follow the branch.
	Pinned *Pin `json:"pinned,omitempty"`
	// State is the health of the node's state file; unset while it is
	// healthy and was never replaced.
	State *StateFile `json:"state,omitempty"`
	// Updated is when the document was made.
	Updated time.Time `json:"updated,omitzero"`
	// Unreadable is set by [ReadFleet], in place of everything but Node,
	// when the node's document on the status branch cannot be read: why.
	// A node never publishes it.
	Unreadable string `json:"unreadable,omitempty"`
	// TipLag is set by readers that compare the fleet's source tips
	// (fsgit status --fleet, with [CompareTips]): how this node's tip
	// compares with the others'. A node never publishes it.
	TipLag *TipLag `json:"tipLag,omitempty"`
}

// Run summarizes one run of the engine on the node: which revision, when and
// how long, what triggered it, how many resources ended in each outcome and
// the Puppet-style exit code.
type Run struct {
	Revision string `json:"revision,omitempty"`
	// Started is when the run started, Duration how long it took (in
	// JSON, seconds).
	Started  time.Time       `json:"started,omitzero"`
	Duration jsondoc.Seconds `json:"duration,omitzero"`
	// Trigger is what started the run: "commit", "poll", "watch", "run"
	// (fsgit run; "run+commit" when it found a new commit), "once",
	// "start" or "reload".
	Trigger string `json:"trigger,omitempty"`
	// Counts maps each outcome to how many resources had it.
	Counts   map[reconciler.Outcome]int `json:"counts"`
	ExitCode int                        `json:"exitCode"`
	// Error is set when the run could not happen at all.
	Error string `json:"error,omitempty"`
}

// StateFile is the health of the node's state file (internal/state).
type StateFile struct {
	// Error says why the state file cannot be opened or the last run
	// could not be recorded; empty once a run is recorded again.
	Error string `json:"error,omitempty"`
	// ErrorSince is when that started.
	ErrorSince time.Time `json:"errorSince,omitzero"`
	// Recoveries counts the corrupt state files moved aside and replaced
	// since the agent started; LastRecovery is the newest.
	Recoveries   int            `json:"recoveries,omitempty"`
	LastRecovery *StateRecovery `json:"lastRecovery,omitempty"`
}

// StateRecovery is a corrupt state file moved aside and replaced.
type StateRecovery struct {
	At      time.Time `json:"at,omitzero"`
	Reason  string    `json:"reason"`
	MovedTo string    `json:"movedTo,omitempty"`
	// Restored counts the inventory entries restored from the inventory
	// copy; InventoryLost says why it could not be used, if it could not.
	Restored      int    `json:"restored"`
	InventoryLost string `json:"inventoryLost,omitempty"`
}

// Hold is an operator's hold in force.
type Hold struct {
	// ID is the held resource; empty: the whole node.
	ID reconciler.ID `json:"id,omitempty"`
	// By is who placed it, Reason why.
	By     string `json:"by"`
	Reason string `json:"reason"`
	// Since is when it was placed, Until when it ends by itself.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Pin is a rollback by hand: the revision the node stays on, who asked,
// why, and since when.
type Pin struct {
	Revision string    `json:"revision"`
	By       string    `json:"by"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since,omitzero"`
}

// Item is one resource that needs attention.
type Item struct {
	ID      reconciler.ID       `json:"id"`
	Reason  string              `json:"reason,omitempty"`
	Changes []reconciler.Change `json:"changes,omitempty"`
}

// Refusal is a commit that was not applied.
type Refusal struct {
	Commit string    `json:"commit"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at,omitzero"`
}

// Source is the health of the git source.
type Source struct {
	// URL is the repository, without credentials; Branch the branch.
	URL    string `json:"url,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Reachable says whether the last poll worked.
	Reachable bool `json:"reachable"`
	// LastSuccess is the time of the last poll that worked.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// Error is the last poll's error, and UnreachableSince when polls
	// started failing, while they fail.
	Error            string    `json:"error,omitempty"`
	UnreachableSince time.Time `json:"unreachableSince,omitzero"`
	// Tip is the branch's tip the source served at the last poll that
	// worked, TipTime its commit time (the committer's, which a signature
	// covers), and TipSeen when this agent first saw it (the last time it
	// saw the branch move; after a restart, at the latest its first poll).
	// A commit whose signature does not verify (see Refused) does not
	// count: Tip stays the last one that did, and so does its age.
	Tip     string    `json:"tip,omitempty"`
	TipTime time.Time `json:"tipTime,omitzero"`
	TipSeen time.Time `json:"tipSeen,omitzero"`
	// TipAge is how old the tip's commit was when the document was made
	// (its Updated; live on the agent's socket).
	TipAge jsondoc.Seconds `json:"tipAge,omitzero"`
	// MaxTipAge is the agent's source.maxTipAge (unset: off). Frozen says
	// why the source looks frozen, when TipAge passes it: an untrusted
	// mirror that stopped following the main repository keeps serving an
	// old, validly signed commit, and the node, converged on it, would
	// otherwise look fine. See [Source.CheckTip].
	MaxTipAge jsondoc.Seconds `json:"maxTipAge,omitzero"`
	Frozen    string          `json:"frozen,omitempty"`
}

// maxItemReason bounds an error message kept in a status document.
const maxItemReason = 512

// Update records a run: LastRun summarizes rep; the resource lists and
// convergence come from view, the last known result of every resource
// (a run over a few resources, after a file event, updates only theirs).
// A full run without failures moves AppliedRevision to its revision. now is
// used for Since when convergence changes.
func (n *Node) Update(rep *reconciler.Report, view []reconciler.Result, trigger string, now time.Time) {
	counts := map[reconciler.Outcome]int{}
	for _, r := range rep.Results {
		counts[r.Outcome]++
	}
	n.LastRun = &Run{
		Revision: rep.Revision,
		Started:  rep.Started,
		Duration: rep.Duration,
		Trigger:  trigger,
		Counts:   counts,
		ExitCode: rep.ExitCode(),
	}
	if rep.Stopped != "" {
		n.LastRun.Error = "stopped: " + rep.Stopped
	}
	full := len(rep.Only) == 0 && rep.Stopped == "" && !rep.Noop
	if full && counts[reconciler.Failed] == 0 {
		n.AppliedRevision = rep.Revision
	}
	n.Drifted, n.Failed, n.PendingDestroy = nil, nil, nil
	for _, r := range view {
		switch r.Outcome {
		case reconciler.Drifted:
			n.Drifted = append(n.Drifted, Item{ID: r.ID, Reason: clip(r.Reason), Changes: r.Changes})
		case reconciler.Failed:
			n.Failed = append(n.Failed, Item{ID: r.ID, Reason: clip(r.Error)})
		case reconciler.PendingDestroy:
			n.PendingDestroy = append(n.PendingDestroy, Item{ID: r.ID, Reason: clip(r.Reason), Changes: r.Changes})
		}
	}
	n.SetConverged(Converged(len(n.Drifted), len(n.Failed), len(n.PendingDestroy), n.AppliedRevision, n.DesiredRevision), now)
}

// Converged is the convergence rule: nothing drifted, failed or held for
// destroy, and the desired revision applied.
func Converged(drifted, failed, pendingDestroy int, applied, desired string) bool {
	return drifted+failed+pendingDestroy == 0 && applied != "" && applied == desired
}

// SetConverged sets Converged, and Since when it changes.
func (n *Node) SetConverged(c bool, now time.Time) {
	if c != n.Converged || n.Since.IsZero() {
		n.Since = now
	}
	n.Converged = c
}

// Accept records that commit was accepted: it is the desired revision, and
// the commits refused before it no longer matter.
func (n *Node) Accept(commit string) {
	n.DesiredRevision = commit
	n.Refused = nil
}

// Refuse records a refused commit, newest first, keeping the last few.
func (n *Node) Refuse(commit, reason string, now time.Time) {
	const keep = 5
	for _, r := range n.Refused {
		if r.Commit == commit {
			return
		}
	}
	n.Refused = append([]Refusal{{Commit: commit, Reason: clip(reason), At: now}}, n.Refused...)
	if len(n.Refused) > keep {
		n.Refused = n.Refused[:keep]
	}
}

// Fingerprint hashes what an operator cares about, leaving out times and
// durations: two documents with the same fingerprint describe the same
// outcome, and the agent publishes only when it changes.
func (n *Node) Fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%v|%v\n", n.Node, n.Role, n.AppliedRevision, n.DesiredRevision, n.Converged, n.Source.Reachable)
	// The tip and whether it looks frozen, not its age: a frozen source is
	// published once, when it starts to look frozen.
	fmt.Fprintf(&b, "tip %s %v\n", n.Source.Tip, n.Source.Frozen != "")
	for _, l := range []struct {
		tag   string
		items []Item
	}{{"drifted", n.Drifted}, {"failed", n.Failed}, {"pending", n.PendingDestroy}} {
		ids := make([]string, 0, len(l.items))
		for _, it := range l.items {
			ids = append(ids, string(it.ID)+"="+it.Reason)
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, "%s %s\n", l.tag, strings.Join(ids, ","))
	}
	for _, r := range n.Refused {
		fmt.Fprintf(&b, "refused %s\n", r.Commit)
	}
	if n.LastRun != nil && n.LastRun.Error != "" {
		fmt.Fprintf(&b, "run error %s\n", n.LastRun.Error)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Marshal returns the document as indented JSON with a final newline,
// the form published on the status branch.
func (n *Node) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode status of %s: %w", n.Node, err)
	}
	return append(b, '\n'), nil
}

// Decode reads a document written by Marshal.
func Decode(b []byte) (*Node, error) {
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

func clip(s string) string {
	if len(s) <= maxItemReason {
		return s
	}
	return s[:maxItemReason] + "…"
}
