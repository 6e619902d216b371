package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
)

// TestSource_CheckTip: the tip's age is measured at the reader's now, and
// the source looks frozen only past maxTipAge, with a reason that names
// the mirror (its password redacted), the commit and the age.
func TestSource_CheckTip(t *testing.T) {
	committed := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	s := Source{URL: "https://fsgit:hunter2@mirror-2.example.org/site.git", Branch: "main",
		Tip: "3f2a9c1d0b7e44d1a0c5b0e1f2a3b4c5d6e7f809", TipTime: committed, MaxTipAge: jsondoc.Seconds(24 * time.Hour)}

	s.CheckTip(committed.Add(23*time.Hour + 500*time.Millisecond))
	if s.Frozen != "" || s.TipAge.D() != 23*time.Hour {
		t.Fatalf("at 23h: age %s, frozen %q", s.TipAge, s.Frozen)
	}
	s.CheckTip(committed.Add(26 * time.Hour))
	for _, want := range []string{"https://fsgit:[redacted]@mirror-2.example.org/site.git", "branch main", "3f2a9c1d0b7e,",
		"committed at 2026-12-06T10:00:00Z", "for 26h0m0s", "maxTipAge 24h0m0s", "frozen"} {
		if !strings.Contains(s.Frozen, want) {
			t.Errorf("frozen reason %q does not say %q", s.Frozen, want)
		}
	}
	if strings.Contains(s.Frozen, "hunter2") {
		t.Fatalf("the reason shows the password: %s", s.Frozen)
	}
	// The mirror caught up.
	s.TipTime = committed.Add(25 * time.Hour)
	s.CheckTip(committed.Add(26 * time.Hour))
	if s.Frozen != "" || s.TipAge.D() != time.Hour {
		t.Fatalf("caught up: age %s, frozen %q", s.TipAge, s.Frozen)
	}
	// No threshold: the age, never frozen; no tip time: neither.
	s.MaxTipAge = 0
	s.CheckTip(committed.Add(1000 * time.Hour))
	if s.Frozen != "" || s.TipAge == 0 {
		t.Fatalf("without maxTipAge: age %s, frozen %q", s.TipAge, s.Frozen)
	}
	s = Source{MaxTipAge: jsondoc.Seconds(time.Hour)}
	s.CheckTip(committed)
	if s.Frozen != "" || s.TipAge != 0 {
		t.Fatalf("without a tip: age %s, frozen %q", s.TipAge, s.Frozen)
	}
}

// TestCompareTips: three nodes on one branch, one of them on a mirror
// that stopped a day ago: it is behind the newest tip, not on the
// majority's, and past the threshold; the others are not. A node on
// another branch is compared with its own kind only, and a node without a
// tip time is left out.
func TestCompareTips(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	node := func(name, branch, tip string, ago time.Duration, maxTipAge time.Duration) Node {
		n := Node{Node: name, Site: "prod", Source: Source{URL: "https://" + name + "-mirror.example.org/site.git", Branch: branch,
			Tip: tip, MaxTipAge: jsondoc.Seconds(maxTipAge)}}
		if ago >= 0 {
			n.Source.TipTime = now.Add(-ago)
		}
		return n
	}
	nodes := []Node{
		node("db1", "main", "new", 10*time.Minute, 0),
		node("db2", "main", "new", 10*time.Minute, 0),
		node("db3", "main", "old", 26*time.Hour, 24*time.Hour),
		node("canary", "next", "other", 30*time.Hour, 0),
		node("legacy", "main", "", -1, 0),
	}
	lags := CompareTips(nodes, 0)
	if _, ok := lags["legacy"]; ok || len(lags) != 4 {
		t.Fatalf("compared %d nodes (legacy: %v)", len(lags), lags["legacy"])
	}
	db3 := lags["db3"]
	if db3.Newest != "new" || db3.NewestNode != "db1" || db3.Majority != "new" || !db3.Minority ||
		db3.Behind.D() != 25*time.Hour+50*time.Minute || db3.MaxLag.D() != 24*time.Hour {
		t.Fatalf("db3: %+v", db3)
	}
	for _, want := range []string{"old", "db1", "25h50m0s older", "https://db3-mirror.example.org/site.git", "frozen"} {
		if !strings.Contains(db3.Reason, want) {
			t.Errorf("db3's reason %q does not say %q", db3.Reason, want)
		}
	}
	if l := lags["db2"]; l.Minority || l.Behind != 0 || l.Reason != "" {
		t.Fatalf("db2, on the newest tip: %+v", l)
	}
	// canary follows another branch: alone there, on its own newest tip.
	if l := lags["canary"]; l.Newest != "other" || l.Behind != 0 || l.Reason != "" {
		t.Fatalf("canary: %+v", l)
	}
	// A threshold given by the reader applies to every node; db1 and db2,
	// without maxTipAge, are held to it too (and are not behind).
	lags = CompareTips(nodes, time.Hour)
	if l := lags["db3"]; l.MaxLag.D() != time.Hour || l.Reason == "" {
		t.Fatalf("db3 with a lag of 1h: %+v", l)
	}
	if l := lags["db1"]; l.MaxLag.D() != time.Hour || l.Reason != "" {
		t.Fatalf("db1 with a lag of 1h: %+v", l)
	}
	// Within the threshold: reported, not flagged.
	lags = CompareTips(nodes, 48*time.Hour)
	if l := lags["db3"]; l.Reason != "" || l.Behind == 0 {
		t.Fatalf("db3 within 48h: %+v", l)
	}
}

// TestNode_tipFieldsReadBack: the tip fields of a published document read
// back, in seconds and RFC 3339, unset ones left out; the fingerprint
// changes when the source starts to look frozen, not as its tip ages.
func TestNode_tipFieldsReadBack(t *testing.T) {
	committed := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	n := &Node{Node: "db3", Source: Source{URL: "https://mirror.example.org/site.git", Branch: "main", Reachable: true,
		Tip: "abc", TipTime: committed, TipSeen: committed.Add(time.Minute), MaxTipAge: jsondoc.Seconds(24 * time.Hour)}}
	n.Source.CheckTip(committed.Add(90 * time.Minute))
	fresh := n.Fingerprint()
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Source map[string]any `json:"source"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Source["tipAge"] != 5400.0 || raw.Source["maxTipAge"] != 86400.0 || raw.Source["tipTime"] != "2026-12-06T10:00:00Z" {
		t.Fatalf("source as published: %v", raw.Source)
	}
	if _, ok := raw.Source["frozen"]; ok {
		t.Fatalf("frozen shown while it is not: %v", raw.Source)
	}
	n.Source.CheckTip(committed.Add(2 * time.Hour))
	if n.Fingerprint() != fresh {
		t.Fatal("the fingerprint changed with the tip's age alone")
	}
	n.Source.CheckTip(committed.Add(25 * time.Hour))
	if n.Fingerprint() == fresh {
		t.Fatal("the fingerprint did not change when the source started to look frozen")
	}
	b, _ = n.Marshal()
	back, err := Decode(b)
	if err != nil || back.Source != n.Source {
		t.Fatalf("read back %+v, %v\nwant %+v", back.Source, err, n.Source)
	}
}
