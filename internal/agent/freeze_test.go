package agent

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/status"
)

// TestAgent_FrozenMirror: two nodes with trusted keys and maxTipAge 4s,
// one polling the repository, the other a mirror (a second repository on
// the git server, whose URL carries a password) that stops following it
// after the first commit, while a CI job keeps pushing signed heartbeat
// commits to the repository. The node on the mirror stays converged on
// the old commit; once its tip is older than maxTipAge, its status says
// the source looks frozen (the mirror's URL redacted, the commit, the
// age), its metrics and a notification say so, and it says so again after
// a restart (the age is the commit's). The status repository shows it
// frozen and behind the other node's tip (what fsgit status --fleet
// flags), while the node on the repository is neither. When the mirror
// catches up, the node no longer looks frozen.
func TestAgent_FrozenMirror(t *testing.T) {
	s := newSite(t)
	key := gittest.NewSSHKey(t)
	s.work.SignWithSSH(key)
	s.srv.NewRepo("mirror.git")
	s.srv.NewRepo("status.git")
	syncMirror := func() { s.work.Git("push", "--quiet", "--force", s.srv.URL("mirror.git"), "HEAD:refs/heads/main") }
	c1 := s.push("c1", map[string]string{
		"stuck":  catalogJSON(t, fileRes("/etc/a", "v1\n")),
		"moving": catalogJSON(t, fileRes("/etc/a", "v1\n")),
	})
	syncMirror()
	mirror, err := url.Parse(s.srv.URL("mirror.git"))
	if err != nil {
		t.Fatal(err)
	}
	mirror.User = url.UserPassword("fsgit", "hunter2")
	statusURL := s.srv.URL("status.git")
	hook := newReceiver(t, 0, false)
	extra := fmt.Sprintf(`source: {trustedKeys: [%q], maxTipAge: "4s"}
status: url: %q
`, key.PublicFile, statusURL)
	stuck := newNode(t, "stuck", mirror.String(), "100ms", extra+`notify: {minInterval: "0s", endpoints: [{url: "`+hook.srv.URL+`/hook"}]}`)
	moving := newNode(t, "moving", s.url, "100ms", extra)
	stuck.start()
	moving.start()
	for _, n := range []*node{stuck, moving} {
		waitFor(t, n.name+" converged on c1", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c1 })
	}
	st := stuck.agent.Status()
	c1Time := st.Source.TipTime
	if st.Source.Tip != c1 || c1Time.IsZero() || st.Source.TipSeen.IsZero() || st.Source.MaxTipAge.D() != 4*time.Second ||
		st.Source.LastSuccess.IsZero() || st.Source.Frozen != "" {
		t.Fatalf("stuck, fresh: %+v", st.Source)
	}
	if !strings.Contains(st.Source.URL, "fsgit:[redacted]@") {
		t.Fatalf("source URL %q", st.Source.URL)
	}

	// The mirror no longer follows; heartbeats go to the repository only,
	// until the stuck node looks frozen and the moving one's tip is well
	// past the threshold ahead of it.
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for {
		last = s.work.Commit("heartbeat")
		s.work.Push()
		waitFor(t, "moving on the heartbeat", func() bool { return moving.agent.Status().Source.Tip == last })
		m := moving.agent.Status()
		if m.Source.Frozen != "" {
			t.Fatalf("moving looks frozen on a fresh tip: %s", m.Source.Frozen)
		}
		if stuck.agent.Status().Source.Frozen != "" && m.Source.TipTime.Sub(c1Time) > 5*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stuck never looked frozen: %+v", stuck.agent.Status().Source)
		}
		time.Sleep(time.Second)
	}
	st = stuck.agent.Status()
	if !st.Converged || st.AppliedRevision != c1 || st.Source.Tip != c1 || !st.Source.Reachable {
		t.Fatalf("stuck: converged %v on %s, tip %s, reachable %v", st.Converged, st.AppliedRevision, st.Source.Tip, st.Source.Reachable)
	}
	for _, want := range []string{"fsgit:[redacted]@127.0.0.1", "mirror.git", c1[:12], "maxTipAge 4s", c1Time.UTC().Format(time.RFC3339)} {
		if !strings.Contains(st.Source.Frozen, want) {
			t.Errorf("frozen reason %q does not say %q", st.Source.Frozen, want)
		}
	}
	if st.Source.TipAge.D() <= 4*time.Second || strings.Contains(st.Source.Frozen, "hunter2") {
		t.Fatalf("stuck: age %s, reason %s", st.Source.TipAge, st.Source.Frozen)
	}
	m := metricsOf(t, stuck)
	for _, want := range []string{"fsgit_source_frozen 1", "fsgit_source_max_tip_age_seconds 4", "fsgit_source_tip_age_seconds ",
		fmt.Sprintf("fsgit_source_tip_timestamp_seconds %g", float64(c1Time.Unix()))} {
		if !strings.Contains(m, want) {
			t.Errorf("stuck's metrics lack %q:\n%s", want, grepLines(m, "fsgit_source"))
		}
	}
	if m := metricsOf(t, moving); !strings.Contains(m, "fsgit_source_frozen 0") {
		t.Errorf("moving's metrics:\n%s", grepLines(m, "fsgit_source"))
	}
	waitFor(t, "source-frozen event", func() bool { return hook.has(`"kind":"source-frozen"`) && hook.has(c1[:12]) })
	if hook.has("hunter2") {
		t.Fatalf("a notification shows the password: %v", hook.got())
	}

	// What fsgit status --fleet reads: stuck's own document says frozen,
	// and compared with moving's tip, it is behind by more than 4s.
	var fleet []status.Node
	waitEvery(t, "the fleet shows stuck frozen and moving on the newest heartbeat", 200*time.Millisecond, func() bool {
		nodes, _, err := status.ReadFleet(context.Background(), statusURL, "", nil)
		if err != nil || len(nodes) != 2 {
			return false
		}
		fleet = nodes
		return nodes[1].Node == "stuck" && nodes[1].Source.Frozen != "" && nodes[0].Source.TipTime.Sub(c1Time) > 5*time.Second
	})
	lags := status.CompareTips(fleet, 0)
	if l := lags["stuck"]; l.Newest != fleet[0].Source.Tip || l.NewestNode != "moving" || l.Behind.D() <= 4*time.Second || l.Reason == "" {
		t.Fatalf("stuck compared with the fleet: %+v", l)
	}
	if l := lags["moving"]; l.Behind != 0 || l.Reason != "" {
		t.Fatalf("moving compared with the fleet: %+v", l)
	}

	// After a restart the tip's age is still the commit's.
	stuck.stop()
	stuck.start()
	waitFor(t, "stuck frozen after a restart", func() bool {
		st := stuck.agent.Status()
		return st.Source.Tip == c1 && st.Source.TipTime.Equal(c1Time) && st.Source.Frozen != ""
	})

	// The mirror catches up, with a fresh heartbeat.
	last = s.work.Commit("heartbeat")
	s.work.Push()
	syncMirror()
	waitFor(t, "stuck no longer frozen", func() bool {
		st := stuck.agent.Status()
		return st.Source.Tip == last && st.Source.Frozen == "" && st.AppliedRevision == last
	})
	if m := metricsOf(t, stuck); !strings.Contains(m, "fsgit_source_frozen 0") {
		t.Errorf("stuck's metrics after the mirror caught up:\n%s", grepLines(m, "fsgit_source"))
	}
}
