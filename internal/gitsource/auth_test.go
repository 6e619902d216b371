package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestSource_PollSSH fetches over SSH with a key file and a known_hosts
// file, and refuses a server whose host key is not the known one.
func TestSource_PollSSH(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	w := gittest.NewWork(t, srv.FileURL("site.git"))
	h := w.CommitAndPush("one", map[string]string{"f": "over ssh\n"})

	client := gittest.NewSSHKey(t)
	sshd := gittest.NewSSHServer(t, srv.Root, client)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(sshd.KnownHosts+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	auth, err := Credentials{SSHKeyFile: client.PrivateFile, KnownHostsFile: kh}.AuthMethod(sshd.URL("site.git"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{URL: sshd.URL("site.git"), Branch: "main", CacheDir: filepath.Join(dir, "cache"), Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	tip, changed, err := s.Poll(context.Background(), "")
	if err != nil || tip != h || !changed {
		t.Fatalf("poll over ssh = %s %v %v", tip, changed, err)
	}
	if got := readFile(t, s, tip, "f"); got != "over ssh\n" {
		t.Fatalf("f = %q", got)
	}

	// Another host key under the same name: refused.
	other := gittest.NewSSHServer(t, srv.Root, client)
	if err := os.WriteFile(kh, []byte(sshd.KnownHostsName()+" "+other.HostKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	auth, err = Credentials{SSHKeyFile: client.PrivateFile, KnownHostsFile: kh}.AuthMethod(sshd.URL("site.git"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Config{URL: sshd.URL("site.git"), Branch: "main", CacheDir: filepath.Join(dir, "cache2"), Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Poll(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("poll with a wrong host key: %v", err)
	}
}
