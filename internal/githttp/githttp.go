// Package githttp serves the bare git repositories of a directory over
// smart HTTP on a loopback port, with git's own http-backend run as a CGI
// program, and counts what it serves: requests, fetches, pushes and bytes.
// Tests (internal/gittest) and the fleet simulator (internal/fleetsim)
// serve their repositories with it.
package githttp

import (
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
	"sync"
	"sync/atomic"
	"time"
)

// Server serves every bare repository under Root. It can be stopped and
// started again on the same address, to play a git server that goes away
// and comes back.
type Server struct {
	// Root is the directory holding the bare repositories.
	Root string

	backend string
	addr    string
	errLog  func(error)

	mu  sync.Mutex
	srv *http.Server

	requests     atomic.Int64
	uploadPacks  atomic.Int64
	receivePacks atomic.Int64
	bytesSent    atomic.Int64
}

// Stats counts what a server did since it was made or last reset.
type Stats struct {
	// Requests is every HTTP request served.
	Requests int64
	// UploadPacks counts POSTs to git-upload-pack: fetches that negotiate and
	// send objects. A ref listing alone is not one in protocol v0 (go-git's,
	// the agents'); git's protocol v2 lists refs with such a POST too.
	UploadPacks int64
	// ReceivePacks counts POSTs to git-receive-pack: pushes.
	ReceivePacks int64
	// BytesSent is the response bytes written to clients.
	BytesSent int64
}

// New serves root on 127.0.0.1 (a port of its own) until [Server.Stop].
// errLog, when not nil, receives the errors of the HTTP server itself.
func New(root string, errLog func(error)) (*Server, error) {
	backend, err := Backend()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the git server: %w", err)
	}
	if errLog == nil {
		errLog = func(error) {}
	}
	s := &Server{Root: root, backend: backend, addr: ln.Addr().String(), errLog: errLog}
	s.serve(ln)
	return s, nil
}

// Backend finds git-http-backend in git's exec path.
func Backend() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("find git's exec path: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("find git-http-backend: %w", err)
	}
	return p, nil
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
		Stderr: io.Discard,
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
	}), ReadHeaderTimeout: time.Minute}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errLog(fmt.Errorf("git server: %w", err))
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

// Start serves again on the address the server had, after Stop; it does
// nothing while the server runs.
func (s *Server) Start() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", s.addr, err)
	}
	s.serve(ln)
	return nil
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

// countingWriter counts the bytes of a response.
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
