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
	"path/filepath"
	"testing"

	"github.com/fsgit/fsgit/internal/githttp"
)

// Server serves every bare repository under Root over smart HTTP on a
// loopback port (internal/githttp: git's own http-backend, counting what it
// serves). It can be stopped and started again on the same address, to
// play a git server that goes away and comes back.
type Server struct {
	*githttp.Server

	tb testing.TB
}

// Stats counts what the server did since it was made or last reset.
type Stats = githttp.Stats

// NewServer starts a server over a new temporary root. It stops when the
// test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	srv, err := githttp.New(tb.TempDir(), func(err error) { tb.Logf("%v", err) })
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Server: srv, tb: tb}
	tb.Cleanup(s.Stop)
	return s
}

// Start serves again on the address the server had, after Stop.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.Server.Start(); err != nil {
		s.tb.Fatal(err)
	}
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
