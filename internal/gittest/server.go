// Package gittest serves real git repositories to tests: bare repositories
// on disk, served over smart HTTP by git's own http-backend on loopback, and
// working trees driven with the git CLI, with commits signed by SSH or
// OpenPGP keys made in the test.
//
// Nothing here is a fake: the server is git-http-backend run as a CGI
// program, pushes are made with git push, and keys come from ssh-keygen and
// gpg.
package gittest

import (
	"errors"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server serves every bare repository under Root over smart HTTP on a
// loopback port. It can be stopped and started again on the same address,
// to play a git server that goes away and comes back.
type Server struct {
	// Root is the directory holding the bare repositories.
	Root string

	tb      testing.TB
	backend string
	addr    string

	mu  sync.Mutex
	srv *http.Server

	requests     atomic.Int64
	uploadPacks  atomic.Int64
	receivePacks atomic.Int64
	bytesSent    atomic.Int64
}

// Stats counts what the server did since it was made or last reset.
type Stats struct {
	// Requests is every HTTP request served.
	Requests int64
	// UploadPacks counts POSTs to git-upload-pack: fetches that negotiate and
	// send objects. A ref listing alone is not one.
	UploadPacks int64
	// ReceivePacks counts POSTs to git-receive-pack: pushes.
	ReceivePacks int64
	// BytesSent is the response bytes written to clients.
	BytesSent int64
}

// NewServer starts a server over a new temporary root. It stops when the
// test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{Root: tb.TempDir(), tb: tb, backend: httpBackend(tb)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for the git server: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	tb.Cleanup(s.Stop)
	return s
}

// httpBackend finds git-http-backend in git's exec path.
func httpBackend(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		tb.Fatalf("find git's exec path: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("find git-http-backend: %v", err)
	}
	return p
}

func (s *Server) serve(ln net.Listener) {
	h := &cgi.Handler{
		Path: s.backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			// Keep the server's git away from the user's configuration.
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.Root,
		},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method == http.MethodPost {
			switch {
			case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
				s.uploadPacks.Add(1)
			case strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
				s.receivePacks.Add(1)
			}
		}
		h.ServeHTTP(&countingWriter{ResponseWriter: w, n: &s.bytesSent}, r)
	})}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.tb.Logf("git server: %v", err)
		}
	}()
}

// URL returns the HTTP URL of the repository named name (a path under Root).
func (s *Server) URL(name string) string { return "http://" + s.addr + "/" + name }

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Stop closes the server and every connection it has open. Clients then get
// "connection refused" until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// Start serves again on the address the server had, after Stop.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.tb.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// Stats returns a snapshot of the server's counters since it started or
// since the last [Server.ResetStats]; it is safe to call while serving.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:     s.requests.Load(),
		UploadPacks:  s.uploadPacks.Load(),
		ReceivePacks: s.receivePacks.Load(),
		BytesSent:    s.bytesSent.Load(),
	}
}

// ResetStats sets every counter to zero.
func (s *Server) ResetStats() {
	s.requests.Store(0)
	s.uploadPacks.Store(0)
	s.receivePacks.Store(0)
	s.bytesSent.Store(0)
}

// NewRepo makes an empty bare repository named name under Root that accepts
// pushes over HTTP, and returns its path.
func (s *Server) NewRepo(name string) string {
	s.tb.Helper()
	return NewBareRepo(s.tb, filepath.Join(s.Root, name))
}

// FileURL returns the file:// URL of the repository named name.
func (s *Server) FileURL(name string) string { return "file://" + filepath.Join(s.Root, name) }

// NewBareRepo makes an empty bare repository at dir whose default branch is
// main and that accepts pushes over HTTP, and returns dir.
func NewBareRepo(tb testing.TB, dir string) string {
	tb.Helper()
	runGit(tb, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", dir)
	runGit(tb, dir, nil, "config", "http.receivepack", "true")
	return dir
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// Flush passes flushes through, so that streamed packs stay streamed.
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
