package status

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/gittest"
)

func TestPublisher_Publish(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	// The status branch lives next to the site's main branch.
	w := gittest.NewWork(t, srv.URL("site.git"))
	w.CommitAndPush("site", map[string]string{"sites/example/site.cue": "package site\n"})

	ctx := context.Background()
	p := &Publisher{URL: srv.URL("site.git")}
	n := &Node{Node: "db1", Role: "feature_store_online", AppliedRevision: "abc", Converged: true}
	if err := p.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	nodes, tip1, err := ReadFleet(ctx, srv.URL("site.git"), "", nil)
	if err != nil || len(nodes) != 1 || nodes[0].Node != "db1" || nodes[0].AppliedRevision != "abc" {
		t.Fatalf("fleet = %+v %v", nodes, err)
	}

	// The same document again: nothing to commit.
	if err := p.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, tip, _ := ReadFleet(ctx, srv.URL("site.git"), "", nil); tip != tip1 {
		t.Fatalf("republishing the same document moved the branch %s -> %s", tip1, tip)
	}

	n.Converged = false
	n.Failed = []Item{{ID: "file:/x", Reason: "denied"}}
	if err := p.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	c := gittest.Clone(t, srv.URL("site.git"))
	c.Git("fetch", "--quiet", "origin", "fsgit/status")
	if parent := c.Git("rev-parse", "FETCH_HEAD^"); parent != tip1 {
		t.Fatalf("new status commit's parent %s, want %s", parent, tip1)
	}
	body := c.Git("show", "FETCH_HEAD:nodes/db1.json")
	if !strings.Contains(body, `"denied"`) {
		t.Fatalf("nodes/db1.json:\n%s", body)
	}
	// The site branch is untouched.
	if got := c.Git("ls-tree", "--name-only", "origin/main"); got != "sites" {
		t.Fatalf("main's tree: %q", got)
	}
	if err := (&Publisher{URL: srv.URL("site.git")}).Publish(ctx, &Node{Node: "../x"}); err == nil {
		t.Fatal("bad node name accepted")
	}
}

func TestPublisher_ServerDown(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	srv.Stop()
	p := &Publisher{URL: srv.URL("status.git"), MaxAttempts: 3, BaseDelay: time.Millisecond}
	err := p.Publish(context.Background(), &Node{Node: "n1"})
	if !errors.Is(err, ErrPublishGaveUp) {
		t.Fatalf("err = %v, want ErrPublishGaveUp", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p.MaxAttempts, p.BaseDelay = 100, 10*time.Millisecond
	if err := p.Publish(ctx, &Node{Node: "n1"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}

// publishFleet publishes n nodes at once, each through its own Publisher,
// and returns how long until the last landed.
func publishFleet(tb testing.TB, url string, n int, round int) time.Duration {
	tb.Helper()
	return publishFleetLayout(tb, url, LayoutBranch, n, round)
}

// publishFleetLayout is publishFleet in either layout.
func publishFleetLayout(tb testing.TB, url, layout string, n int, round int) time.Duration {
	tb.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &Publisher{URL: url, Layout: layout, MaxAttempts: 100}
			node := &Node{Node: fmt.Sprintf("node%02d", i), AppliedRevision: strconv.Itoa(round), Converged: true}
			if err := p.Publish(context.Background(), node); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Error(err)
	}
	return time.Since(start)
}

func TestPublisher_FiftyAtOnce(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	const n = 50
	d := publishFleet(t, srv.URL("status.git"), n, 1)
	t.Logf("%d nodes landed in %v, %d pushes", n, d, srv.Stats().ReceivePacks)

	nodes, _, err := ReadFleet(context.Background(), srv.URL("status.git"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != n {
		t.Fatalf("%d nodes on the status branch, want %d", len(nodes), n)
	}
	for i, node := range nodes {
		if want := fmt.Sprintf("node%02d", i); node.Node != want || node.AppliedRevision != "1" {
			t.Fatalf("node %d = %+v", i, node)
		}
	}
	// Every document landed as its own commit, in one line of history.
	c := gittest.NewWork(t, srv.URL("status.git"))
	c.Git("fetch", "--quiet", "origin", "fsgit/status")
	if got := c.Git("rev-list", "--count", "FETCH_HEAD"); got != strconv.Itoa(n) {
		t.Fatalf("%s commits on the branch, want %d", got, n)
	}
	if merges := c.Git("rev-list", "--merges", "FETCH_HEAD"); merges != "" {
		t.Fatalf("merges on the status branch: %s", merges)
	}
}

// BenchmarkPublisher_FiftyAtOnce measures how long it takes until 50
// agents that publish at the same moment have all landed.
func BenchmarkPublisher_FiftyAtOnce(b *testing.B) {
	srv := gittest.NewServer(b)
	srv.NewRepo("status.git")
	round := 0
	var total time.Duration
	for b.Loop() {
		round++
		total += publishFleet(b, srv.URL("status.git"), 50, round)
	}
	b.ReportMetric(float64(srv.Stats().ReceivePacks)/float64(round)/50, "pushes/node")
	b.ReportMetric(total.Seconds()/float64(round), "s-all-landed")
}

// BenchmarkPublisher_RefsThousand: 1,000 nodes publish at the same moment
// in the refs layout (each its own ref); then the whole fleet is read, as
// fsgit status --fleet does.
func BenchmarkPublisher_RefsThousand(b *testing.B) {
	srv := gittest.NewServer(b)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	const n = 1000
	round := 0
	var landed, read time.Duration
	for b.Loop() {
		round++
		landed += publishFleetLayout(b, url, LayoutRefs, n, round)
		start := time.Now()
		nodes, _, err := ReadFleet(context.Background(), url, "", nil)
		read += time.Since(start)
		if err != nil || len(nodes) != n {
			b.Fatalf("read %d nodes: %v", len(nodes), err)
		}
	}
	b.ReportMetric(float64(srv.Stats().ReceivePacks)/float64(round)/n, "pushes/node")
	b.ReportMetric(landed.Seconds()/float64(round), "s-all-landed")
	b.ReportMetric(read.Seconds()/float64(round), "s-fleet-read")
	b.ReportMetric(float64(srv.Stats().BytesSent)/float64(round)/n, "server-bytes/node")
}

// TestPublisher_SSH publishes and reads the fleet over SSH.
func TestPublisher_SSH(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	key := gittest.NewSSHKey(t)
	sshd := gittest.NewSSHServer(t, srv.Root, key)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(sshd.KnownHosts+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	auth, err := gitsource.Credentials{SSHKeyFile: key.PrivateFile, KnownHostsFile: kh}.AuthMethod(sshd.URL("status.git"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{URL: sshd.URL("status.git"), Auth: auth, MaxAttempts: 1}
	if err := p.Publish(context.Background(), &Node{Node: "n1", Converged: true}); err != nil {
		t.Fatal(err)
	}
	nodes, _, err := ReadFleet(context.Background(), sshd.URL("status.git"), "", auth)
	if err != nil || len(nodes) != 1 || !nodes[0].Converged {
		t.Fatalf("fleet over ssh = %+v %v", nodes, err)
	}
}

// TestPublisher_RefsLayout: each node pushes its own ref, once, whatever
// the others do; the fleet reads back whole; a document already there
// pushes nothing; a new one continues the node's history.
func TestPublisher_RefsLayout(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &Publisher{URL: url, Layout: LayoutRefs, MaxAttempts: 3}
			if err := p.Publish(ctx, &Node{Node: fmt.Sprintf("node%02d", i), AppliedRevision: "r1", Converged: true}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := srv.Stats().ReceivePacks; got != n {
		t.Fatalf("%d pushes for %d nodes, want one each", got, n)
	}
	nodes, tip, err := ReadFleet(ctx, url, "", nil)
	if err != nil || len(nodes) != n || tip != "" {
		t.Fatalf("fleet: %d nodes, tip %q, %v", len(nodes), tip, err)
	}
	for i, node := range nodes {
		if want := fmt.Sprintf("node%02d", i); node.Node != want || node.AppliedRevision != "r1" || !node.Converged {
			t.Fatalf("node %d = %+v", i, node)
		}
	}

	p := &Publisher{URL: url, Layout: LayoutRefs}
	srv.ResetStats()
	if err := p.Publish(ctx, &Node{Node: "node00", AppliedRevision: "r1", Converged: true}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Stats().ReceivePacks; got != 0 {
		t.Fatalf("the same document again pushed %d times", got)
	}
	if err := p.Publish(ctx, &Node{Node: "node00", AppliedRevision: "r2"}); err != nil {
		t.Fatal(err)
	}
	c := gittest.NewWork(t, url)
	c.Git("fetch", "--quiet", "origin", "refs/fsgit/status/node00")
	if got := c.Git("rev-list", "--count", "FETCH_HEAD"); got != "2" {
		t.Fatalf("node00's ref has %s commits, want 2", got)
	}
	if got := c.Git("ls-tree", "-r", "--name-only", "FETCH_HEAD"); got != "nodes/node00.json" {
		t.Fatalf("node00's tree: %q", got)
	}
	if err := (&Publisher{URL: url, Layout: "sharded"}).Publish(ctx, &Node{Node: "x"}); err == nil || !strings.Contains(err.Error(), "sharded") {
		t.Fatalf("unknown layout: err = %v", err)
	}
	for _, bad := range []string{"a b", "x.lock", "a..b", "a:b", ".x", ""} {
		if err := p.Publish(ctx, &Node{Node: bad}); err == nil {
			t.Errorf("node name %q accepted", bad)
		}
	}
}

// TestPublisher_MigrateToRefs moves a fleet from the branch layout to the
// refs layout one node at a time: the fleet reads whole at every step, a
// node's ref continues the branch's history (nothing is lost, even once
// the branch is deleted), and the node's newer document wins.
func TestPublisher_MigrateToRefs(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if err := (&Publisher{URL: url}).Publish(ctx, &Node{Node: name, AppliedRevision: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	w := gittest.NewWork(t, url)
	w.Git("fetch", "--quiet", "origin", "fsgit/status")
	branchTip := w.Git("rev-parse", "FETCH_HEAD")

	if err := (&Publisher{URL: url, Layout: LayoutRefs}).Publish(ctx, &Node{Node: "a", AppliedRevision: "new"}); err != nil {
		t.Fatal(err)
	}
	nodes, tip, err := ReadFleet(ctx, url, "", nil)
	if err != nil || tip != branchTip || len(nodes) != 3 {
		t.Fatalf("fleet mid-migration: %+v, tip %s (branch %s), %v", nodes, tip, branchTip, err)
	}
	if got := []string{nodes[0].AppliedRevision, nodes[1].AppliedRevision, nodes[2].AppliedRevision}; strings.Join(got, ",") != "new,old,old" {
		t.Fatalf("revisions mid-migration: %v", got)
	}
	w.Git("fetch", "--quiet", "origin", "refs/fsgit/status/a")
	if got := w.Git("rev-parse", "FETCH_HEAD^"); got != branchTip {
		t.Fatalf("a's first ref commit has parent %s, want the branch's tip %s", got, branchTip)
	}
	if got := w.Git("rev-list", "--count", "FETCH_HEAD"); got != "4" {
		t.Fatalf("a's ref reaches %s commits, want the branch's 3 and its own", got)
	}
	if body := w.Git("show", "FETCH_HEAD~3:nodes/a.json"); !strings.Contains(body, `"old"`) {
		t.Fatalf("a's first document, through its ref's history:\n%s", body)
	}

	// The others move too; the branch can then go, and nothing is lost.
	for _, name := range []string{"b", "c"} {
		if err := (&Publisher{URL: url, Layout: LayoutRefs}).Publish(ctx, &Node{Node: name, AppliedRevision: "new"}); err != nil {
			t.Fatal(err)
		}
	}
	w.Git("push", "--quiet", "origin", ":refs/heads/fsgit/status")
	nodes, tip, err = ReadFleet(ctx, url, "", nil)
	if err != nil || tip != "" || len(nodes) != 3 {
		t.Fatalf("fleet after the branch went: %+v, tip %q, %v", nodes, tip, err)
	}
	for _, n := range nodes {
		if n.AppliedRevision != "new" {
			t.Fatalf("%s = %+v", n.Node, n)
		}
	}
	w.Git("fetch", "--quiet", "origin", "refs/fsgit/status/c")
	if got := w.Git("log", "--format=%s", "FETCH_HEAD"); got != "status: c\nstatus: c\nstatus: b\nstatus: a" {
		t.Fatalf("c's history:\n%s", got)
	}
}

// TestReadFleet_BadRef: a node ref without its document is shown as
// unreadable, not left out.
func TestReadFleet_BadRef(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	w := gittest.NewWork(t, url)
	w.CommitAndPush("not status", map[string]string{"x": "y\n"})
	w.Git("push", "--quiet", "origin", "HEAD:refs/fsgit/status/n1")
	nodes, _, err := ReadFleet(context.Background(), url, "", nil)
	if err == nil || len(nodes) != 1 || nodes[0].Node != "n1" || nodes[0].Unreadable == "" {
		t.Fatalf("fleet = %+v, %v", nodes, err)
	}
}

// BenchmarkReadFleet_Refs1000 reads 1,000 nodes in the refs layout over
// HTTP, as fsgit status --fleet does. The refs are made in one git
// fast-import, the documents by Marshal.
func BenchmarkReadFleet_Refs1000(b *testing.B) {
	srv := gittest.NewServer(b)
	dir := srv.NewRepo("status.git")
	const n = 1000
	var in strings.Builder
	for i := range n {
		name := fmt.Sprintf("node%04d", i)
		doc, err := (&Node{Node: name, AppliedRevision: "0123456789abcdef0123456789abcdef01234567", Converged: true,
			Source: Source{Reachable: true}, Updated: time.Now().UTC()}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		msg := "status: " + name
		fmt.Fprintf(&in, "commit %s\ncommitter fsgit <fsgit@%s> 1700000000 +0000\ndata %d\n%s\nM 100644 inline nodes/%s.json\ndata %d\n%s\n",
			NodeRef("", name), name, len(msg), msg, name, len(doc), doc)
	}
	gittest.NewWork(b, srv.URL("status.git")).GitStdin(in.String(), "--git-dir="+dir, "fast-import", "--quiet")
	for b.Loop() {
		nodes, _, err := ReadFleet(context.Background(), srv.URL("status.git"), "", nil)
		if err != nil || len(nodes) != n {
			b.Fatalf("read %d nodes: %v", len(nodes), err)
		}
	}
	b.ReportMetric(float64(srv.Stats().BytesSent)/float64(b.N), "server-bytes/read")
}

// TestPublisher_RefsPushOnLast: in the refs layout a publisher pushes on
// top of the commit it pushed last, without fetching (two requests: the
// push's listing and the push); when the ref moved, was rewound or went
// behind its back, the push is refused and it fetches, so the ref still
// holds one document, the newest, and keeps its history.
func TestPublisher_RefsPushOnLast(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("status.git")
	url := srv.URL("status.git")
	ctx := context.Background()
	ref := "refs/fsgit/status/db1"
	w := gittest.NewWork(t, url)
	tipOf := func() string {
		t.Helper()
		w.Git("fetch", "--quiet", "origin", "+"+ref+":refs/check")
		return w.Git("rev-parse", "refs/check")
	}
	landed := func(rev string) {
		t.Helper()
		nodes, _, err := ReadFleet(ctx, url, "", nil)
		if err != nil || len(nodes) != 1 || nodes[0].Node != "db1" || nodes[0].AppliedRevision != rev {
			t.Fatalf("fleet = %+v, %v; want db1 at %s alone", nodes, err, rev)
		}
		if got := w.Git("ls-tree", "-r", "--name-only", tipOf()); got != "nodes/db1.json" {
			t.Fatalf("db1's tree: %q", got)
		}
	}
	p := &Publisher{URL: url, Layout: LayoutRefs}
	publish := func(pub *Publisher, rev string) gittest.Stats {
		t.Helper()
		srv.ResetStats()
		if err := pub.Publish(ctx, &Node{Node: "db1", AppliedRevision: rev}); err != nil {
			t.Fatal(err)
		}
		return srv.Stats()
	}

	// Nothing remembered: fetch (listing, listing of the branch) and push.
	if st := publish(p, "r1"); st.ReceivePacks != 1 || st.Requests < 3 {
		t.Fatalf("first publish: %+v", st)
	}
	first := tipOf()
	// Remembered: the push alone.
	if st := publish(p, "r2"); st.Requests != 2 || st.ReceivePacks != 1 || st.UploadPacks != 0 {
		t.Fatalf("publish on the last push: %+v, want 2 requests, 1 push, no fetch", st)
	}
	landed("r2")
	if got := w.Git("rev-parse", tipOf()+"^"); got != first {
		t.Fatalf("r2's parent %s, want r1's %s", got, first)
	}

	// Another writer moved the ref: p's push is refused, p fetches and
	// builds on the other's commit.
	if st := publish(&Publisher{URL: url, Layout: LayoutRefs}, "other"); st.ReceivePacks != 1 {
		t.Fatalf("other writer: %+v", st)
	}
	other := tipOf()
	if st := publish(p, "r3"); st.ReceivePacks != 1 || st.UploadPacks != 1 {
		t.Fatalf("publish after the ref moved: %+v, want a fetch and one push", st)
	}
	landed("r3")
	if got := w.Git("rev-parse", tipOf()+"^"); got != other {
		t.Fatalf("r3's parent %s, want the other writer's %s", got, other)
	}
	if got := w.Git("rev-list", "--count", tipOf()); got != "4" {
		t.Fatalf("db1's ref has %s commits, want 4", got)
	}
	// Back on the fast path.
	if st := publish(p, "r4"); st.Requests != 2 || st.ReceivePacks != 1 {
		t.Fatalf("publish after the fallback: %+v, want 2 requests", st)
	}
	landed("r4")

	// Rewound behind its back (to r1): the history from r1 on is kept.
	w.Git("push", "--quiet", "--force", "origin", first+":"+ref)
	if st := publish(p, "r5"); st.ReceivePacks != 1 || st.UploadPacks != 1 {
		t.Fatalf("publish after a rewind: %+v, want a fetch and one push", st)
	}
	landed("r5")
	if got := w.Git("rev-parse", tipOf()+"^"); got != first {
		t.Fatalf("r5's parent %s, want r1's %s", got, first)
	}

	// Deleted behind its back: the document lands again.
	w.Git("push", "--quiet", "origin", ":"+ref)
	if st := publish(p, "r6"); st.ReceivePacks != 1 {
		t.Fatalf("publish after the ref went: %+v, want one push", st)
	}
	landed("r6")

	// The same document as the last push: nothing pushed.
	if st := publish(p, "r6"); st.ReceivePacks != 0 {
		t.Fatalf("the same document again: %+v, want no push", st)
	}
	landed("r6")
}

// BenchmarkPublisher_RefsRepublish: one node publishes a new document in
// the refs layout, as after every change of outcome. "fetch-first" is a
// publisher that remembers nothing (an agent's first publish after it
// starts, and every publish before publishers remembered their last push):
// it fetches its ref, then pushes. "push-on-last" is one that pushed last
// time and pushes on that commit without fetching. It reports requests
// per publish and the CPU time (user and system) the server's git
// processes (git http-backend and what it starts) and this process (the
// publisher and the Go HTTP server) spent per publish.
func BenchmarkPublisher_RefsRepublish(b *testing.B) {
	for _, mode := range []string{"fetch-first", "push-on-last"} {
		b.Run(mode, func(b *testing.B) {
			srv := gittest.NewServer(b)
			srv.NewRepo("status.git")
			url := srv.URL("status.git")
			ctx := context.Background()
			p := &Publisher{URL: url, Layout: LayoutRefs}
			if err := p.Publish(ctx, &Node{Node: "db1", AppliedRevision: "r0"}); err != nil {
				b.Fatal(err)
			}
			srv.ResetStats()
			self0, kids0 := cpuTimes()
			i := 0
			for b.Loop() {
				i++
				if mode == "fetch-first" {
					p = &Publisher{URL: url, Layout: LayoutRefs}
				}
				if err := p.Publish(ctx, &Node{Node: "db1", AppliedRevision: strconv.Itoa(i)}); err != nil {
					b.Fatal(err)
				}
			}
			self1, kids1 := cpuTimes()
			st := srv.Stats()
			if st.ReceivePacks != int64(i) {
				b.Fatalf("%d pushes for %d publishes", st.ReceivePacks, i)
			}
			b.ReportMetric(float64(st.Requests)/float64(i), "requests/op")
			b.ReportMetric(float64(kids1-kids0)/float64(time.Millisecond)/float64(i), "git-cpu-ms/op")
			b.ReportMetric(float64(self1-self0)/float64(time.Millisecond)/float64(i), "go-cpu-ms/op")
		})
	}
}

// cpuTimes returns the CPU time (user and system) of this process and of
// its children waited for.
func cpuTimes() (self, children time.Duration) {
	var s, c syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	return time.Duration(s.Utime.Nano() + s.Stime.Nano()), time.Duration(c.Utime.Nano() + c.Stime.Nano())
}
