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
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &Publisher{URL: url, MaxAttempts: 100}
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
