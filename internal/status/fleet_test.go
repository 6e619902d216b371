package status

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/gittest"
)

// revisions lists the applied revisions of versions, newest first.
func revisions(vs []Version) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Node.AppliedRevision)
	}
	return strings.Join(out, ",")
}

// TestReader_History reads a fleet moving from the branch layout to the
// refs layout: a migrated node's history runs from its ref into the
// branch's; a node still on the branch has its history there; a listing
// with nothing moved has the fingerprint of the read; a cache compacted
// after every fetch still reads the same.
func TestReader_History(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	ctx := context.Background()
	publish := func(layout, node, rev string) {
		t.Helper()
		if err := (&Publisher{URL: url, Layout: layout}).Publish(ctx, &Node{Node: node, AppliedRevision: rev}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReader(ReaderConfig{URL: url, History: 10, CacheDir: filepath.Join(t.TempDir(), "cache"), CacheMaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := r.List(ctx)
	if err != nil || !refs.Empty() {
		t.Fatalf("an empty repository lists %+v, %v", refs, err)
	}
	if f, err := r.Read(ctx, refs); err != nil || len(f.Nodes) != 0 {
		t.Fatalf("an empty repository reads %+v, %v", f, err)
	}

	publish(LayoutBranch, "a", "a1")
	publish(LayoutBranch, "b", "b1")
	publish(LayoutBranch, "a", "a2")
	publish(LayoutRefs, "a", "a3")
	publish(LayoutRefs, "a", "a4")
	publish(LayoutRefs, "c", "c1")
	for round := range 2 {
		refs, err := r.List(ctx)
		if err != nil || refs.Branch == "" || len(refs.Nodes) != 2 {
			t.Fatalf("round %d: listed %+v, %v", round, refs, err)
		}
		f, err := r.Read(ctx, refs)
		if err != nil || f.Unreadable != nil {
			t.Fatalf("round %d: %v, %v", round, err, f.Unreadable)
		}
		if f.Refs.Fingerprint() != refs.Fingerprint() || f.Tip != refs.Branch {
			t.Errorf("round %d: read %+v, listed %+v", round, f.Refs, refs)
		}
		var got []string
		for _, n := range f.Nodes {
			got = append(got, n.Node+"="+n.AppliedRevision)
		}
		if strings.Join(got, " ") != "a=a4 b=b1 c=c1" {
			t.Errorf("round %d: nodes %v, want a's ref to win over the branch", round, got)
		}
		for node, want := range map[string]string{"a": "a4,a3,a2,a1", "b": "b1", "c": "c1"} {
			if got := revisions(f.History[node]); got != want {
				t.Errorf("round %d: history of %s: %s, want %s", round, node, got, want)
			}
		}
		for _, v := range f.History["a"] {
			if len(v.Commit) != 40 || v.When.IsZero() {
				t.Errorf("round %d: version %+v lacks its commit or time", round, v)
			}
		}
	}

	// The history stops at History commits.
	short, err := NewReader(ReaderConfig{URL: url, History: 2})
	if err != nil {
		t.Fatal(err)
	}
	refs, err = short.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := short.Read(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	if got := revisions(f.History["a"]); got != "a4,a3" {
		t.Errorf("history of a with 2 commits: %s", got)
	}

	// A push moves the fingerprint; a node's ref alone does.
	before := refs.Fingerprint()
	publish(LayoutRefs, "c", "c2")
	if refs, err := r.List(ctx); err != nil || refs.Fingerprint() == before {
		t.Errorf("a pushed ref leaves the fingerprint as it was: %+v, %v", refs, err)
	}
}
