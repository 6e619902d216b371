package gitsource

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ci:t0ken@git.example/site.git": "https://ci:[redacted]@git.example/site.git",
		"https://ci@git.example/site.git":       "https://ci@git.example/site.git",
		"https://git.example/site.git":          "https://git.example/site.git",
		"git@git.example:site.git":              "git@git.example:site.git",
		"/srv/git/site.git":                     "/srv/git/site.git",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	base := errors.New("dial https://ci:p%40ss@h/x: p@ss refused")
	err := RedactError("https://ci:p%40ss@h/x", base)
	if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "p%40ss") || !errors.Is(err, base) {
		t.Errorf("RedactError = %q (Is: %v)", err, errors.Is(err, base))
	}
}

// TestSource_NeverSaysThePassword: a repository URL with a password in it,
// against a server that refuses, a server that is down and a branch that
// is missing: no error and no log line carries the password.
func TestSource_NeverSaysThePassword(t *testing.T) {
	const canary = "canary-pw-5f1e"
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no: "+r.URL.String(), http.StatusInternalServerError)
	}))
	defer refuse.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	for _, u := range []string{
		strings.Replace(refuse.URL, "http://", "http://ci:"+canary+"@", 1) + "/site.git",
		"http://ci:" + canary + "@" + down + "/site.git",
	} {
		s, err := Open(Config{URL: u, Branch: "main", CacheDir: filepath.Join(t.TempDir(), "c"), Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Poll(context.Background(), "")
		if err == nil {
			t.Fatalf("poll of %s worked", RedactURL(u))
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("the poll error shows the password: %v", err)
		}
		if strings.Contains(s.URL(), canary) {
			t.Errorf("URL() shows the password: %s", s.URL())
		}
	}
	if strings.Contains(logs.String(), canary) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}
