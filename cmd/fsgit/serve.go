//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/internal/web"
)

type serveFlags struct {
	repo, branch, listen string
	interval, stale      time.Duration
	maxTipLag            time.Duration
	history              int
	cacheDir             string
	tokenFile, basicFile string
	username, password   string
	sshKey, knownHosts   string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --repo URL [--branch B] [--listen 127.0.0.1:8080]",
		Short: "Serve a read-only view of the fleet, read from the status repository, to a browser",
		Long: `serve polls the status repository as an agent polls its source, the remote's refs first
and a fetch only when a status ref moved. It reads both status layouts, as status --fleet does:
the status branch (nodes/<node>.json, one document per node) and each node's own ref
(refs/<branch>/<node>, the refs layout), a node's ref winning over its document on the branch. It
serves:

  /                   the fleet: one row per node, counts by state, filters by role and state
  /node/NAME          a node's document and its history, from its ref's or the branch's commits
  /revision/COMMIT    which nodes run a commit of the site, which do not, which refused it
  /healthz, /metrics  the server's health and Prometheus metrics

Every page is also JSON with ?format=json. The pages are rendered on the server, hold no
script and fetch nothing from elsewhere.

It listens on loopback unless told otherwise; any other address needs --basic-auth-file
(one line, user:password) or --token-file (a bearer token).`,
		Example: `  # on loopback, from a local clone's remote
  fsgit serve --repo https://git.example.com/site-status.git
  # for the team, behind a token
  fsgit serve --repo ssh://git@git.example.com/site.git --ssh-key-file ~/.ssh/id_ed25519 \
    --known-hosts-file ~/.ssh/known_hosts --listen :8080 --token-file /etc/fsgit/serve-token`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", "", "the status repository's URL (required)")
	fl.StringVar(&f.branch, "branch", status.DefaultBranch, "the status branch (the nodes' refs are refs/<branch>/<node>)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "the address to serve on")
	fl.DurationVar(&f.interval, "interval", 30*time.Second, "time between polls of the status repository")
	fl.DurationVar(&f.stale, "stale", time.Hour, "mark a node stale when its document is older than this")
	fl.DurationVar(&f.maxTipLag, "max-tip-lag", 0, "flag a node whose source tip is older than the fleet's newest by more than this (default: each node's source.maxTipAge)")
	fl.IntVar(&f.history, "history", 200, "commits of the status branch, and of each node's ref, read for the nodes' histories")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "the status refs' local cache (default: a temporary directory, removed on exit)")
	fl.StringVar(&f.tokenFile, "token-file", "", "a file holding the bearer token readers must present")
	fl.StringVar(&f.basicFile, "basic-auth-file", "", "a file holding user:password for HTTP basic auth")
	fl.StringVar(&f.username, "username", "", "the user for the status repository over HTTPS")
	fl.StringVar(&f.password, "password-file", "", "a file holding the password or token for the status repository")
	fl.StringVar(&f.sshKey, "ssh-key-file", "", "an SSH private key for the status repository")
	fl.StringVar(&f.knownHosts, "known-hosts-file", "", "the SSH server's known_hosts, with --ssh-key-file")
	return cmd
}

// readAccess reads the credentials readers must present.
func readAccess(f serveFlags) (web.Access, error) {
	var a web.Access
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return a, fmt.Errorf("read the token file: %w", err)
		}
		a.Token = strings.TrimSpace(string(b))
		if len(a.Token) < 16 {
			return a, fmt.Errorf("token file %s: the token must be at least 16 characters", f.tokenFile)
		}
	}
	if f.basicFile != "" {
		b, err := os.ReadFile(f.basicFile)
		if err != nil {
			return a, fmt.Errorf("read the basic auth file: %w", err)
		}
		user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok || user == "" || len(pass) < 8 {
			return a, fmt.Errorf("basic auth file %s: want one line user:password, the password at least 8 characters", f.basicFile)
		}
		a.User, a.Password = user, pass
	}
	return a, nil
}

func runServe(ctx context.Context, stderr io.Writer, f serveFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.repo == "" {
		return couldNotRun(errors.New("serve needs --repo URL: the status repository"))
	}
	access, err := readAccess(f)
	if err != nil {
		return couldNotRun(err)
	}
	if err := web.CheckListen(f.listen, access); err != nil {
		return couldNotRun(err)
	}
	cred := gitsource.Credentials{Username: f.username, PasswordFile: f.password, SSHKeyFile: f.sshKey, KnownHostsFile: f.knownHosts}
	auth, err := cred.AuthMethod(f.repo)
	if err != nil {
		return couldNotRun(err)
	}
	cacheDir := f.cacheDir
	if cacheDir == "" {
		tmp, err := os.MkdirTemp("", "fsgit-serve-")
		if err != nil {
			return couldNotRun(fmt.Errorf("make the status cache: %w", err))
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		cacheDir = tmp + "/cache"
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var redact []string
	if f.password != "" {
		if b, err := os.ReadFile(f.password); err == nil {
			redact = append(redact, strings.TrimSpace(string(b)))
		}
	}
	srv, err := web.New(web.Options{URL: f.repo, Branch: f.branch, Auth: auth, CacheDir: cacheDir, Interval: f.interval,
		Depth: f.history, StaleAfter: f.stale, MaxTipLag: f.maxTipLag, Access: access, Redact: redact, Log: log})
	if err != nil {
		return couldNotRun(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return couldNotRun(fmt.Errorf("listen on %s: %w", f.listen, err))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Run(ctx) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("serving the fleet", "url", "http://"+ln.Addr().String()+"/", "repo", srv.RepoURL(), "branch", f.branch)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return couldNotRun(fmt.Errorf("serve: %w", err))
	}
	return nil
}
