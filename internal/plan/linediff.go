package plan

import (
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// diffContext is how many unchanged lines are kept around each change.
const diffContext = 2

// lineDiff returns a unified-style diff of two texts: each line prefixed
// with "-" (removed), "+" (added) or " " (context) and a space, up to two
// lines of context around each change, and "…" between hunks where
// unchanged lines were left out. The diff is go-udiff's (Myers' algorithm
// in linear space), so a long file costs memory in proportion to its
// length, not to the product of both lengths.
func lineDiff(a, b string) []string {
	a, b = withNewline(a), withNewline(b)
	u, err := udiff.ToUnifiedDiff("a", "b", a, udiff.Lines(a, b), diffContext)
	if err != nil {
		// The edits come from the same texts: this cannot happen, but a
		// plan must still say something.
		return []string{"(the texts differ; no line diff: " + err.Error() + ")"}
	}
	var out []string
	for i, h := range u.Hunks {
		if i > 0 {
			out = append(out, "…")
		}
		for _, l := range h.Lines {
			mark := " "
			switch l.Kind {
			case udiff.Delete:
				mark = "-"
			case udiff.Insert:
				mark = "+"
			}
			out = append(out, mark+" "+strings.TrimSuffix(l.Content, "\n"))
		}
	}
	return out
}

// withNewline ends a non-empty text with a newline, so that a last line
// without one does not show as changed.
func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}
