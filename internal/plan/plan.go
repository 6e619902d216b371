// Package plan computes what a change to a site would do on each node, from
// the catalogs at two revisions alone: resources created, changed (field by
// field) or removed, what would restart or be recreated along notify edges
// and container spec changes, and which removals are destructive and would
// be held as pending destroys. fsgit plan renders it for pull requests.
package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// NodeStatus says what happens to a node as a whole.
type NodeStatus string

const (
	// NodeAdded: the node is new at head.
	NodeAdded NodeStatus = "added"
	// NodeRemoved: the node is gone at head; its agent will find no catalog.
	NodeRemoved NodeStatus = "removed"
	// NodeChanged: the node's catalog changes.
	NodeChanged NodeStatus = "changed"
	// NodeUnchanged: the node's catalog is the same.
	NodeUnchanged NodeStatus = "unchanged"
)

// Plan is the per-node effect of moving a site from one revision to another.
type Plan struct {
	Base  string     `json:"base"`
	Head  string     `json:"head"`
	Nodes []NodePlan `json:"nodes"`
}

// NodePlan is the effect on one node.
type NodePlan struct {
	Node      string         `json:"node"`
	Role      string         `json:"role,omitempty"`
	Status    NodeStatus     `json:"status"`
	Resources []ResourcePlan `json:"resources,omitempty"`
	// Observed is what the node's status says it has now, when known.
	Observed *Observed `json:"observed,omitempty"`
	// Invariants are the checks across nodes that fail (or are waived) at
	// head and involve this node; a node the change leaves alone is listed,
	// unchanged, when one involves it.
	Invariants []Invariant `json:"invariants,omitempty"`
}

// Observed is what a node last reported on the status branch, as it bears
// on a plan.
type Observed struct {
	// AppliedRevision is the revision the node runs.
	AppliedRevision string `json:"appliedRevision"`
	// HasHead is true when the node already runs the head revision.
	HasHead bool `json:"hasHead"`
	// Drifted, Failed and PendingDestroy list resources in that state there
	// now.
	Drifted        []reconciler.ID `json:"drifted,omitempty"`
	Failed         []reconciler.ID `json:"failed,omitempty"`
	PendingDestroy []reconciler.ID `json:"pendingDestroy,omitempty"`
	// Holds are the operators' holds in force there, and the planned
	// changes each keeps waiting.
	Holds []Hold `json:"holds,omitempty"`
	// Unreadable says why the node's status document could not be read;
	// the other fields are then empty.
	Unreadable string `json:"unreadable,omitempty"`
}

// Hold is an operator's hold on a node (fsgit hold) as it bears on a plan.
type Hold struct {
	// ID is the held resource; empty: the whole node.
	ID     reconciler.ID `json:"id,omitempty"`
	By     string        `json:"by"`
	Reason string        `json:"reason"`
	Until  time.Time     `json:"until,omitzero"`
	// Waits lists the planned changes the hold keeps waiting.
	Waits []reconciler.ID `json:"waits,omitempty"`
}

// ResourcePlan is the effect on one resource.
type ResourcePlan struct {
	ID     reconciler.ID     `json:"id"`
	Action reconciler.Action `json:"action,omitempty"`
	Fields []FieldDiff       `json:"fields,omitempty"`
	Class  reconciler.Class  `json:"class"`
	// Effect says what the change does to the running system ("recreate
	// container", "restart"), when the kind knows.
	Effect string `json:"effect,omitempty"`
	// PendingDestroy is set for a destructive change on a resource that does
	// not allow destroy: the node will hold it and lose nothing.
	PendingDestroy bool `json:"pendingDestroy,omitempty"`
	// RefreshedBy lists changed resources that notify this one: it would be
	// restarted, reloaded or recreated.
	RefreshedBy []reconciler.ID `json:"refreshedBy,omitempty"`
}

// Refresh reports whether the resource would be refreshed through a notify
// edge.
func (r *ResourcePlan) Refresh() bool { return len(r.RefreshedBy) > 0 }

// FieldDiff is one changed field, by its path in the resource ("mode",
// "spec.ports[0].host"). A secret reference shows only its name; a
// multi-line text shows a line diff; a list of scalars (privileges,
// require) shows its items, the ones added and the ones removed.
type FieldDiff struct {
	Path   string   `json:"path"`
	Before string   `json:"before,omitempty"`
	After  string   `json:"after,omitempty"`
	Secret bool     `json:"secret,omitempty"`
	Lines  []string `json:"lines,omitempty"`
	// List is set for a list of scalars; Before and After are then empty.
	List bool `json:"list,omitempty"`
	// Items is the list at head (empty when the field is removed).
	Items []string `json:"items,omitempty"`
	// Added and Removed are the items the head adds to or removes from the
	// base's list (every item, for a new or removed field). Both empty:
	// only the order changed.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Compute compares the catalogs of every node at base and head. Nodes
// without change are left out. Kinds found in reg that implement
// [reconciler.Previewer] class their own changes.
func Compute(base, head map[string]*reconciler.Catalog, reg *reconciler.Registry) *Plan {
	p := &Plan{}
	names := map[string]bool{}
	for n := range base {
		names[n] = true
	}
	for n := range head {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		np := computeNode(n, base[n], head[n], reg)
		if np.Status != NodeUnchanged {
			p.Nodes = append(p.Nodes, np)
		}
	}
	return p
}

func computeNode(node string, base, head *reconciler.Catalog, reg *reconciler.Registry) NodePlan {
	if sameResources(base, head) {
		// Evaluate gave the base the head's own resources (the node's
		// inputs are the same at both revisions): nothing to compare.
		return NodePlan{Node: node, Status: NodeUnchanged}
	}
	np := NodePlan{Node: node, Status: NodeChanged}
	empty := &reconciler.Catalog{}
	switch {
	case base == nil:
		np.Status = NodeAdded
		base = empty
	case head == nil:
		np.Status = NodeRemoved
		head = empty
	}
	if head.Role != "" {
		np.Role = head.Role
	} else {
		np.Role = base.Role
	}
	old := index(base)
	cur := index(head)
	ids := map[reconciler.ID]bool{}
	for id := range old {
		ids[id] = true
	}
	for id := range cur {
		ids[id] = true
	}
	changed := map[reconciler.ID]*ResourcePlan{}
	for id := range ids {
		o, n := old[id], cur[id]
		rp := ResourcePlan{ID: id}
		switch {
		case o == nil:
			rp.Action = reconciler.ActionCreate
			rp.Fields = diffResource(nil, n)
		case n == nil:
			rp.Action = reconciler.ActionDelete
		default:
			rp.Fields = diffResource(o, n)
			if len(rp.Fields) == 0 {
				continue
			}
			rp.Action = reconciler.ActionUpdate
		}
		rp.Class, rp.Effect = preview(reg, o, n)
		if rp.Class == reconciler.Destructive {
			allow := (n != nil && n.AllowDestroy) || (n == nil && o.AllowDestroy)
			rp.PendingDestroy = !allow
		}
		changed[id] = &rp
	}
	// Refreshes along notify edges of the head catalog: a changed resource
	// refreshes what it notifies, unless that resource is itself created or
	// removed, and a refreshed resource passes the refresh on (the sshd
	// drop-in refreshes its syntax check, which refreshes sshd). A worklist
	// over sorted IDs keeps the result the same on every run.
	queue := make([]reconciler.ID, 0, len(changed))
	for id := range changed {
		queue = append(queue, id)
	}
	sort.Slice(queue, func(i, j int) bool { return queue[i] < queue[j] })
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		src := cur[id]
		if src == nil {
			continue
		}
		for _, target := range src.Notify {
			t, ok := changed[target]
			if !ok {
				if cur[target] == nil {
					continue
				}
				t = &ResourcePlan{ID: target, Class: reconciler.Disruptive}
				changed[target] = t
			}
			if t.Action == reconciler.ActionCreate || t.Action == reconciler.ActionDelete {
				continue
			}
			if slices.Contains(t.RefreshedBy, id) {
				continue
			}
			first := len(t.RefreshedBy) == 0
			t.RefreshedBy = append(t.RefreshedBy, id)
			if t.Class < reconciler.Disruptive {
				t.Class = reconciler.Disruptive
			}
			if first && t.Action == reconciler.ActionNone {
				// Refreshed only: it passes the refresh on once.
				queue = append(queue, target)
			}
		}
	}
	for _, rp := range changed {
		sort.Slice(rp.RefreshedBy, func(i, j int) bool { return rp.RefreshedBy[i] < rp.RefreshedBy[j] })
		np.Resources = append(np.Resources, *rp)
	}
	sort.Slice(np.Resources, func(i, j int) bool { return np.Resources[i].ID < np.Resources[j].ID })
	if np.Status == NodeChanged && len(np.Resources) == 0 {
		np.Status = NodeUnchanged
	}
	return np
}

func index(c *reconciler.Catalog) map[reconciler.ID]*reconciler.Resource {
	m := make(map[reconciler.ID]*reconciler.Resource, len(c.Resources))
	for i := range c.Resources {
		m[c.Resources[i].ID] = &c.Resources[i]
	}
	return m
}

func preview(reg *reconciler.Registry, o, n *reconciler.Resource) (reconciler.Class, string) {
	r := n
	if r == nil {
		r = o
	}
	if reg != nil {
		if k, ok := reg.Lookup(r.Kind()); ok {
			if pv, ok := reconciler.AsPreviewer(k); ok {
				return pv.Preview(o, n)
			}
		}
	}
	if n == nil {
		return reconciler.Destructive, "remove"
	}
	return reconciler.Safe, ""
}

// diffResource lists the changed fields between two versions of a resource;
// o is nil for a new resource, whose fields are all listed as added.
func diffResource(o, n *reconciler.Resource) []FieldDiff {
	before := map[string]leaf{}
	if o != nil {
		before = flattenResource(o)
	}
	after := flattenResource(n)
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []FieldDiff
	for k := range keys {
		b, hasB := before[k]
		a, hasA := after[k]
		if hasA && hasB && a.text == b.text && a.secret == b.secret && a.list == b.list {
			continue
		}
		if a.list || b.list {
			out = append(out, listDiff(k, b, a))
			continue
		}
		fd := FieldDiff{Path: k, Before: b.text, After: a.text, Secret: a.secret || b.secret}
		if hasB && hasA && (strings.Contains(b.text, "\n") || strings.Contains(a.text, "\n")) {
			fd.Lines = lineDiff(b.text, a.text)
			fd.Before, fd.After = summarizeText(b.text), summarizeText(a.text)
		} else if strings.Contains(fd.After, "\n") {
			fd.After = summarizeText(fd.After)
		} else if strings.Contains(fd.Before, "\n") {
			fd.Before = summarizeText(fd.Before)
		}
		out = append(out, fd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func summarizeText(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("(%d lines)", strings.Count(strings.TrimSuffix(s, "\n"), "\n")+1)
}

// leaf is one field's value: text compares two versions; a list of
// scalars also keeps its items.
type leaf struct {
	text   string
	secret bool
	list   bool
	items  []string
}

// listLeaf makes the leaf of a list of scalars.
func listLeaf(items []string) leaf {
	return leaf{text: "[" + strings.Join(items, ", ") + "]", list: true, items: items}
}

// listDiff compares two versions of a list field, item by item (a list
// may hold an item twice: each is counted).
func listDiff(path string, before, after leaf) FieldDiff {
	fd := FieldDiff{Path: path, List: true, Items: after.items}
	left := map[string]int{}
	for _, it := range before.items {
		left[it]++
	}
	for _, it := range after.items {
		if left[it] > 0 {
			left[it]--
			continue
		}
		fd.Added = append(fd.Added, it)
	}
	for _, it := range before.items {
		if left[it] > 0 {
			left[it]--
			fd.Removed = append(fd.Removed, it)
		}
	}
	return fd
}

func flattenResource(r *reconciler.Resource) map[string]leaf {
	m := map[string]leaf{}
	if len(r.Require) > 0 {
		m["require"] = listLeaf(sortedIDs(r.Require))
	}
	if len(r.Notify) > 0 {
		m["notify"] = listLeaf(sortedIDs(r.Notify))
	}
	if r.Mode != "" && r.Mode != reconciler.ModeEnforce {
		m["drift"] = leaf{text: string(r.Mode)}
	}
	if r.AllowDestroy {
		m["allowDestroy"] = leaf{text: "true"}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(r.Spec))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		m["spec"] = leaf{text: string(r.Spec)}
		return m
	}
	flatten("", v, m)
	return m
}

func joinIDs(ids []reconciler.ID) string { return strings.Join(sortedIDs(ids), ", ") }

func sortedIDs(ids []reconciler.ID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	sort.Strings(s)
	return s
}

// flatten walks a decoded JSON value into path -> leaf. A secret reference
// ({"secret": name}) is one leaf; a list of scalars is one leaf, compared
// item by item, so that a reordered privilege list reads as one change.
func flatten(path string, v any, m map[string]leaf) {
	switch x := v.(type) {
	case map[string]any:
		if name, ok := x["secret"].(string); ok && len(x) == 1 {
			m[path] = leaf{text: "secret " + name, secret: true}
			return
		}
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flatten(p, e, m)
		}
	case []any:
		scalars := true
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				scalars = false
			}
		}
		if scalars {
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = scalarText(e)
			}
			m[path] = listLeaf(parts)
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), e, m)
		}
	default:
		m[path] = leaf{text: scalarText(x)}
	}
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	default:
		return fmt.Sprint(x)
	}
}

// sameResources reports whether two catalogs hold the very same resources
// (one slice), as Evaluate gives a node whose inputs did not change.
func sameResources(a, b *reconciler.Catalog) bool {
	return a != nil && b != nil && len(a.Resources) > 0 && len(a.Resources) == len(b.Resources) && &a.Resources[0] == &b.Resources[0]
}
