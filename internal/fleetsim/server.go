// Package fleetsim simulates a fleet of fsgit agents against real git
// servers on loopback: N agents of the real internal/agent code in one
// process, each with its own state file, git cache, socket and sandbox
// root, evaluating its own node of a generated N-node site, polling
// git http-backend behind a counter of requests, bytes and pushes; and,
// for the topology beyond one repository, read-only mirrors (more
// http-backend hosts) polled by many lightweight idle pollers.
//
// The site's catalogs are per-node JSON files (one managed file each): the
// simulation is about git, polling and status, and keeps each node's
// evaluation cheap and independent of the fleet's size.
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Server serves the bare repositories under Root with git http-backend on
// a loopback port, and counts what it serves.
type Server struct {
	// Root holds the bare repositories.
	Root string

	addr string
	srv  *http.Server

	requests, pushes, bytes atomic.Int64
}

// Counts are what a server served since it started or was last reset.
type Counts struct {
	// Requests is every HTTP request; Pushes the POSTs to
	// git-receive-pack; Bytes the response bytes.
	Requests, Pushes, Bytes int64
}

// StartServer serves root on 127.0.0.1 until ctx ends.
func StartServer(ctx context.Context, root string) (*Server, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("start git server: find git's exec path: %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	s := &Server{Root: root, addr: ln.Addr().String()}
	h := &cgi.Handler{Path: backend, Root: "/", Env: []string{
		"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root,
	}, Stderr: io.Discard}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			s.pushes.Add(1)
		}
		h.ServeHTTP(&counting{ResponseWriter: w, n: &s.bytes}, r)
	}), ReadHeaderTimeout: time.Minute}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the simulation sees the failures as its agents' errors
		}
	}()
	go func() {
		<-ctx.Done()
		_ = s.srv.Close()
	}()
	return s, nil
}

// URL is the HTTP URL of the repository name under Root.
func (s *Server) URL(name string) string { return "http://" + s.addr + "/" + name }

// Counts returns the counters.
func (s *Server) Counts() Counts {
	return Counts{Requests: s.requests.Load(), Pushes: s.pushes.Load(), Bytes: s.bytes.Load()}
}

// Reset sets the counters to zero.
func (s *Server) Reset() {
	s.requests.Store(0)
	s.pushes.Store(0)
	s.bytes.Store(0)
}

type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *counting) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func (w *counting) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// git runs git in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=sim", "GIT_AUTHOR_EMAIL=sim@example.org",
		"GIT_COMMITTER_NAME=sim", "GIT_COMMITTER_EMAIL=sim@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// newBare makes a bare repository that accepts pushes over HTTP.
func newBare(path string) error {
	if _, err := git("", "init", "--quiet", "--bare", "--initial-branch=main", path); err != nil {
		return err
	}
	_, err := git(path, "config", "http.receivepack", "true")
	return err
}
