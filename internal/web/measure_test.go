package web

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// TestMeasure_thousandNodes prints figures, asserts none: the built fsgit
// serve over a status branch of 1,000 node documents and 500 commits of
// history (made with git fast-import, served by git http-backend): the
// time of its first read, each page's time, and its memory.
//
//	FSGIT_SERVE_MEASURE=1 go test -count=1 -run TestMeasure -v ./internal/web/
func TestMeasure_thousandNodes(t *testing.T) {
	if os.Getenv("FSGIT_SERVE_MEASURE") == "" {
		t.Skip("set FSGIT_SERVE_MEASURE=1 to measure fsgit serve over 1,000 nodes")
	}
	const nodes, history = 1000, 500
	gs := gittest.NewServer(t)
	repo := gs.NewRepo("site.git")
	start := time.Now()
	revs := generateBranch(t, repo, nodes, history)
	t.Logf("generated %d documents and %d commits in %v", nodes, history+1, time.Since(start).Round(time.Millisecond))

	bin := filepath.Join(t.TempDir(), "fsgit")
	build := exec.Command("go", "build", "-o", bin, "github.com/fsgit/fsgit/cmd/fsgit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fsgit: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "--repo", gs.URL("site.git"), "--listen", addr, "--history", fmt.Sprint(history))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("fsgit serve did not read the branch in 2 minutes:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("start to first read (healthz OK): %v", time.Since(start).Round(time.Millisecond))
	t.Logf("fsgit serve: %s", grep(logs.String(), "status read"))
	t.Logf("RSS after the first read: %s", rss(t, cmd.Process.Pid))

	for _, p := range []string{"/", "/?format=json", "/?state=failing", "/?role=online", "/node/node-0007", "/node/node-0007?format=json",
		"/revision/" + revs[0], "/revision/" + revs[0] + "?format=json", "/metrics"} {
		var times []time.Duration
		size := 0
		for range 20 {
			s := time.Now()
			code, body := get(t, base+p)
			times = append(times, time.Since(s))
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d", p, code)
			}
			size = len(body)
		}
		slices.Sort(times)
		t.Logf("GET %-58s %7d bytes  median %8v  p90 %8v  max %8v", p, size, times[10].Round(10*time.Microsecond),
			times[18].Round(10*time.Microsecond), times[19].Round(10*time.Microsecond))
	}
	t.Logf("RSS after 180 pages: %s", rss(t, cmd.Process.Pid))
	_, metrics := get(t, base+"/metrics")
	t.Logf("%s", grep(metrics, "fsgit_serve_poll_seconds_sum"))
}

// rss reads a process's resident and peak resident memory.
func rss(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}

// generateBranch writes the status branch of a fleet of n nodes into the
// bare repository repo with git fast-import: one commit with every
// document, then history commits each changing one node's document, as
// agents do. It returns the site revisions the documents name, newest
// first.
func generateBranch(t *testing.T, repo string, n, history int) []string {
	revs := []string{strings.Repeat("a1", 20), strings.Repeat("b2", 20), strings.Repeat("c3", 20)}
	roles := []string{"online", "offline", "vector", "base"}
	base := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
	doc := func(i, version int, at time.Time) []byte {
		name := fmt.Sprintf("node-%04d", i)
		applied := revs[len(revs)-1-min(version, len(revs)-1)]
		nd := &status.Node{Node: name, Site: "example", Role: roles[i%len(roles)], AppliedRevision: applied, DesiredRevision: revs[0],
			Converged: applied == revs[0], Since: at, Updated: at,
			LastRun: &status.Run{Revision: revs[0], Started: at, Duration: 1234567890, Trigger: "poll",
				Counts: map[reconciler.Outcome]int{reconciler.Unchanged: 40, reconciler.Changed: version % 3}, ExitCode: 2},
			Source: status.Source{URL: "https://git.example/site.git", Branch: "main", Reachable: true, LastSuccess: at}}
		switch i % 50 {
		case 1:
			nd.Converged = false
			nd.Failed = []status.Item{{ID: "mariadb.user:fs_app@%", Reason: "connect to 127.0.0.1:3306: connection refused"}}
			nd.LastRun.ExitCode = 6
		case 2:
			nd.Converged = false
			nd.Drifted = []status.Item{{ID: "file:/etc/mysql/conf.d/fs.cnf", Reason: "content differs",
				Changes: []reconciler.Change{{Field: "content", Before: "sha256:1", After: "sha256:2", Class: reconciler.Safe}}}}
		case 3:
			nd.Refused = []status.Refusal{{Commit: revs[0], Reason: "sites/example/x.cue:3:1: field not allowed", At: at}}
		}
		b, err := nd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var in bytes.Buffer
	w := bufio.NewWriter(&in)
	commit := func(mark int, at time.Time, msg string, files map[string][]byte) {
		fmt.Fprintf(w, "commit refs/heads/%s\nmark :%d\ncommitter fsgit agent <fsgit@fleet> %d +0000\ndata %d\n%s\n",
			status.DefaultBranch, mark, at.Unix(), len(msg), msg)
		if mark > 1 {
			fmt.Fprintf(w, "from :%d\n", mark-1)
		}
		for name, b := range files {
			fmt.Fprintf(w, "M 100644 inline nodes/%s.json\ndata %d\n%s\n", name, len(b), b)
		}
	}
	all := map[string][]byte{}
	for i := range n {
		all[fmt.Sprintf("node-%04d", i)] = doc(i, 0, base)
	}
	commit(1, base, "status: initial\n", all)
	for h := range history {
		i := (h * 7) % n
		at := base.Add(time.Duration(h+1) * time.Minute)
		name := fmt.Sprintf("node-%04d", i)
		commit(h+2, at, "status: "+name+"\n", map[string][]byte{name: doc(i, 1+h/(history/3+1), at)})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = repo, &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	return revs
}
