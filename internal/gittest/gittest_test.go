package gittest

import (
	"strings"
	"testing"
)

func TestServer_PushCloneStopStart(t *testing.T) {
	s := NewServer(t)
	s.NewRepo("site.git")
	w := NewWork(t, s.URL("site.git"))
	h := w.CommitAndPush("first", map[string]string{"a.txt": "a\n"})
	if st := s.Stats(); st.ReceivePacks != 1 {
		t.Errorf("receive-packs %d, want 1", st.ReceivePacks)
	}

	c := Clone(t, s.URL("site.git"))
	if got := c.Git("rev-parse", "HEAD"); got != h {
		t.Fatalf("clone at %s, want %s", got, h)
	}

	s.Stop()
	if out, err := c.TryGit("ls-remote", "origin"); err == nil {
		t.Fatalf("ls-remote worked with the server stopped: %s", out)
	}
	s.Start()
	if out := c.Git("ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(out, h) {
		t.Fatalf("ls-remote after restart: %q", out)
	}
}

func TestWork_Signing(t *testing.T) {
	s := NewServer(t)
	s.NewRepo("r.git")
	w := NewWork(t, s.FileURL("r.git"))

	w.SignWithSSH(NewSSHKey(t))
	w.Commit("ssh signed")
	if raw := w.Git("cat-file", "commit", "HEAD"); !strings.Contains(raw, "-----BEGIN SSH SIGNATURE-----") {
		t.Fatalf("no SSH signature in:\n%s", raw)
	}

	w.SignWithGPG(NewGPGKey(t, "Signer", "signer@example.com"))
	w.Commit("gpg signed")
	if raw := w.Git("cat-file", "commit", "HEAD"); !strings.Contains(raw, "-----BEGIN PGP SIGNATURE-----") {
		t.Fatalf("no PGP signature in:\n%s", raw)
	}

	w.Unsigned()
	w.Commit("unsigned")
	if raw := w.Git("cat-file", "commit", "HEAD"); strings.Contains(raw, "gpgsig") {
		t.Fatalf("unsigned commit has a signature:\n%s", raw)
	}
	w.Push()
}
