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
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/fsgit/fsgit/internal/githttp"
)

// startServer serves root on 127.0.0.1 (internal/githttp, which counts
// requests, pushes and bytes) until ctx ends.
func startServer(ctx context.Context, root string) (*githttp.Server, error) {
	s, err := githttp.New(root, nil)
	if err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	return s, nil
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

// newBare makes a bare repository that accepts pushes over HTTP. It does
// not run git gc --auto after each push (receive.autogc), a process more
// per push: a git host runs its own maintenance, and the simulation is
// too short to need one.
func newBare(path string) error {
	if _, err := git("", "init", "--quiet", "--bare", "--initial-branch=main", path); err != nil {
		return err
	}
	if _, err := git(path, "config", "receive.autogc", "false"); err != nil {
		return err
	}
	_, err := git(path, "config", "http.receivepack", "true")
	return err
}
