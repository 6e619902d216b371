package gitsource

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/fsgit/fsgit/internal/gittest"
)

func TestVerifier_Verify(t *testing.T) {
	srv := gittest.NewServer(t)
	trustedSSH := gittest.NewSSHKey(t)
	otherSSH := gittest.NewSSHKey(t)
	trustedGPG := gittest.NewGPGKey(t, "Trusted", "trusted@example.com")
	otherGPG := gittest.NewGPGKey(t, "Other", "other@example.com")

	var keys [][]byte
	for _, f := range []string{trustedSSH.PublicFile, trustedGPG.PublicFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b)
	}
	v, err := NewVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		sign       func(w *gittest.Work)
		tamper     bool
		wantErr    error
		wantSigner string
	}{
		{name: "ssh trusted", sign: func(w *gittest.Work) { w.SignWithSSH(trustedSSH) }, wantSigner: "ssh SHA256:"},
		{name: "gpg trusted", sign: func(w *gittest.Work) { w.SignWithGPG(trustedGPG) }, wantSigner: "openpgp " + trustedGPG.Fingerprint},
		{name: "unsigned", sign: func(w *gittest.Work) { w.Unsigned() }, wantErr: ErrUnsigned},
		{name: "ssh untrusted", sign: func(w *gittest.Work) { w.SignWithSSH(otherSSH) }, wantErr: ErrUntrusted},
		{name: "gpg untrusted", sign: func(w *gittest.Work) { w.SignWithGPG(otherGPG) }, wantErr: ErrUntrusted},
		{name: "ssh tampered", sign: func(w *gittest.Work) { w.SignWithSSH(trustedSSH) }, tamper: true, wantErr: ErrUntrusted},
		{name: "gpg tampered", sign: func(w *gittest.Work) { w.SignWithGPG(trustedGPG) }, tamper: true, wantErr: ErrUntrusted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := strings.ReplaceAll(tc.name, " ", "-") + ".git"
			srv.NewRepo(repo)
			w := gittest.NewWork(t, srv.URL(repo))
			tc.sign(w)
			h := w.CommitAndPush("change", map[string]string{"f": "x"})
			if tc.tamper {
				h = w.TamperHead("a message the signer never signed")
				w.Git("push", "--quiet", "-f", "origin", "HEAD:refs/heads/main")
			}
			s := openSource(t, srv.URL(repo), v)
			tip, _, err := s.Poll(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if tip != h {
				t.Fatalf("tip %s, want %s", tip, h)
			}
			c, err := s.Commit(tip)
			if tc.wantErr != nil {
				var se *SignatureError
				if !errors.As(err, &se) || !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want a SignatureError wrapping %v", err, tc.wantErr)
				}
				if se.Commit != h {
					t.Fatalf("refused commit %s, want %s", se.Commit, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.Signer, tc.wantSigner) {
				t.Fatalf("signer %q, want prefix %q", c.Signer, tc.wantSigner)
			}
		})
	}
}

func TestNewVerifier_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{
		{"none", nil},
		{"garbage", [][]byte{[]byte("not a key\n")}},
		{"bad armor", [][]byte{[]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(tc.keys...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// sshSignedCommit returns a commit signed by ssh-keygen -Y sign with key k in
// namespace ns, as git would sign it in namespace "git".
func sshSignedCommit(t *testing.T, k *gittest.SSHKey, ns string) *object.Commit {
	t.Helper()
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &object.Commit{
		Author:    object.Signature{Name: "A", Email: "a@example.com", When: when},
		Committer: object.Signature{Name: "A", Email: "a@example.com", When: when},
		Message:   "change\n",
		TreeHash:  plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
	}
	obj := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(obj); err != nil {
		t.Fatal(err)
	}
	r, err := obj.Reader()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(msg, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", k.PrivateFile, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	c.PGPSignature = string(sig)
	c.Hash = obj.Hash()
	return c
}

// sshVerifier makes a key with ssh-keygen and a verifier that trusts it.
func sshVerifier(t *testing.T) (*gittest.SSHKey, *Verifier) {
	t.Helper()
	k := gittest.NewSSHKey(t)
	v, err := NewVerifier([]byte(k.Public + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

func TestVerifier_SSHNamespace(t *testing.T) {
	k, v := sshVerifier(t)
	// The same signing path in namespace "git" is accepted, so the refusal
	// below is the namespace's doing.
	if signer, err := v.Verify(sshSignedCommit(t, k, "git")); err != nil || !strings.HasPrefix(signer, "ssh SHA256:") {
		t.Fatalf("namespace git: signer %q, err %v", signer, err)
	}
	_, err := v.Verify(sshSignedCommit(t, k, "file"))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), `namespace "file"`) {
		t.Fatalf("namespace file: err = %v, want ErrUntrusted naming the namespace", err)
	}
}

func TestVerifier_SSHTamperedMessage(t *testing.T) {
	k, v := sshVerifier(t)
	c := sshSignedCommit(t, k, "git")
	c.Message = "a message the signer never signed\n"
	if _, err := v.Verify(c); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("tampered message: err = %v, want ErrUntrusted", err)
	}
	c = sshSignedCommit(t, k, "git")
	c.Author.Email = "mallory@example.com"
	if _, err := v.Verify(c); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("tampered author: err = %v, want ErrUntrusted", err)
	}
}

func TestVerifier_SSHMalformed(t *testing.T) {
	k, v := sshVerifier(t)
	c := sshSignedCommit(t, k, "git")
	c.PGPSignature = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n"
	if _, err := v.Verify(c); !errors.Is(err, ErrMalformedSignature) {
		t.Fatalf("truncated signature: err = %v, want ErrMalformedSignature", err)
	}
}
