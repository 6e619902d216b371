package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// TestAgent_PushConvergePublish is the whole loop: a push reaches the
// node, the node converges, the status branch says so; the next push
// replaces the first.
func TestAgent_PushConvergePublish(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	metricsAddr := freeAddr(t)
	n := newNode(t, "n1", s.url, "100ms", `metrics: listen: "`+metricsAddr+`"`)
	n.start()

	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	waitFor(t, "status branch converged on c1", func() bool {
		d := fleetNode(t, s.url, "n1")
		return d != nil && d.Converged && d.AppliedRevision == c1
	})
	st := n.agent.Status()
	if st.Role != "testrole" || st.Site != "test" || !st.Source.Reachable || st.LastRun == nil {
		t.Fatalf("status = %+v", st)
	}

	c2 := s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"), fileRes("/etc/app/other.conf", "o\n"))})
	waitFor(t, "v2 on disk", func() bool { return n.read("/etc/app/app.conf") == "v2\n" && n.read("/etc/app/other.conf") == "o\n" })
	waitFor(t, "status branch converged on c2", func() bool {
		d := fleetNode(t, s.url, "n1")
		return d != nil && d.Converged && d.AppliedRevision == c2 && d.DesiredRevision == c2
	})

	// Quiet polls publish nothing: the branch stays where it is.
	_, tip, err := status.ReadFleet(context.Background(), s.url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several polls
	if _, tip2, _ := status.ReadFleet(context.Background(), s.url, "", nil); tip2 != tip {
		t.Fatalf("quiet polls moved the status branch %s -> %s", tip, tip2)
	}

	// The local API answers with the same status, and metrics.
	var api status.Node
	if _, err := NewClient(n.sock).Get(context.Background(), StatusPath, &api); err != nil {
		t.Fatal(err)
	}
	if !api.Converged || api.AppliedRevision != c2 {
		t.Fatalf("API status = %+v", api)
	}
	m, err := NewClient(n.sock).Get(context.Background(), MetricsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`fsgit_runs_total{result="changes",trigger="commit"}`, "fsgit_converged 1", "fsgit_last_success_timestamp_seconds", "fsgit_source_up 1"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "fsgit_converged 1") {
		t.Fatalf("metrics over TCP:\n%s", body)
	}

	// A second agent on the same state file does not start.
	other, err := New(Options{Config: n.agent.config(), Registry: reconciler.NewRegistry(), Load: jsonLoader})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second agent: %v, want ErrLocked", err)
	}

	// Stopped, the agent leaves what fsgit status reads from the state.
	n.stop()
	off, err := StatusFromState(n.dir+"/state.db", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !off.Converged || off.AppliedRevision != c2 || off.Node != "n1" || off.LastRun == nil {
		t.Fatalf("status from state = %+v", off)
	}
}

// TestAgent_RefusesUnsignedAndBadCommits: with trusted keys, an unsigned
// commit and a commit whose catalog is invalid are refused; the node stays
// converged on the last good commit and says so.
func TestAgent_RefusesUnsignedAndBadCommits(t *testing.T) {
	s := newSite(t)
	key := gittest.NewSSHKey(t)
	s.work.SignWithSSH(key)
	c1 := s.push("good", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "good\n"))})
	n := newNode(t, "n1", s.url, "100ms", `source: trustedKeys: ["`+key.PublicFile+`"]`)
	n.start()
	waitFor(t, "converged on c1", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c1 })

	s.work.Unsigned()
	c2 := s.push("unsigned", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "evil\n"))})
	waitFor(t, "c2 refused", func() bool { st := n.agent.Status(); return len(st.Refused) > 0 && st.Refused[0].Commit == c2 })
	st := n.agent.Status()
	if !st.Converged || st.AppliedRevision != c1 || !strings.Contains(st.Refused[0].Reason, "not signed") {
		t.Fatalf("after the unsigned commit: %+v", st)
	}
	waitFor(t, "refusal on the status branch", func() bool {
		d := fleetNode(t, s.url, "n1")
		return d != nil && len(d.Refused) > 0 && d.Refused[0].Commit == c2 && d.Converged
	})

	s.work.SignWithSSH(key)
	c3 := s.push("signed, bad edge", map[string]string{"n1": catalogJSON(t,
		fileRes("/etc/a", "bad\n", func(r *reconciler.Resource) { r.Require = []reconciler.ID{"file:/nope"} }))})
	waitFor(t, "c3 refused", func() bool { st := n.agent.Status(); return len(st.Refused) > 0 && st.Refused[0].Commit == c3 })
	st = n.agent.Status()
	if !strings.Contains(st.Refused[0].Reason, "file:/nope") || !st.Converged || st.AppliedRevision != c1 {
		t.Fatalf("after the invalid commit: %+v", st)
	}
	if got := n.read("/etc/a"); got != "good\n" {
		t.Fatalf("/etc/a = %q: a refused commit was applied", got)
	}

	c4 := s.push("signed, good", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "fixed\n"))})
	waitFor(t, "converged on c4", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c4 })
	if got := n.read("/etc/a"); got != "fixed\n" {
		t.Fatalf("/etc/a = %q", got)
	}
	// A newer commit accepted: the refusals before it are history, in the
	// status and on the status branch (fsgit status --fleet's REFUSED).
	if st := n.agent.Status(); len(st.Refused) != 0 {
		t.Fatalf("refused after c4 was accepted: %+v", st.Refused)
	}
	waitFor(t, "no refusal on the status branch", func() bool {
		d := fleetNode(t, s.url, "n1")
		return d != nil && d.AppliedRevision == c4 && len(d.Refused) == 0
	})
}

// TestAgent_RefusesAnOlderSignedCommit: with trusted keys, a source that
// goes back to an older signed commit (a stale or hostile mirror) is
// refused, also after a restart; a newer commit is accepted again.
func TestAgent_RefusesAnOlderSignedCommit(t *testing.T) {
	s := newSite(t)
	key := gittest.NewSSHKey(t)
	s.work.SignWithSSH(key)
	c1 := s.push("old", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "old\n"))})
	time.Sleep(1100 * time.Millisecond) // commit times have a resolution of a second
	c2 := s.push("new", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "new\n"))})
	n := newNode(t, "n1", s.url, "100ms", `source: trustedKeys: ["`+key.PublicFile+`"]`)
	n.start()
	waitFor(t, "converged on c2", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c2 })

	s.work.Git("push", "--quiet", "--force", "origin", c1+":refs/heads/main")
	waitFor(t, "c1 refused", func() bool { st := n.agent.Status(); return len(st.Refused) > 0 && st.Refused[0].Commit == c1 })
	st := n.agent.Status()
	if !strings.Contains(st.Refused[0].Reason, "before the commit this node accepted last") || st.AppliedRevision != c2 {
		t.Fatalf("after going back to c1: %+v", st)
	}
	if got := n.read("/etc/a"); got != "new\n" {
		t.Fatalf("/etc/a = %q: the node was rolled back", got)
	}
	// After a restart the node compares with the commit it applied.
	n.stop()
	n.start()
	waitFor(t, "c1 refused after a restart", func() bool {
		st := n.agent.Status()
		return len(st.Refused) > 0 && st.Refused[0].Commit == c1 && st.AppliedRevision == c2
	})
	if got := n.read("/etc/a"); got != "new\n" {
		t.Fatalf("/etc/a = %q after a restart: the node was rolled back", got)
	}

	time.Sleep(1100 * time.Millisecond)
	s.work.Git("reset", "--quiet", "--hard", c2)
	c3 := s.push("newer", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "newer\n"))})
	waitFor(t, "converged on c3", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c3 })
}

// TestPollEvent_mergeRefusals: events merged while a run is in flight keep
// apart the refusals before the accepted commit (cleared by it) from those
// after it (still refused).
func TestPollEvent_mergeRefusals(t *testing.T) {
	ref := func(c string) *RefusedError { return &RefusedError{Commit: c, Err: errors.New("unsigned")} }
	good := &reconciler.Prepared{}
	commits := func(rs []*RefusedError) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Commit)
		}
		return out
	}
	// r1 refused, then c2 accepted, then r3 and r4 refused.
	var pending *pollEvent
	for _, ev := range []*pollEvent{{refused: []*RefusedError{ref("r1")}}, {prepared: good}, {refused: []*RefusedError{ref("r3")}}, {}, {refused: []*RefusedError{ref("r4")}}} {
		ev.merge(pending)
		pending = ev
	}
	if got := commits(pending.refusedSinceAccepted()); !slices.Equal(got, []string{"r3", "r4"}) || pending.prepared != good || len(pending.refused) != 3 {
		t.Fatalf("refused since accepted = %v (all %v)", got, commits(pending.refused))
	}
	// A newer commit accepted after them clears them all.
	ev := &pollEvent{prepared: &reconciler.Prepared{}}
	ev.merge(pending)
	if got := ev.refusedSinceAccepted(); len(got) != 0 || len(ev.refused) != 3 {
		t.Fatalf("refused since the newest accepted = %v", commits(got))
	}
	// Without an accepted commit, every refusal stands.
	ev = &pollEvent{refused: []*RefusedError{ref("r5")}}
	ev.merge(&pollEvent{refused: []*RefusedError{ref("r4")}})
	if got := commits(ev.refusedSinceAccepted()); !slices.Equal(got, []string{"r4", "r5"}) {
		t.Fatalf("refused without an accepted commit = %v", got)
	}
}

// TestAgent_GitDownThenUp: while the server is down the node keeps its
// state, still corrects drift, and says the source is unreachable; when it
// is back, the next push arrives.
func TestAgent_GitDownThenUp(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.start()
	waitFor(t, "converged on c1", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c1 })

	s.srv.Stop()
	waitFor(t, "source unreachable", func() bool {
		st := n.agent.Status()
		return !st.Source.Reachable && !st.Source.UnreachableSince.IsZero()
	})
	if st := n.agent.Status(); !st.Converged {
		t.Fatalf("not converged while git is down: %+v", st)
	}
	if err := os.WriteFile(n.path("/etc/a"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drift corrected while git is down", func() bool { return n.read("/etc/a") == "v1\n" })

	// A push made while the agent cannot see it (straight into the bare
	// repository, as the server is down).
	w := gittest.NewWork(t, s.srv.FileURL("site.git"))
	w.Git("fetch", "--quiet", "origin")
	w.Git("reset", "--quiet", "--hard", "origin/main")
	c2 := w.CommitAndPush("v2", map[string]string{"sites/test/nodes/n1.json": catalogJSON(t, fileRes("/etc/a", "v2\n"))})
	s.srv.Start()
	waitFor(t, "converged on c2", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c2 })
	if st := n.agent.Status(); !st.Source.Reachable || !st.Source.UnreachableSince.IsZero() || n.read("/etc/a") != "v2\n" {
		t.Fatalf("after the server came back: %+v", st)
	}
	if !contains(n.logs.String(), "git source reachable again") {
		t.Fatal("no log line for the recovery")
	}
	if c := strings.Count(n.logs.String(), "git source unreachable"); c != 1 {
		t.Fatalf("%d log lines for one outage, want 1", c)
	}
}

// TestAgent_DriftWatch: a managed file edited by hand (in place, or
// replaced as editors do, or removed) is corrected at once; a detect-mode
// file is reported, not corrected; a writer that keeps fighting is
// rate limited.
func TestAgent_DriftWatch(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t,
		fileRes("/etc/app/a.conf", "a\n"),
		fileRes("/etc/app/watched.conf", "w\n", detect),
		fileRes("/srv/b.conf", "b\n"),
	)})
	// A long poll interval: only the watch can correct in time.
	n := newNode(t, "n1", s.url, "1h", `drift: {maxCorrections: 3, window: "1h"}`)
	n.start()
	waitFor(t, "first run", func() bool { st := n.agent.Status(); return st.AppliedRevision == c1 })
	// The detect-mode file did not exist: the first run reports it drifted.
	if got := n.read("/etc/app/watched.conf"); got != "" {
		t.Fatalf("detect-mode file written: %q", got)
	}

	edit := func(name string, how func(p string)) {
		t.Helper()
		how(n.path(name))
	}
	inPlace := func(p string) {
		if err := os.WriteFile(p, []byte("hand edit\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	replace := func(p string) {
		tmp := p + ".swp"
		if err := os.WriteFile(tmp, []byte("editor\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(p string) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		file string
		want string
		how  func(string)
	}{
		{"in place", "/etc/app/a.conf", "a\n", inPlace},
		{"replaced by rename", "/srv/b.conf", "b\n", replace},
		{"removed", "/etc/app/a.conf", "a\n", remove},
	} {
		edit(tc.file, tc.how)
		waitFor(t, tc.name+" corrected", func() bool { return n.read(tc.file) == tc.want })
	}

	// Detect mode: reported, not corrected.
	if err := os.WriteFile(n.path("/etc/app/watched.conf"), []byte("someone else's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "detect-mode drift reported", func() bool {
		for _, d := range n.agent.Status().Drifted {
			if d.ID == "file:/etc/app/watched.conf" {
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond)
	if got := n.read("/etc/app/watched.conf"); got != "someone else's\n" {
		t.Fatalf("detect-mode file corrected: %q", got)
	}

	// A fight: /etc/app/a.conf was corrected twice; one more correction is
	// allowed, then the writer wins and the drift is reported.
	inPlace(n.path("/etc/app/a.conf"))
	waitFor(t, "third correction", func() bool { return n.read("/etc/app/a.conf") == "a\n" })
	inPlace(n.path("/etc/app/a.conf"))
	waitFor(t, "rate-limited drift reported", func() bool {
		for _, d := range n.agent.Status().Drifted {
			if d.ID == "file:/etc/app/a.conf" {
				return true
			}
		}
		return false
	})
	if got := n.read("/etc/app/a.conf"); got != "hand edit\n" {
		t.Fatalf("a.conf = %q: corrected past the limit", got)
	}
	if c := strings.Count(n.logs.String(), "drift corrected too often"); c != 1 {
		t.Fatalf("%d rate-limit log lines, want 1", c)
	}
}

// TestAgent_Reload: SIGHUP's reload follows a new branch; an invalid file
// changes nothing.
func TestAgent_Reload(t *testing.T) {
	s := newSite(t)
	c1 := s.push("main", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "main\n"))})
	s.work.WriteFile("sites/test/nodes/n1.json", catalogJSON(t, fileRes("/etc/a", "prod\n")))
	s.work.Commit("prod")
	s.work.Git("push", "--quiet", "origin", "HEAD:refs/heads/prod")
	n := newNode(t, "n1", s.url, "100ms", "")
	n.start()
	waitFor(t, "converged on main", func() bool { return n.agent.Status().AppliedRevision == c1 })

	if err := os.WriteFile(n.cfgFile, []byte("node: 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.agent.Reload()
	waitFor(t, "reload refused", func() bool { return contains(n.logs.String(), "reload: keeping the running configuration") })

	n.writeConfig(s.url, `source: branch: "prod"`)
	n.agent.Reload()
	waitFor(t, "prod applied", func() bool { return n.read("/etc/a") == "prod\n" })
}

// waitKind is a resource whose apply waits until it is cancelled, as a
// health check on a service that never comes up would.
type waitKind struct{ started chan struct{} }

func (k *waitKind) Kind() string                          { return "twait" }
func (k *waitKind) Validate(r *reconciler.Resource) error { return nil }
func (k *waitKind) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	return &reconciler.Plan{
		Action:  reconciler.ActionCreate,
		Changes: []reconciler.Change{{Field: "healthy", Before: "no", After: "yes"}},
		Apply: func(ctx context.Context) error {
			select {
			case k.started <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return ctx.Err()
		},
	}, nil
}

// TestAgent_NewestCommitWins: a new commit cancels a run stuck in a health
// wait, and is applied.
func TestAgent_NewestCommitWins(t *testing.T) {
	s := newSite(t)
	stuck := reconciler.Resource{ID: "twait:db-healthy", Spec: []byte(`{}`)}
	s.push("stuck", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "v1\n"), stuck)})
	n := newNode(t, "n1", s.url, "100ms", "")
	wk := &waitKind{started: make(chan struct{}, 1)}
	n.kinds = append(n.kinds, wk)
	n.start()
	select {
	case <-wk.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the health wait never started")
	}
	c2 := s.push("fix", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "v2\n"))})
	waitFor(t, "converged on the fix", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c2 })
	if !contains(n.logs.String(), "newer commit ready: cancelling the run in flight") {
		t.Fatal("no cancellation logged")
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// slowKind takes a while to apply, and records that it finished.
type slowKind struct {
	started chan struct{}
	done    chan reconciler.ID
}

func (k *slowKind) Kind() string                          { return "tslow" }
func (k *slowKind) Validate(r *reconciler.Resource) error { return nil }
func (k *slowKind) Plan(_ context.Context, _ *reconciler.Env, r *reconciler.Resource) (*reconciler.Plan, error) {
	return &reconciler.Plan{
		Action:  reconciler.ActionCreate,
		Changes: []reconciler.Change{{Field: "done", Before: "no", After: "yes"}},
		Apply: func(ctx context.Context) error {
			k.started <- struct{}{}
			select {
			case <-time.After(300 * time.Millisecond):
				k.done <- r.ID
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}, nil
}

// TestAgent_StopFinishesResourceInHand: Stop (SIGTERM) lets the resource
// being applied finish, starts no other, and Run returns.
func TestAgent_StopFinishesResourceInHand(t *testing.T) {
	s := newSite(t)
	first := reconciler.Resource{ID: "tslow:first", Spec: []byte(`{}`)}
	second := reconciler.Resource{ID: "tslow:second", Spec: []byte(`{}`), Require: []reconciler.ID{"tslow:first"}}
	s.push("slow", map[string]string{"n1": catalogJSON(t, first, second)})
	n := newNode(t, "n1", s.url, "100ms", "")
	k := &slowKind{started: make(chan struct{}, 2), done: make(chan reconciler.ID, 2)}
	n.kinds = append(n.kinds, k)
	n.start()
	select {
	case <-k.started:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing started")
	}
	n.stop()
	select {
	case id := <-k.done:
		if id != "tslow:first" {
			t.Fatalf("finished %s", id)
		}
	default:
		t.Fatal("the resource in hand did not finish")
	}
	if len(k.started) != 0 {
		t.Fatal("a resource started after Stop")
	}
	off, err := StatusFromState(n.dir+"/state.db", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if off.LastRun == nil || off.LastRun.Counts[reconciler.Created] != 1 || off.LastRun.Error == "" {
		t.Fatalf("last run recorded: %+v", off.LastRun)
	}
}
