package web

import (
	"fmt"
	"html/template"
	"net/url"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// parseTemplates parses the embedded page templates with the functions
// they use. Every value from a document goes through html/template's
// escaping: no function here returns a template.HTML or a trusted URL.
func parseTemplates() (*template.Template, error) {
	t, err := template.New("pages").Funcs(template.FuncMap{
		"short":    short,
		"ago":      func(t time.Time) string { return ago(t, time.Now()) },
		"rfc3339":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"nodeURL":  func(name string) string { return "/node/" + url.PathEscape(name) },
		"revURL":   func(rev string) string { return "/revision/" + url.PathEscape(rev) },
		"fleetURL": fleetURL,
		"outcomes": outcomes,
		"timeline": func(h []Point) *timeline { return newTimeline(h, time.Now()) },
		"seconds":  func(s jsondoc.Seconds) string { return s.D().Round(time.Millisecond).String() },
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse page templates: %w", err)
	}
	return t, nil
}

// short is a commit's first 12 hex digits, or "-".
func short(rev string) string {
	switch {
	case rev == "":
		return "-"
	case len(rev) > 12:
		return rev[:12]
	}
	return rev
}

// ago says how long before now t was, to the unit that matters.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// fleetURL is the fleet page filtered by role and state.
func fleetURL(role, state string) string {
	q := url.Values{}
	if role != "" {
		q.Set("role", role)
	}
	if state != "" {
		q.Set("state", state)
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

// outcomes lists the non-zero counts in reconciler.Outcomes' order.
func outcomes(c map[reconciler.Outcome]int) []Count {
	var out []Count
	for _, o := range reconciler.Outcomes {
		if c[o] > 0 {
			out = append(out, Count{Value: string(o), Nodes: c[o]})
		}
	}
	return out
}

// timeline is a node's history drawn as SVG: a band coloured by state
// between successive documents, a mark per run, and a line where the
// applied revision changed.
type timeline struct {
	Width, Height float64
	Bands         []band
	Runs          []mark
	Revisions     []mark
	From, To      string
}

type band struct {
	X, W  float64
	Class string
	Title string
}

type mark struct {
	X     float64
	Class string
	Label string
	Title string
}

// newTimeline lays out h (oldest first) from its first point to now.
func newTimeline(h []Point, now time.Time) *timeline {
	const width, left, right = 960.0, 4.0, 4.0
	tl := &timeline{Width: width, Height: 90}
	if len(h) == 0 {
		return tl
	}
	from := h[0].At
	span := now.Sub(from)
	if span <= 0 {
		span = time.Second
	}
	x := func(t time.Time) float64 {
		return left + (width-left-right)*float64(t.Sub(from))/float64(span)
	}
	tl.From, tl.To = from.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)
	prevRev := ""
	for i, p := range h {
		end := now
		if i+1 < len(h) {
			end = h[i+1].At
		}
		x0, x1 := x(p.At), x(end)
		tl.Bands = append(tl.Bands, band{X: x0, W: max(x1-x0, 1), Class: p.State,
			Title: fmt.Sprintf("%s from %s: %s, applied %s", p.State, p.At.UTC().Format(time.RFC3339), summary(p.Counts), short(p.AppliedRevision))})
		cls := "ok"
		if p.ExitCode&4 != 0 || p.Failed > 0 {
			cls = "fail"
		} else if p.ExitCode&2 != 0 {
			cls = "change"
		}
		tl.Runs = append(tl.Runs, mark{X: x0, Class: cls, Title: fmt.Sprintf("%s %s (exit %d): %s", p.At.UTC().Format(time.RFC3339), p.Trigger, p.ExitCode, summary(p.Counts))})
		if p.AppliedRevision != prevRev && p.AppliedRevision != "" {
			label := short(p.AppliedRevision)
			if len(label) > 7 {
				label = label[:7]
			}
			tl.Revisions = append(tl.Revisions, mark{X: x0, Label: label, Title: "applied " + p.AppliedRevision})
			prevRev = p.AppliedRevision
		}
	}
	return tl
}

// summary says a run's counts in words.
func summary(c map[reconciler.Outcome]int) string {
	s := ""
	for _, o := range outcomes(c) {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", o.Nodes, o.Value)
	}
	if s == "" {
		return "no run"
	}
	return s
}
