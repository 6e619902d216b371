package gitsource

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

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
