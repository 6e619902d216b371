package status

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/jsondoc"
)

// CheckTip sets TipAge to the age of the tip's commit at now, and Frozen
// to why the source looks frozen when that age passes MaxTipAge ("" when
// it does not, when no threshold is set, or when the tip's time is
// unknown). Readers call it again with their own now: a document is as old
// as its Updated.
func (s *Source) CheckTip(now time.Time) {
	s.TipAge, s.Frozen = 0, ""
	if s.TipTime.IsZero() {
		return
	}
	age := max(now.Sub(s.TipTime).Truncate(time.Second), 0)
	s.TipAge = jsondoc.Seconds(age)
	if s.MaxTipAge <= 0 || age <= s.MaxTipAge.D() {
		return
	}
	s.Frozen = fmt.Sprintf("the source %s (branch %s) has served commit %s, committed at %s, for %s: "+
		"more than maxTipAge %s; the mirror may be frozen (or nothing was committed since): "+
		"compare it with the main repository, and see docs/operating.md",
		gitsource.RedactURL(s.URL), orNone(s.Branch), shortHash(s.Tip), s.TipTime.UTC().Format(time.RFC3339),
		age, s.MaxTipAge.D())
}

// TipLag compares one node's source tip with the other nodes' that follow
// the same site and branch (see [CompareTips]).
type TipLag struct {
	// Newest is the newest tip of those nodes (by commit time), NewestNode
	// a node that reports it (the first by name), NewestTime its commit
	// time.
	Newest     string    `json:"newest"`
	NewestNode string    `json:"newestNode"`
	NewestTime time.Time `json:"newestTime,omitzero"`
	// Majority is the tip most of those nodes report (on a tie, the
	// newer); Minority is set when this node's tip is another.
	Majority string `json:"majority"`
	Minority bool   `json:"minority,omitempty"`
	// Behind is how much older this node's tip is than Newest; unset on
	// the newest.
	Behind jsondoc.Seconds `json:"behind,omitzero"`
	// MaxLag is the threshold it was held to (unset: none), and Reason
	// says why the node looks stuck when Behind passes it.
	MaxLag jsondoc.Seconds `json:"maxLag,omitzero"`
	Reason string          `json:"reason,omitempty"`
}

// CompareTips compares the source tips of nodes, among those that follow
// the same site and branch: which tip is the newest and which the most
// reported, and how far behind the newest each node's tip is. A node whose
// tip is behind by more than maxLag (when zero, the node's own maxTipAge;
// when that is unset too, no threshold) gets a Reason: on a fleet where
// nodes poll different mirrors, that is how one node on a frozen mirror
// stands out while the others move on. Nodes without a tip time (an agent
// from before tips were reported, an unreadable document) are left out of
// the map.
func CompareTips(nodes []Node, maxLag time.Duration) map[string]TipLag {
	type group struct {
		newest *Node
		counts map[string]int
		times  map[string]time.Time
	}
	groups := map[[2]string]*group{}
	for i := range nodes {
		n := &nodes[i]
		if n.Unreadable != "" || n.Source.TipTime.IsZero() || n.Source.Tip == "" {
			continue
		}
		k := [2]string{n.Site, n.Source.Branch}
		g := groups[k]
		if g == nil {
			g = &group{counts: map[string]int{}, times: map[string]time.Time{}}
			groups[k] = g
		}
		g.counts[n.Source.Tip]++
		g.times[n.Source.Tip] = n.Source.TipTime
		if g.newest == nil || n.Source.TipTime.After(g.newest.Source.TipTime) ||
			n.Source.TipTime.Equal(g.newest.Source.TipTime) && n.Node < g.newest.Node {
			g.newest = n
		}
	}
	out := map[string]TipLag{}
	for i := range nodes {
		n := &nodes[i]
		if n.Unreadable != "" || n.Source.TipTime.IsZero() || n.Source.Tip == "" {
			continue
		}
		g := groups[[2]string{n.Site, n.Source.Branch}]
		majority := ""
		for _, tip := range slices.Sorted(maps.Keys(g.counts)) {
			if majority == "" || g.counts[tip] > g.counts[majority] ||
				g.counts[tip] == g.counts[majority] && g.times[tip].After(g.times[majority]) {
				majority = tip
			}
		}
		l := TipLag{Newest: g.newest.Source.Tip, NewestNode: g.newest.Node, NewestTime: g.newest.Source.TipTime,
			Majority: majority, Minority: n.Source.Tip != majority,
			Behind: jsondoc.Seconds(max(g.newest.Source.TipTime.Sub(n.Source.TipTime), 0))}
		l.MaxLag = jsondoc.Seconds(cmp.Or(maxLag, n.Source.MaxTipAge.D()))
		if l.MaxLag > 0 && l.Behind > l.MaxLag {
			l.Reason = fmt.Sprintf("its source tip %s (committed at %s, from %s) is %s older than %s on %s, more than %s: "+
				"its mirror may be frozen while the others move on",
				shortHash(n.Source.Tip), n.Source.TipTime.UTC().Format(time.RFC3339), gitsource.RedactURL(n.Source.URL),
				l.Behind.D(), shortHash(l.Newest), l.NewestNode, l.MaxLag.D())
		}
		out[n.Node] = l
	}
	return out
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return orNone(h)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
