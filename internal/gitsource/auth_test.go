package gitsource

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fsgit/fsgit/internal/gittest"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

func TestCredentials_AuthMethod(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "token")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := gittest.NewSSHKey(t)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte("git.example.com "+key.Public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	a, err := Credentials{Username: "bot", PasswordFile: pw}.AuthMethod("https://git.example.com/site.git")
	if ba, ok := a.(*githttp.BasicAuth); err != nil || !ok || ba.Username != "bot" || ba.Password != "s3cret" {
		t.Fatalf("https auth = %#v %v", a, err)
	}
	if a, err := (Credentials{}).AuthMethod("https://git.example.com/site.git"); err != nil || a != nil {
		t.Fatalf("no credentials = %#v %v", a, err)
	}
	for _, u := range []string{"ssh://deploy@git.example.com/site.git", "deploy@git.example.com:site.git"} {
		a, err := Credentials{SSHKeyFile: key.PrivateFile, KnownHostsFile: kh}.AuthMethod(u)
		if pk, ok := a.(*gitssh.PublicKeys); err != nil || !ok || pk.User != "deploy" || pk.HostKeyCallback == nil {
			t.Fatalf("ssh auth for %s = %#v %v", u, a, err)
		}
	}
	for name, c := range map[string]struct {
		cred Credentials
		url  string
	}{
		"ssh without key":         {Credentials{KnownHostsFile: kh}, "ssh://git.example.com/x"},
		"ssh without known hosts": {Credentials{SSHKeyFile: key.PrivateFile}, "git@git.example.com:x"},
		"key for https":           {Credentials{SSHKeyFile: key.PrivateFile}, "https://git.example.com/x"},
		"missing password file":   {Credentials{PasswordFile: filepath.Join(dir, "nope")}, "https://git.example.com/x"},
	} {
		if _, err := c.cred.AuthMethod(c.url); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
