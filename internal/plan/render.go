package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// Summary counts what a plan does across nodes.
type Summary struct {
	Nodes    int `json:"nodes"`
	Changes  int `json:"changes"`
	Restarts int `json:"restarts"`
	Destroys int `json:"destroys"`
	Pending  int `json:"pendingDestroys"`
	// Broken counts the checks across nodes that fail at head.
	Broken int `json:"broken,omitempty"`
}

// Summarize counts the plan's nodes, changes, restarts or recreates, and
// destructive changes (and of those, the ones held as pending destroys).
func (p *Plan) Summarize() Summary {
	var s Summary
	s.Broken = len(p.Broken())
	for _, n := range p.Nodes {
		if n.Status == NodeUnchanged {
			continue
		}
		s.Nodes++
		for _, r := range n.Resources {
			s.Changes++
			if r.Refresh() || (r.Class == reconciler.Disruptive && r.Action == reconciler.ActionUpdate) {
				s.Restarts++
			}
			if r.Class == reconciler.Destructive {
				s.Destroys++
				if r.PendingDestroy {
					s.Pending++
				}
			}
		}
	}
	return s
}

// Line returns the summary as one line: "3 nodes change: 1 restart, 0
// destroys".
func (s Summary) Line() string {
	line := "no node changes"
	if s.Nodes > 0 {
		line = fmt.Sprintf("%s change: %s, %s", plural(s.Nodes, "node"), plural(s.Restarts, "restart"), plural(s.Destroys, "destroy"))
	}
	if s.Pending > 0 {
		line += fmt.Sprintf(" (%d held as pending destroy)", s.Pending)
	}
	if s.Broken > 0 {
		line += fmt.Sprintf("; %s BROKEN across nodes", plural(s.Broken, "invariant"))
	}
	return line
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") && !strings.HasSuffix(word, "oy") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// WriteJSON writes the plan, with its summary, as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Summary Summary `json:"summary"`
		*Plan
	}{p.Summarize(), p})
}

// WriteText writes the plan for a terminal.
func (p *Plan) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "plan %s..%s: %s\n", short(p.Base), short(p.Head), p.Summarize().Line())
	for _, n := range p.Nodes {
		fmt.Fprintf(b, "\nnode %s (%s): %s\n", n.Node, n.Role, n.Status)
		writeObserved(b, n.Observed, "  ")
		for _, inv := range n.Invariants {
			fmt.Fprintf(b, "  %s\n", invariantLine(inv))
		}
		for _, r := range n.Resources {
			fmt.Fprintf(b, "  %s %s%s\n", symbol(r), r.ID, tags(r))
			for _, f := range r.Fields {
				writeField(b, f, "      ")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the plan as a pull-request comment: a summary line,
// then one collapsible section per node (open when there is only one).
// The field changes are a ```diff block whose lines start with their
// "+" or "-" at column 0, as GitHub needs to colour them.
func (p *Plan) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	s := p.Summarize()
	fmt.Fprintf(b, "### fsgit plan `%s..%s`\n\n**%s**\n", short(p.Base), short(p.Head), s.Line())
	if s.Pending > 0 {
		fmt.Fprintf(b, "\n> [!WARNING]\n> %d destructive change(s) will be held as pending destroy: set `allowDestroy: true` on the resource to let them run.\n", s.Pending)
	}
	if broken := p.Broken(); len(broken) > 0 {
		b.WriteString("\n> [!CAUTION]\n> The change breaks the feature store across nodes (docs/invariants.md):\n")
		for _, inv := range broken {
			fmt.Fprintf(b, "> - **%s** (%s): %s\n", inv.Check, strings.Join(inv.Nodes, ", "), inv.Message)
		}
	}
	open := ""
	if len(p.Nodes) == 1 {
		open = " open"
	}
	for _, n := range p.Nodes {
		ns := (&Plan{Nodes: []NodePlan{n}}).Summarize()
		fmt.Fprintf(b, "\n<details%s><summary><b>%s</b> (%s): %s, %s, %s</summary>\n\n", open, n.Node, n.Role, n.Status,
			plural(ns.Changes, "change"), plural(ns.Restarts, "restart"))
		if n.Observed != nil {
			b.WriteString("```\n")
			writeObserved(b, n.Observed, "")
			b.WriteString("```\n\n")
		}
		for _, inv := range n.Invariants {
			fmt.Fprintf(b, "- %s\n", invariantLine(inv))
		}
		if len(n.Invariants) > 0 {
			b.WriteString("\n")
		}
		if len(n.Resources) > 0 {
			b.WriteString("| | resource | effect |\n|---|---|---|\n")
		}
		for _, r := range n.Resources {
			fmt.Fprintf(b, "| %s | `%s` | %s |\n", symbol(r), r.ID, strings.TrimSpace(tags(r)))
		}
		var fields strings.Builder
		for _, r := range n.Resources {
			if len(r.Fields) == 0 {
				continue
			}
			if r.Action == reconciler.ActionCreate {
				fmt.Fprintf(&fields, "+ %s\n", r.ID)
			} else {
				// A hunk header: GitHub sets it apart from the lines.
				fmt.Fprintf(&fields, "@@ %s %s @@\n", symbol(r), r.ID)
			}
			for _, f := range r.Fields {
				writeFieldDiff(&fields, f, r.Action == reconciler.ActionCreate)
			}
		}
		if fields.Len() > 0 {
			b.WriteString("\n```diff\n" + fields.String() + "```\n")
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFieldDiff writes one field change as diff lines: the mark ("+",
// "-" or " ") in column 0, then the field indented under its resource.
// Every line of a created resource is "+".
func writeFieldDiff(b *strings.Builder, f FieldDiff, created bool) {
	const indent = "    "
	line := func(mark, text string) {
		if created {
			mark = "+"
		}
		fmt.Fprintf(b, "%s%s%s\n", mark, indent, text)
	}
	switch {
	case f.List:
		head := f.Path + ":"
		switch {
		case len(f.Items) == 0 && len(f.Removed) == 0:
			head += " []"
		case len(f.Added) == 0 && len(f.Removed) == 0:
			head += " (order changed)"
		}
		line(" ", head)
		added := counts(f.Added)
		for _, it := range f.Items {
			mark := " "
			if added[it] > 0 {
				added[it]--
				mark = "+"
			}
			line(mark, "  - "+it)
		}
		for _, it := range f.Removed {
			line("-", "  - "+it)
		}
	case len(f.Lines) > 0:
		line(" ", fmt.Sprintf("%s: %s → %s", f.Path, f.Before, f.After))
		for _, l := range f.Lines {
			mark, text := l[:1], strings.TrimPrefix(l[1:], " ")
			if l == "…" {
				mark, text = " ", l
			}
			line(mark, "  "+text)
		}
	default:
		if f.Before != "" {
			line("-", f.Path+": "+f.Before)
		}
		if f.After != "" {
			line("+", f.Path+": "+f.After)
		}
	}
}

// counts counts each item of a list.
func counts(items []string) map[string]int {
	m := make(map[string]int, len(items))
	for _, it := range items {
		m[it]++
	}
	return m
}

func writeObserved(b *strings.Builder, o *Observed, indent string) {
	if o == nil {
		return
	}
	if o.Unreadable != "" {
		fmt.Fprintf(b, "%snode status unreadable: %s\n", indent, o.Unreadable)
		return
	}
	if o.HasHead {
		fmt.Fprintf(b, "%snode already runs %s\n", indent, short(o.AppliedRevision))
	} else {
		fmt.Fprintf(b, "%snode runs %s now\n", indent, short(o.AppliedRevision))
	}
	for _, l := range []struct {
		name string
		ids  []reconciler.ID
	}{{"drifted there now", o.Drifted}, {"failing there now", o.Failed}, {"pending destroy there now", o.PendingDestroy}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(b, "%s%s: %s\n", indent, l.name, joinIDs(l.ids))
		}
	}
	for _, h := range o.Holds {
		what := "held"
		if h.ID != "" {
			what = string(h.ID) + " held"
		}
		fmt.Fprintf(b, "%s%s until %s by %s (%s)", indent, what, h.Until.UTC().Format(time.RFC3339), h.By, h.Reason)
		if len(h.Waits) > 0 {
			fmt.Fprintf(b, ": %s will wait", joinIDs(h.Waits))
		}
		b.WriteString("\n")
	}
}

func writeField(b *strings.Builder, f FieldDiff, indent string) {
	switch {
	case f.Secret && f.Before != "" && f.After != "":
		fmt.Fprintf(b, "%s%s: reference changed: %s → %s\n", indent, f.Path, f.Before, f.After)
	case f.List:
		writeListField(b, f, indent)
	case len(f.Lines) > 0:
		fmt.Fprintf(b, "%s%s: %s → %s\n", indent, f.Path, f.Before, f.After)
		for _, l := range f.Lines {
			fmt.Fprintf(b, "%s  %s\n", indent, l)
		}
	case f.Before == "":
		fmt.Fprintf(b, "%s%s: %s\n", indent, f.Path, f.After)
	case f.After == "":
		fmt.Fprintf(b, "%s%s: %s → (unset)\n", indent, f.Path, f.Before)
	default:
		fmt.Fprintf(b, "%s%s: %s → %s\n", indent, f.Path, f.Before, f.After)
	}
}

// writeListField writes a list field for a terminal: the items at head,
// the added ones marked "+", then the removed ones marked "-".
func writeListField(b *strings.Builder, f FieldDiff, indent string) {
	switch {
	case len(f.Items) == 0 && len(f.Removed) == 0:
		fmt.Fprintf(b, "%s%s: []\n", indent, f.Path)
	case len(f.Added) == 0 && len(f.Removed) == 0:
		fmt.Fprintf(b, "%s%s: order changed\n", indent, f.Path)
	case len(f.Items) == len(f.Added) && len(f.Removed) == 0:
		fmt.Fprintf(b, "%s%s:\n", indent, f.Path)
	default:
		fmt.Fprintf(b, "%s%s: %d added, %d removed\n", indent, f.Path, len(f.Added), len(f.Removed))
	}
	added := counts(f.Added)
	for _, it := range f.Items {
		mark := " "
		if added[it] > 0 {
			added[it]--
			mark = "+"
		}
		fmt.Fprintf(b, "%s  %s %s\n", indent, mark, it)
	}
	for _, it := range f.Removed {
		fmt.Fprintf(b, "%s  - %s\n", indent, it)
	}
}

func symbol(r ResourcePlan) string {
	switch r.Action {
	case reconciler.ActionCreate:
		return "+"
	case reconciler.ActionDelete:
		return "-"
	case reconciler.ActionUpdate:
		return "~"
	}
	return "↻"
}

func tags(r ResourcePlan) string {
	var t []string
	if r.Effect != "" {
		t = append(t, r.Effect)
	}
	if r.Refresh() {
		t = append(t, "restart (notified by "+joinIDs(r.RefreshedBy)+")")
	}
	if r.Class == reconciler.Destructive {
		if r.PendingDestroy {
			t = append(t, "DESTRUCTIVE: held as pending destroy")
		} else {
			t = append(t, "DESTRUCTIVE: allowed by allowDestroy")
		}
	}
	if len(t) == 0 {
		return ""
	}
	return "  [" + strings.Join(t, "; ") + "]"
}

func short(rev string) string {
	if len(rev) == 40 {
		return rev[:12]
	}
	return rev
}

// invariantLine renders a check across nodes on one line.
func invariantLine(inv Invariant) string {
	if inv.Waived != "" {
		return fmt.Sprintf("waived %s (%s): %s", inv.Check, inv.Waived, inv.Message)
	}
	return fmt.Sprintf("BROKEN %s: %s", inv.Check, inv.Message)
}
