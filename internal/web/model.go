package web

import (
	"sort"
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// The states a node is in on the fleet page, worst first: what the state
// filter offers.
const (
	StateUnreadable = "unreadable"
	StateFailing    = "failing"
	StateRefused    = "refused"
	StatePending    = "pending"
	StateDrifted    = "drifted"
	StateLagging    = "lagging"
	StateConverged  = "converged"
)

// states lists the states, worst first.
var states = []string{StateUnreadable, StateFailing, StateRefused, StatePending, StateDrifted, StateLagging, StateConverged}

// stateOf says which state a node is in: the worst thing about it.
func stateOf(n *status.Node) string {
	switch {
	case n.Unreadable != "":
		return StateUnreadable
	case len(n.Failed) > 0 || n.LastRun != nil && n.LastRun.Error != "":
		return StateFailing
	case len(n.Refused) > 0:
		return StateRefused
	case len(n.PendingDestroy) > 0:
		return StatePending
	case len(n.Drifted) > 0:
		return StateDrifted
	case !n.Converged:
		return StateLagging
	}
	return StateConverged
}

// Snapshot is what one read of the status repository found.
type Snapshot struct {
	// Tip is the status branch's commit (empty when there is no branch);
	// Refs the fingerprint of the status refs read (status.Refs); Read
	// when they were read.
	Tip  string
	Refs string
	Read time.Time
	// NodeRefs counts the nodes read from refs of their own (the refs
	// layout).
	NodeRefs int
	// Nodes are the nodes' current documents, sorted by node name: from
	// each node's ref, or from the branch's tip for a node without one.
	Nodes []status.Node
	// History holds each node's documents in the commits read, oldest
	// first.
	History map[string][]Point
	// Commits is how many commits were read for the histories.
	Commits int
	// Unreadable says which documents could not be read, if any.
	Unreadable string
}

// node returns the document of the node named name, or nil.
func (s *Snapshot) node(name string) *status.Node {
	i := sort.Search(len(s.Nodes), func(i int) bool { return s.Nodes[i].Node >= name })
	if i < len(s.Nodes) && s.Nodes[i].Node == name {
		return &s.Nodes[i]
	}
	return nil
}

// Point is one version of a node's document: one commit, on the status
// branch or the node's ref, that published it.
type Point struct {
	// Commit is the commit; At the document's Updated
	// time (the commit's time if the document has none).
	Commit string    `json:"commit"`
	At     time.Time `json:"at,omitzero"`
	// Converged, AppliedRevision and DesiredRevision are the document's.
	Converged       bool   `json:"converged"`
	AppliedRevision string `json:"appliedRevision,omitempty"`
	DesiredRevision string `json:"desiredRevision,omitempty"`
	// State is the node's state in that document.
	State string `json:"state"`
	// Trigger, Counts, ExitCode and Duration describe the document's last
	// run, if it has one.
	Trigger  string                     `json:"trigger,omitempty"`
	Counts   map[reconciler.Outcome]int `json:"counts,omitempty"`
	ExitCode int                        `json:"exitCode,omitempty"`
	Duration jsondoc.Seconds            `json:"duration,omitzero"`
	// Failed, Drifted and PendingDestroy count the resources in those
	// states.
	Failed         int `json:"failed,omitempty"`
	Drifted        int `json:"drifted,omitempty"`
	PendingDestroy int `json:"pendingDestroy,omitempty"`
}

// pointOf summarizes the document n, found in commit at when.
func pointOf(n *status.Node, commit string, when time.Time) Point {
	p := Point{Commit: commit, At: n.Updated, Converged: n.Converged, AppliedRevision: n.AppliedRevision,
		DesiredRevision: n.DesiredRevision, State: stateOf(n), Failed: len(n.Failed), Drifted: len(n.Drifted),
		PendingDestroy: len(n.PendingDestroy)}
	if p.At.IsZero() {
		p.At = when
	}
	if r := n.LastRun; r != nil {
		p.Trigger, p.ExitCode, p.Duration = r.Trigger, r.ExitCode, r.Duration
		for o, c := range r.Counts {
			if c != 0 {
				if p.Counts == nil {
					p.Counts = map[reconciler.Outcome]int{}
				}
				p.Counts[o] = c
			}
		}
	}
	return p
}

// Branch says which status repository a page was read from.
type Branch struct {
	// URL is the repository, without credentials; Branch the status
	// branch (the nodes' refs are refs/<Branch>/<node>).
	URL    string `json:"url"`
	Branch string `json:"branch"`
	// Tip is the branch's commit read (unset when there is no branch),
	// NodeRefs how many nodes were read from refs of their own, Read when;
	// all unset before the first read.
	Tip      string    `json:"tip,omitempty"`
	NodeRefs int       `json:"nodeRefs,omitempty"`
	Read     time.Time `json:"read,omitzero"`
	// Checked is when the branch was last polled, and PollError why that
	// poll failed, if it did: the page shows what was read before.
	Checked   time.Time `json:"checked,omitzero"`
	PollError string    `json:"pollError,omitempty"`
	// Unreadable says which documents could not be read.
	Unreadable string `json:"unreadable,omitempty"`
}

// Row is one node on the fleet page.
type Row struct {
	Node string `json:"node"`
	Role string `json:"role,omitempty"`
	Site string `json:"site,omitempty"`
	// State is the worst thing about the node (see the State constants).
	State     string    `json:"state"`
	Converged bool      `json:"converged"`
	Since     time.Time `json:"since,omitzero"`
	// AppliedRevision and DesiredRevision are the node's.
	AppliedRevision string `json:"appliedRevision,omitempty"`
	DesiredRevision string `json:"desiredRevision,omitempty"`
	Drifted         int    `json:"drifted"`
	Failed          int    `json:"failed"`
	PendingDestroy  int    `json:"pendingDestroy"`
	// Holds counts the operators' holds in force (fsgit hold); Pinned is
	// the revision a rollback by hand pinned the node to.
	Holds  int    `json:"holds,omitempty"`
	Pinned string `json:"pinned,omitempty"`
	// Refused is the newest refused commit, if any.
	Refused string `json:"refused,omitempty"`
	// SourceError is set while the node cannot reach its git source.
	SourceError string `json:"sourceError,omitempty"`
	// Tip is the branch's tip the node's source serves, TipTime its commit
	// time and TipAge its age at the page's time; Frozen says why the
	// source looks frozen (the tip older than the node's maxTipAge).
	Tip     string          `json:"tip,omitempty"`
	TipTime time.Time       `json:"tipTime,omitzero"`
	TipAge  jsondoc.Seconds `json:"tipAge,omitzero"`
	Frozen  string          `json:"frozen,omitempty"`
	// TipBehind is how much older the tip is than the newest tip of the
	// nodes on the same site and branch; TipMinority is set when it is not
	// the tip most of them report, and BehindFleet says why the node looks
	// stuck when TipBehind passes the threshold (status.CompareTips).
	TipBehind   jsondoc.Seconds `json:"tipBehind,omitzero"`
	TipMinority bool            `json:"tipMinority,omitempty"`
	BehindFleet string          `json:"behindFleet,omitempty"`
	// Updated is when the node last published; Stale is set when that is
	// longer ago than the server's stale threshold, Age how long ago.
	Updated time.Time       `json:"updated,omitzero"`
	Age     jsondoc.Seconds `json:"age,omitzero"`
	Stale   bool            `json:"stale,omitempty"`
	// Unreadable says why the node's document could not be read.
	Unreadable string `json:"unreadable,omitempty"`
}

// Count is how many nodes have one value of a filter.
type Count struct {
	Value string `json:"value"`
	Nodes int    `json:"nodes"`
}

// Fleet is the fleet page.
type Fleet struct {
	Branch Branch `json:"branch"`
	// Role and State are the filters applied (empty: all; the state
	// filter also takes "stale" and "frozen").
	Role  string `json:"role,omitempty"`
	State string `json:"state,omitempty"`
	// Total counts every node, Shown those the filters let through, Stale
	// the stale ones among every node, Frozen those whose source looks
	// frozen or whose tip is behind the fleet's.
	Total  int `json:"total"`
	Shown  int `json:"shown"`
	Stale  int `json:"stale"`
	Frozen int `json:"frozen"`
	// States and Roles count every node by state and by role.
	States []Count `json:"states"`
	Roles  []Count `json:"roles"`
	// StaleAfter is the stale threshold; MaxTipLag the threshold of
	// BehindFleet (unset: each node's maxTipAge).
	StaleAfter jsondoc.Seconds `json:"staleAfter,omitzero"`
	MaxTipLag  jsondoc.Seconds `json:"maxTipLag,omitzero"`
	Rows       []Row           `json:"rows"`
}

// frozen reports whether the row's source looks frozen, or its tip is
// behind the fleet's.
func (r *Row) frozen() bool { return r.Frozen != "" || r.BehindFleet != "" }

// rowOf makes the fleet row of n at now; lag compares its source's tip
// with the fleet's (nil: not compared).
func rowOf(n *status.Node, now time.Time, staleAfter time.Duration, lag *status.TipLag) Row {
	r := Row{Node: n.Node, Role: n.Role, Site: n.Site, State: stateOf(n), Converged: n.Converged, Since: n.Since,
		AppliedRevision: n.AppliedRevision, DesiredRevision: n.DesiredRevision, Drifted: len(n.Drifted),
		Failed: len(n.Failed), PendingDestroy: len(n.PendingDestroy), Holds: len(n.Holds), Updated: n.Updated, Unreadable: n.Unreadable}
	if n.Pinned != nil {
		r.Pinned = n.Pinned.Revision
	}
	if len(n.Refused) > 0 {
		r.Refused = n.Refused[0].Commit
	}
	if !n.Source.Reachable && n.Unreadable == "" {
		r.SourceError = n.Source.Error
		if r.SourceError == "" {
			r.SourceError = "unreachable"
		}
	}
	if !n.Updated.IsZero() {
		r.Age = jsondoc.Seconds(now.Sub(n.Updated).Truncate(time.Second))
		r.Stale = staleAfter > 0 && now.Sub(n.Updated) > staleAfter
	}
	src := n.Source
	src.CheckTip(now)
	r.Tip, r.TipTime, r.TipAge, r.Frozen = src.Tip, src.TipTime, src.TipAge, src.Frozen
	if lag != nil {
		r.TipBehind, r.TipMinority, r.BehindFleet = lag.Behind, lag.Minority, lag.Reason
	}
	return r
}

// tipLags compares the snapshot's nodes' tips (status.CompareTips).
func tipLags(snap *Snapshot, maxLag time.Duration) map[string]status.TipLag {
	return status.CompareTips(snap.Nodes, maxLag)
}

// lagOf returns the comparison of node's tip, nil when it has none.
func lagOf(lags map[string]status.TipLag, node string) *status.TipLag {
	if l, ok := lags[node]; ok {
		return &l
	}
	return nil
}

// fleetPage builds the fleet page of snap, filtered by role and state.
func fleetPage(b Branch, snap *Snapshot, role, state string, now time.Time, staleAfter, maxTipLag time.Duration) *Fleet {
	f := &Fleet{Branch: b, Role: role, State: state, StaleAfter: jsondoc.Seconds(staleAfter), MaxTipLag: jsondoc.Seconds(maxTipLag), Rows: []Row{}}
	byState, byRole := map[string]int{}, map[string]int{}
	lags := tipLags(snap, maxTipLag)
	for i := range snap.Nodes {
		r := rowOf(&snap.Nodes[i], now, staleAfter, lagOf(lags, snap.Nodes[i].Node))
		f.Total++
		byState[r.State]++
		byRole[r.Role]++
		if r.Stale {
			f.Stale++
		}
		if r.frozen() {
			f.Frozen++
		}
		if role != "" && r.Role != role ||
			state != "" && r.State != state && !(state == "stale" && r.Stale) && !(state == "frozen" && r.frozen()) {
			continue
		}
		f.Rows = append(f.Rows, r)
	}
	f.Shown = len(f.Rows)
	f.States = []Count{}
	for _, s := range states {
		f.States = append(f.States, Count{Value: s, Nodes: byState[s]})
	}
	f.Roles = []Count{}
	for r, c := range byRole {
		f.Roles = append(f.Roles, Count{Value: r, Nodes: c})
	}
	sort.Slice(f.Roles, func(i, j int) bool { return f.Roles[i].Value < f.Roles[j].Value })
	return f
}

// NodePage is the node page: the node's current document and its
// history.
type NodePage struct {
	Branch Branch `json:"branch"`
	// Row is the node's fleet row; Document the document itself.
	Row      Row          `json:"row"`
	Document *status.Node `json:"document"`
	// History is the node's documents in the commits read, oldest first.
	History []Point `json:"history"`
}

// Lag is one node in relation to a revision.
type Lag struct {
	Node string `json:"node"`
	Role string `json:"role,omitempty"`
	// AppliedRevision is what the node runs.
	AppliedRevision string `json:"appliedRevision,omitempty"`
	// Since is when the node first showed the revision applied in the
	// history read, if it did.
	Since time.Time `json:"since,omitzero"`
	// Counts are the outcomes of the run that applied the revision (from
	// the node's documents), if the history holds it.
	Counts map[reconciler.Outcome]int `json:"counts,omitempty"`
	// Changes summarizes the changes the node reported for the revision:
	// resources drifted, failed or held for a destroy, with their fields.
	Changes []string `json:"changes,omitempty"`
	// Reason is why the node refused the revision, for a refusal.
	Reason string `json:"reason,omitempty"`
}

// Revision is the revision page: which nodes run a commit of the site,
// which lag, which refused it.
type Revision struct {
	Branch Branch `json:"branch"`
	// Revision is the commit asked for (as given: a prefix works).
	Revision string `json:"revision"`
	Running  []Lag  `json:"running"`
	Lagging  []Lag  `json:"lagging"`
	Refused  []Lag  `json:"refused"`
}

// matches reports whether the full hash rev is the revision asked for: a
// prefix of at least 4 characters, or the whole.
func matches(rev, asked string) bool {
	return rev != "" && len(asked) >= 4 && strings.HasPrefix(rev, asked)
}

// revisionPage builds the revision page of rev.
func revisionPage(b Branch, snap *Snapshot, rev string) *Revision {
	p := &Revision{Branch: b, Revision: rev, Running: []Lag{}, Lagging: []Lag{}, Refused: []Lag{}}
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		l := Lag{Node: n.Node, Role: n.Role, AppliedRevision: n.AppliedRevision}
		refused := false
		for _, r := range n.Refused {
			if matches(r.Commit, rev) {
				l.Reason = r.Reason
				refused = true
				break
			}
		}
		switch {
		case refused:
			p.Refused = append(p.Refused, l)
		case matches(n.AppliedRevision, rev):
			for _, pt := range snap.History[n.Node] {
				if matches(pt.AppliedRevision, rev) {
					l.Since, l.Counts = pt.At, pt.Counts
					break
				}
			}
			if l.Counts == nil && n.LastRun != nil && matches(n.LastRun.Revision, rev) {
				l.Counts = pointOf(n, "", time.Time{}).Counts
			}
			l.Changes = changesOf(n)
			p.Running = append(p.Running, l)
		default:
			p.Lagging = append(p.Lagging, l)
		}
	}
	return p
}

// changesOf lists what a node reports as still to do at its revision.
func changesOf(n *status.Node) []string {
	var out []string
	add := func(what string, items []status.Item) {
		for _, it := range items {
			s := what + " " + string(it.ID)
			var fields []string
			for _, c := range it.Changes {
				fields = append(fields, c.Field)
			}
			if len(fields) > 0 {
				s += " (" + strings.Join(fields, ", ") + ")"
			}
			out = append(out, s)
		}
	}
	add("failed", n.Failed)
	add("drifted", n.Drifted)
	add("pending destroy", n.PendingDestroy)
	return out
}

// Health is the /healthz document.
type Health struct {
	// OK is true once the branch has been read and the last poll worked.
	OK     bool   `json:"ok"`
	Branch Branch `json:"branch"`
	Nodes  int    `json:"nodes"`
}
