package web

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/status"
)

// publishLayout publishes docs in layout, as agents configured so do.
func publishLayout(t testing.TB, url, layout string, docs ...*status.Node) {
	t.Helper()
	p := &status.Publisher{URL: url, Layout: layout, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
	for _, n := range docs {
		if err := p.Publish(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

// fleetRevisions lists the fleet page's rows as node=appliedRevision.
func fleetRevisions(f *Fleet) string {
	var out []string
	for _, r := range f.Rows {
		out = append(out, r.Node+"="+r.AppliedRevision)
	}
	return strings.Join(out, " ")
}

// historyRevisions lists a node page's history, oldest first.
func historyRevisions(np *NodePage) string {
	var out []string
	for _, p := range np.History {
		out = append(out, p.AppliedRevision)
	}
	return strings.Join(out, ",")
}

// TestServe_refsLayout serves a fleet whose nodes publish to refs of their
// own: every node is shown, with its history from its ref; an idle poll
// lists the refs and fetches nothing; a push to one node's ref alone is
// read at the next poll.
func TestServe_refsLayout(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("status.git")
	url := gs.URL("status.git")
	now := time.Now().UTC().Truncate(time.Second)
	for _, rev := range []string{rev1, rev2} {
		for _, node := range []string{"db-1", "db-2", "vector-1"} {
			publishLayout(t, url, status.LayoutRefs, &status.Node{Node: node, Role: "online", AppliedRevision: rev,
				DesiredRevision: rev2, Converged: rev == rev2, Source: status.Source{Reachable: true}, Updated: now})
		}
	}
	srv, hs := newTestServer(t, url, Options{})
	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if want := "db-1=" + rev2 + " db-2=" + rev2 + " vector-1=" + rev2; fleetRevisions(&f) != want || f.Total != 3 || f.Branch.PollError != "" {
		t.Fatalf("fleet in the refs layout: %s (%+v), want %s", fleetRevisions(&f), f.Branch, want)
	}
	if f.Branch.NodeRefs != 3 || f.Branch.Tip != "" {
		t.Errorf("fleet in the refs layout: %+v, want 3 node refs and no branch", f.Branch)
	}
	if _, body := get(t, hs.URL+"/"); !strings.Contains(body, "3 node refs") || strings.Contains(body, "no node has published yet") {
		t.Errorf("the fleet page does not say it read 3 node refs:\n%s", grep(body, "Status branch"))
	}
	var np NodePage
	getJSON(t, hs.URL+"/node/db-2?format=json", &np)
	if got := historyRevisions(&np); got != rev1+","+rev2 {
		t.Fatalf("db-2's history: %s, want its two documents, oldest first", got)
	}
	for _, p := range np.History {
		if len(p.Commit) != 40 || p.At.IsZero() {
			t.Errorf("db-2's history: %+v lacks its commit or time", p)
		}
	}
	if code, body := get(t, hs.URL+"/node/db-2"); code != http.StatusOK || !strings.Contains(body, rev1[:12]) {
		t.Errorf("db-2's page: %d, its history does not show %s", code, rev1[:12])
	}

	// Nothing moved: one listing, no fetch, no read.
	before := gs.Stats()
	srv.Poll(context.Background())
	after := gs.Stats()
	if after.UploadPacks != before.UploadPacks || after.Requests != before.Requests+1 {
		t.Errorf("an idle poll: %d fetches and %d requests, want none and one listing",
			after.UploadPacks-before.UploadPacks, after.Requests-before.Requests)
	}
	if _, body := get(t, hs.URL+"/metrics"); !strings.Contains(body, `fsgit_serve_polls_total{result="unchanged"} 1`) {
		t.Errorf("an idle poll is not counted unchanged:\n%s", grep(body, "polls_total"))
	}

	// One node's ref moved: read again.
	publishLayout(t, url, status.LayoutRefs, &status.Node{Node: "db-1", Role: "online", AppliedRevision: rev3, DesiredRevision: rev3, Updated: now})
	before = gs.Stats()
	srv.Poll(context.Background())
	if after := gs.Stats(); after.UploadPacks != before.UploadPacks+1 {
		t.Errorf("a poll after a push fetched %d times, want once", after.UploadPacks-before.UploadPacks)
	}
	getJSON(t, hs.URL+"/?format=json", &f)
	if want := "db-1=" + rev3 + " db-2=" + rev2 + " vector-1=" + rev2; fleetRevisions(&f) != want {
		t.Fatalf("after db-1 published: %s, want %s", fleetRevisions(&f), want)
	}
	getJSON(t, hs.URL+"/node/db-1?format=json", &np)
	if got := historyRevisions(&np); got != rev1+","+rev2+","+rev3 {
		t.Fatalf("db-1's history after a push: %s", got)
	}
}

// TestServe_migratingToRefs serves a fleet moving from the status branch
// to refs, one node at a time: every node is shown, a node's ref wins over
// its old document on the branch, and a migrated node's history runs from
// its ref into the branch's.
func TestServe_migratingToRefs(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("status.git")
	url := gs.URL("status.git")
	doc := func(node, rev string) *status.Node {
		return &status.Node{Node: node, Role: "online", AppliedRevision: rev, Updated: time.Now().UTC()}
	}
	publishLayout(t, url, status.LayoutBranch, doc("a", rev1), doc("b", rev1), doc("c", rev1), doc("a", rev2))
	publishLayout(t, url, status.LayoutRefs, doc("a", rev3), doc("c", rev2))
	w := gittest.NewWork(t, url)
	branchTip := strings.Fields(w.Git("ls-remote", "origin", "refs/heads/"+status.DefaultBranch))[0]

	_, hs := newTestServer(t, url, Options{})
	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if want := "a=" + rev3 + " b=" + rev1 + " c=" + rev2; fleetRevisions(&f) != want {
		t.Fatalf("fleet mid-migration: %s, want %s", fleetRevisions(&f), want)
	}
	if f.Branch.Tip != branchTip {
		t.Errorf("fleet mid-migration: tip %q, want the branch's %s", f.Branch.Tip, branchTip)
	}
	for node, want := range map[string]string{"a": rev1 + "," + rev2 + "," + rev3, "b": rev1, "c": rev1 + "," + rev2} {
		var np NodePage
		getJSON(t, hs.URL+"/node/"+node+"?format=json", &np)
		if got := historyRevisions(&np); got != want {
			t.Errorf("%s's history: %s, want %s", node, got, want)
		}
	}
}

// BenchmarkServe_refs1000 reads 1,000 nodes in the refs layout, three
// documents each (made in one git fast-import), into a new server: the
// first read, history included; it reports what an idle poll then costs
// the git server.
func BenchmarkServe_refs1000(b *testing.B) {
	gs := gittest.NewServer(b)
	dir := gs.NewRepo("status.git")
	url := gs.URL("status.git")
	const nodes, versions = 1000, 3
	var in strings.Builder
	for i := range nodes {
		name := fmt.Sprintf("node%04d", i)
		for v := range versions {
			doc, err := (&status.Node{Node: name, AppliedRevision: fmt.Sprintf("%040d", v), Converged: true,
				Source: status.Source{Reachable: true}, Updated: time.Now().UTC()}).Marshal()
			if err != nil {
				b.Fatal(err)
			}
			msg := "status: " + name
			fmt.Fprintf(&in, "commit %s\ncommitter fsgit <fsgit@%s> %d +0000\ndata %d\n%s\nM 100644 inline nodes/%s.json\ndata %d\n%s\n",
				status.NodeRef("", name), name, 1700000000+v, len(msg), msg, name, len(doc), doc)
		}
	}
	gittest.NewWork(b, url).GitStdin(in.String(), "--git-dir="+dir, "fast-import", "--quiet")
	var srv *Server
	for b.Loop() {
		var err error
		srv, err = New(Options{URL: url, CacheDir: filepath.Join(b.TempDir(), "cache")})
		if err != nil {
			b.Fatal(err)
		}
		srv.Poll(context.Background())
	}
	snap, br := srv.state()
	if br.PollError != "" || len(snap.Nodes) != nodes || len(snap.History["node0999"]) != versions {
		b.Fatalf("read %d nodes, %d versions of node0999: %s", len(snap.Nodes), len(snap.History["node0999"]), br.PollError)
	}
	before := gs.Stats()
	srv.Poll(context.Background())
	after := gs.Stats()
	b.ReportMetric(float64(after.BytesSent-before.BytesSent), "idle-poll-bytes")
	b.ReportMetric(float64(after.UploadPacks-before.UploadPacks), "idle-poll-fetches")
}
