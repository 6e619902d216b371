package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAgent_QuietPollWritesNothing: once a node has converged, polls that
// bring nothing new leave the state file as it is, while the status the
// agent serves says when the node was last checked; a hand edit of a
// watched file is still corrected, and recorded.
func TestAgent_QuietPollWritesNothing(t *testing.T) {
	s := newSite(t)
	c := s.push("v", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/a.conf", "a\n"), fileRes("/etc/app/b.conf", "b\n"))})
	n := newNode(t, "n1", s.url, "100ms", "")
	n.start()
	waitFor(t, "convergence", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c })
	// The first polls after the first run may still record (a run that
	// converged something); then nothing.
	time.Sleep(500 * time.Millisecond)
	stateFile := filepath.Join(n.stateDir, "state.db")
	before := readBytes(t, stateFile)
	checked := n.agent.Status().LastRun.Started
	time.Sleep(time.Second)
	if after := readBytes(t, stateFile); !bytes.Equal(before, after) {
		t.Fatal("quiet polls wrote the state file")
	}
	st := n.agent.Status()
	if st.LastRun == nil || !st.LastRun.Started.After(checked) {
		t.Fatalf("the status does not show the last check: last run %+v, before %v", st.LastRun, checked)
	}
	if !st.Converged {
		t.Fatalf("not converged after quiet polls: %+v", st)
	}

	if err := os.WriteFile(n.path("/etc/app/a.conf"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edit corrected", func() bool { return n.read("/etc/app/a.conf") == "a\n" })
	waitFor(t, "the correction recorded", func() bool { return !bytes.Equal(before, readBytes(t, stateFile)) })
}

func readBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
