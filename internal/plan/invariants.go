package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// Invariant is a check across nodes (internal/invariants) that fails at
// the head revision, or that the site waives. It is shown on every node it
// involves, so that a change on one node that breaks another is seen on
// both.
type Invariant struct {
	Check string `json:"check"`
	// Nodes are the nodes of both sides.
	Nodes []string `json:"nodes"`
	// Message is the sentence; when a change of this plan caused the
	// failure, it starts with it ("online-1 drops mariadb.user:…: …").
	Message string `json:"message"`
	// Waived is the reason the site gives, for a waived check.
	Waived string `json:"waived,omitempty"`
}

// Ref is a resource of a node.
type Ref struct {
	Node     string
	Resource reconciler.ID
}

// AddInvariant records a finding of a check across nodes on each node it
// involves (sides), adding a node the plan does not change. causes are
// prefixes of resource IDs whose change explains the finding: the first
// such change of the plan on one of the nodes (a removal first) leads the
// sentence. roles gives the role of a node the plan does not list yet.
func (p *Plan) AddInvariant(check string, sides []Ref, causes []string, msg, waived string, roles map[string]string) {
	inv := Invariant{Check: check, Message: msg, Waived: waived}
	for _, s := range sides {
		if s.Node != "" && !contains(inv.Nodes, s.Node) {
			inv.Nodes = append(inv.Nodes, s.Node)
		}
	}
	if cause := p.cause(inv.Nodes, sides, causes); cause != "" {
		inv.Message = cause + ": " + msg
	}
	for _, n := range inv.Nodes {
		np := p.nodePlan(n, roles[n])
		np.Invariants = append(np.Invariants, inv)
	}
}

// cause finds the change of this plan that explains a finding.
func (p *Plan) cause(nodes []string, sides []Ref, prefixes []string) string {
	best, bestRank := "", 0
	for _, n := range nodes {
		for _, np := range p.Nodes {
			if np.Node != n {
				continue
			}
			for _, r := range np.Resources {
				related := false
				for _, s := range sides {
					related = related || (s.Node == n && s.Resource == r.ID)
				}
				for _, pre := range prefixes {
					related = related || strings.HasPrefix(string(r.ID), pre)
				}
				if !related {
					continue
				}
				verb, rank := "", 0
				switch r.Action {
				case reconciler.ActionDelete:
					verb, rank = "drops", 3
				case reconciler.ActionUpdate:
					verb, rank = "changes", 2
				case reconciler.ActionCreate:
					verb, rank = "adds", 1
				}
				if rank > bestRank {
					best, bestRank = fmt.Sprintf("%s %s %s", n, verb, r.ID), rank
				}
			}
		}
	}
	return best
}

// nodePlan returns the node's plan, adding an unchanged one.
func (p *Plan) nodePlan(node, role string) *NodePlan {
	for i := range p.Nodes {
		if p.Nodes[i].Node == node {
			return &p.Nodes[i]
		}
	}
	p.Nodes = append(p.Nodes, NodePlan{Node: node, Role: role, Status: NodeUnchanged})
	sort.SliceStable(p.Nodes, func(i, j int) bool { return p.Nodes[i].Node < p.Nodes[j].Node })
	for i := range p.Nodes {
		if p.Nodes[i].Node == node {
			return &p.Nodes[i]
		}
	}
	return nil
}

// Broken returns the distinct checks that fail and are not waived, in
// order.
func (p *Plan) Broken() []Invariant {
	var out []Invariant
	seen := map[string]bool{}
	for _, n := range p.Nodes {
		for _, inv := range n.Invariants {
			if inv.Waived == "" && !seen[inv.Check+"\x00"+inv.Message] {
				seen[inv.Check+"\x00"+inv.Message] = true
				out = append(out, inv)
			}
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
