package githttp

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestServer_CountsAndRestarts: a ref listing (protocol v0) is a request
// and not a fetch, a push is counted as one, a stopped server refuses and a started
// one serves again on its address.
func TestServer_CountsAndRestarts(t *testing.T) {
	root := t.TempDir()
	git := func(dir string, args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+root, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %w: %s", args, err, out)
		}
		return nil
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(git("", "init", "-q", "--bare", "-b", "main", filepath.Join(root, "r.git")))
	must(git(filepath.Join(root, "r.git"), "config", "http.receivepack", "true"))
	s, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	work := t.TempDir()
	must(git(work, "init", "-q", "-b", "main"))
	must(git(work, "commit", "-q", "--allow-empty", "-m", "one"))
	must(git(work, "push", "-q", s.URL("r.git"), "main"))
	if st := s.Stats(); st.ReceivePacks != 1 || st.Requests < 2 || st.BytesSent == 0 {
		t.Fatalf("after a push: %+v", st)
	}
	s.ResetStats()
	// Protocol v0, as go-git speaks it (git's v2 lists refs with a POST).
	must(git(work, "-c", "protocol.version=0", "ls-remote", s.URL("r.git")))
	if st := s.Stats(); st.Requests != 1 || st.UploadPacks != 0 || st.ReceivePacks != 0 {
		t.Fatalf("after a ref listing: %+v", st)
	}
	s.Stop()
	if git(work, "ls-remote", s.URL("r.git")) == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	must(git(work, "ls-remote", s.URL("r.git")))
}
