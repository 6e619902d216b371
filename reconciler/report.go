package reconciler

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Outcomes lists every outcome, in the order reports show them.
var Outcomes = []Outcome{Created, Changed, Deleted, Drifted, Failed, Skipped, PendingDestroy, Unchanged}

// Summary counts a report's results, as kept in a run's history and in the
// last-run summary file.
type Summary struct {
	// Total is the number of results.
	Total int `json:"total"`
	// Outcomes counts results per outcome; every outcome is present.
	Outcomes map[Outcome]int `json:"outcomes"`
	// Refreshed counts refreshed resources (in noop: would be).
	Refreshed int `json:"refreshed"`
	// Corrective counts resources whose changes corrected drift (in
	// noop: would): a drift held, detected only, waiting for a window or
	// pending destroy is not corrected, and is counted as drifted.
	Corrective int `json:"corrective"`
	// Changes counts field-level changes applied (in noop: found).
	Changes int `json:"changes"`
}

// corrects reports whether res's changes correct drift in this run:
// applied, or, in noop, to be applied (not held, detected only, waiting
// or pending destroy).
func (r *Report) corrects(res *Result) bool {
	if !res.Corrective {
		return false
	}
	switch res.Outcome {
	case Created, Changed, Deleted:
		return true
	case Drifted:
		return r.Noop && r.label(res) != "drifted"
	}
	return false
}

// Summary counts the report's results.
func (r *Report) Summary() Summary {
	s := Summary{Total: len(r.Results), Outcomes: make(map[Outcome]int, len(Outcomes))}
	for _, o := range Outcomes {
		s.Outcomes[o] = 0
	}
	for _, res := range r.Results {
		s.Outcomes[res.Outcome]++
		if res.Refreshed {
			s.Refreshed++
		}
		if r.corrects(&res) {
			s.Corrective++
		}
		switch res.Outcome {
		case Created, Changed, Deleted, Drifted:
			s.Changes += len(res.Changes)
		}
	}
	return s
}

// TextOptions tunes [Report.WriteText].
type TextOptions struct {
	// Verbose lists unchanged resources too, and observed states.
	Verbose bool
	// Times adds durations: the run's, and each resource's that took long.
	Times bool
}

// WriteText renders the report for a person: one block per resource that
// did something (or would, in noop), with its field-level changes, what was
// refreshed and why, what failed and why, what was skipped or held; then a
// one-line summary. Without Times the text depends only on the results, so
// it can be compared with a golden file.
func (r *Report) WriteText(w io.Writer, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	r.writeHeader(bw)
	listed := 0
	for i := range r.Results {
		res := &r.Results[i]
		if res.Outcome == Unchanged && !res.Refreshed && res.Warning == "" && !res.Pruned && !opts.Verbose {
			continue
		}
		listed++
		r.writeResult(bw, res, opts)
	}
	if listed == 0 && len(r.Results) > 0 {
		fmt.Fprintln(bw, "  nothing to do: every resource is converged")
	}
	if r.Stopped != "" {
		fmt.Fprintf(bw, "  stopped early: %s\n", r.Stopped)
	}
	r.writeSummary(bw, opts)
	return bw.Flush()
}

// String renders the report as text without times.
func (r *Report) String() string {
	var b strings.Builder
	_ = r.WriteText(&b, TextOptions{})
	return b.String()
}

func (r *Report) writeHeader(w io.Writer) {
	name := r.Node
	if r.Site != "" {
		name = r.Site + "/" + r.Node
	}
	fmt.Fprintf(w, "node %s", name)
	if r.Role != "" {
		fmt.Fprintf(w, " (role %s)", r.Role)
	}
	if r.Revision != "" {
		fmt.Fprintf(w, " at %s", shortRevision(r.Revision))
	}
	if r.Noop {
		fmt.Fprint(w, ", noop: nothing was changed")
	}
	if len(r.Only) > 0 {
		fmt.Fprintf(w, ", only %s and what depends on it", joinIDs(r.Only))
	}
	fmt.Fprintln(w)
}

// label is the word shown before a resource's ID.
func (r *Report) label(res *Result) string {
	switch res.Outcome {
	case Drifted:
		if !r.Noop || strings.HasPrefix(res.Reason, reasonDetect) {
			return "drifted"
		}
		switch res.Action {
		case ActionCreate:
			return "would create"
		case ActionDelete:
			return "would delete"
		}
		return "would change"
	case PendingDestroy:
		return "pending destroy"
	case Unchanged:
		if res.Refreshed {
			if r.Noop {
				return "would refresh"
			}
			return "refreshed"
		}
		if res.Pruned && strings.HasPrefix(res.Reason, "left the catalog; kept") {
			return "kept"
		}
		if res.Pruned {
			return "forgotten"
		}
	}
	return string(res.Outcome)
}

const labelWidth = 16

func (r *Report) writeResult(w io.Writer, res *Result, opts TextOptions) {
	label := r.label(res)
	var notes []string
	if res.Corrective {
		switch {
		case res.Outcome == Created || res.Outcome == Changed || res.Outcome == Deleted:
			notes = append(notes, "drift corrected")
		case res.Outcome == Drifted && r.Noop:
			notes = append(notes, "drift")
		}
	}
	if res.Refreshed && res.Outcome != Unchanged {
		if r.Noop {
			notes = append(notes, "would refresh")
		} else {
			notes = append(notes, "refreshed")
		}
	}
	if opts.Times && res.Duration.D() >= time.Second {
		notes = append(notes, roundDuration(res.Duration.D()))
	}
	line := fmt.Sprintf("  %-*s %s", labelWidth, label, res.ID)
	if len(notes) > 0 {
		line += "  (" + strings.Join(notes, ", ") + ")"
	}
	fmt.Fprintln(w, line)
	indent := strings.Repeat(" ", labelWidth+3)
	for _, c := range res.Changes {
		fmt.Fprintf(w, "%s%s: %s -> %s  [%s]\n", indent, c.Field, display(c.Before), display(c.After), c.Class)
	}
	if len(res.RefreshedBy) > 0 {
		fmt.Fprintf(w, "%snotified by %s\n", indent, joinIDs(res.RefreshedBy))
	}
	if res.Reason != "" {
		fmt.Fprintf(w, "%s%s\n", indent, res.Reason)
	}
	if res.Error != "" {
		fmt.Fprintf(w, "%serror: %s\n", indent, res.Error)
	}
	if res.Warning != "" {
		fmt.Fprintf(w, "%swarning: %s\n", indent, res.Warning)
	}
	if opts.Verbose && len(res.Observed) > 0 {
		keys := make([]string, 0, len(res.Observed))
		for k := range res.Observed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%sobserved %s = %s\n", indent, k, display(res.Observed[k]))
		}
	}
}

func (r *Report) writeSummary(w io.Writer, opts TextOptions) {
	s := r.Summary()
	var parts []string
	add := func(n int, word string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, word))
		}
	}
	if r.Noop {
		would := 0
		for i := range r.Results {
			if res := &r.Results[i]; res.Outcome == Drifted && r.label(res) != "drifted" {
				would++
			}
		}
		add(would, "would change")
		add(s.Outcomes[Drifted]-would, "drifted")
		add(s.Refreshed, "would refresh")
		add(s.Corrective, "would correct drift")
	} else {
		add(s.Outcomes[Created], "created")
		add(s.Outcomes[Changed], "changed")
		add(s.Outcomes[Deleted], "deleted")
		add(s.Outcomes[Drifted], "drifted")
		add(s.Refreshed, "refreshed")
		add(s.Corrective, "drift corrected")
	}
	add(s.Outcomes[Failed], "failed")
	add(s.Outcomes[Skipped], "skipped")
	add(s.Outcomes[PendingDestroy], "pending destroy")
	add(s.Outcomes[Unchanged], "unchanged")
	if len(parts) == 0 {
		parts = append(parts, "no resources")
	}
	line := "summary: " + strings.Join(parts, ", ")
	if opts.Times {
		line += " in " + roundDuration(r.Duration.D())
	}
	fmt.Fprintln(w, line)
}

// roundDuration keeps two or three significant digits.
func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// display shows an empty display value as "(none)".
func display(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// shortRevision shortens a commit hash or "sha256:<hex>" to 12 hex digits.
func shortRevision(rev string) string {
	prefix, hex, ok := strings.Cut(rev, ":")
	if !ok {
		prefix, hex = "", rev
	} else {
		prefix += ":"
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return prefix + hex
}
