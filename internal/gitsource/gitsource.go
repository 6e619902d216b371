// Package gitsource is where a node's desired state comes from: a branch of
// a git repository, polled cheaply and read without a work tree.
//
// A [Source] keeps a local bare cache of the repository. [Source.Poll]
// first lists the remote's refs (one round trip, no objects) and fetches
// only when the branch's tip is not the commit the caller already has; the
// fetch is shallow and single-branch. [Source.Commit] reads a commit from
// the cache, checks its signature against the trusted keys (OpenPGP and SSH
// signatures, as git makes them) and hands out its tree as an [fs.FS]. The
// cache is compacted when it grows past a bound, keeping only the commits
// its refs name.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// DefaultCacheMaxBytes is the size past which the cache is compacted.
const DefaultCacheMaxBytes = 64 << 20

// remoteName is the name of the cache's only remote.
const remoteName = "origin"

// keepRef is the local ref that pins the commit the node last applied, so
// that compaction keeps it and a restarted agent can read it while the
// remote is unreachable.
const keepRef = plumbing.ReferenceName("refs/fsgit/applied")

// ErrBranchNotFound is returned by Poll when the remote has no such branch.
var ErrBranchNotFound = errors.New("branch not found on the remote")

// Config says where the source is and how to reach it.
type Config struct {
	// URL is the repository: https://, http://, ssh://, user@host:path or
	// file://.
	URL string
	// Branch is the branch to follow, e.g. "main".
	Branch string
	// Auth authenticates to the remote; nil for none.
	Auth transport.AuthMethod
	// CacheDir is the bare cache's directory; it is made if missing.
	CacheDir string
	// CacheMaxBytes bounds the cache: past it, a fetch is followed by a
	// compaction. Zero means DefaultCacheMaxBytes.
	CacheMaxBytes int64
	// Verifier checks commit signatures; nil accepts every commit.
	Verifier *Verifier
	// Depth is how many commits of the branch a fetch brings (1 when
	// zero): an agent needs the tip only, a reader of the branch's history
	// (fsgit serve) more.
	Depth int
	// Log receives one line per fetch and compaction.
	Log *slog.Logger
}

// Stats counts the source's work since it was opened.
type Stats struct {
	// Lists counts ref listings (one per poll).
	Lists int64
	// Fetches counts fetches (one per new tip).
	Fetches int64
	// Compactions counts cache compactions.
	Compactions int64
}

// Commit is a verified commit read from the cache.
type Commit struct {
	// Hash is the commit's full hex hash.
	Hash string
	// Author and Committer are "Name <email>".
	Author    string
	Committer string
	// When is the committer's time.
	When time.Time
	// Message is the commit message.
	Message string
	// Parents are the parents' hashes; a parent beyond a shallow fetch's
	// depth is not in the cache.
	Parents []string
	// Signer describes the trusted key that verified the signature; it is
	// empty when no keys are configured.
	Signer string
	// FS is the commit's tree. It is read lazily from the cache and is
	// valid until the source's next Poll.
	FS fs.FS
}

// Source follows one branch of one repository. Its methods are safe for
// concurrent use; they are serialized.
type Source struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	repo      *git.Repository
	compactAt int64

	lists, fetches, compactions atomic.Int64
}

// Open opens the cache at cfg.CacheDir, making it if needed, and points
// its remote at cfg.URL.
func Open(cfg Config) (*Source, error) {
	if cfg.URL == "" || cfg.Branch == "" || cfg.CacheDir == "" {
		return nil, errors.New("open git source: url, branch and cache directory are required")
	}
	if cfg.CacheMaxBytes == 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, log: cfg.Log}
	repo, err := OpenCache(cfg.CacheDir, cfg.URL)
	if err != nil {
		return nil, err
	}
	s.repo = repo
	return s, nil
}

// OpenCache opens or makes the bare cache at dir and points its remote
// "origin" at url. A compaction interrupted between its two renames left
// the old cache at dir.old: it is put back.
func OpenCache(dir, url string) (*git.Repository, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(dir + ".old"); err == nil {
			if err := os.Rename(dir+".old", dir); err != nil {
				return nil, fmt.Errorf("restore git cache %s: %w", dir, err)
			}
		}
	}
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("make git cache %s: %w", dir, err)
		}
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("open git cache %s: %w", dir, err)
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, fmt.Errorf("read git cache config: %w", err)
	}
	rc, ok := cfg.Remotes[remoteName]
	if ok && len(rc.URLs) == 1 && rc.URLs[0] == url {
		return repo, nil
	}
	cfg.Remotes[remoteName] = &config.RemoteConfig{Name: remoteName, URLs: []string{url}}
	if err := repo.SetConfig(cfg); err != nil {
		return nil, fmt.Errorf("set git cache remote: %w", err)
	}
	return repo, nil
}

// Stats returns a snapshot of the source's counters since it was created;
// it is safe to call while a poll runs.
func (s *Source) Stats() Stats {
	return Stats{Lists: s.lists.Load(), Fetches: s.fetches.Load(), Compactions: s.compactions.Load()}
}

// Branch returns the branch the source follows.
func (s *Source) Branch() string { return s.cfg.Branch }

// URL returns the repository's URL, its password (if any) redacted.
func (s *Source) URL() string { return RedactURL(s.cfg.URL) }

func (s *Source) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, s.cfg.Branch)
}

// Poll lists the remote's refs and returns the branch's tip. When the tip
// is known (the caller already has it, or it is in the cache), nothing is
// fetched; otherwise the branch alone is fetched, shallow, into the cache.
// changed reports whether the tip differs from known.
func (s *Source) Poll(ctx context.Context, known string) (tip string, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	remote, err := s.repo.Remote(remoteName)
	if err != nil {
		return "", false, RedactError(s.cfg.URL, fmt.Errorf("poll %s: %w", RedactURL(s.cfg.URL), err))
	}
	s.lists.Add(1)
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.cfg.Auth})
	if err != nil {
		return "", false, RedactError(s.cfg.URL, fmt.Errorf("list refs of %s: %w", RedactURL(s.cfg.URL), err))
	}
	want := plumbing.NewBranchReferenceName(s.cfg.Branch)
	var head plumbing.Hash
	for _, r := range refs {
		if r.Name() == want {
			head = r.Hash()
			break
		}
	}
	if head.IsZero() {
		return "", false, fmt.Errorf("poll %s: %s: %w", RedactURL(s.cfg.URL), s.cfg.Branch, ErrBranchNotFound)
	}
	if head.String() == known {
		return known, false, nil
	}
	if _, err := s.repo.CommitObject(head); err == nil {
		// Already in the cache (an earlier fetch, or a restart).
		return head.String(), true, s.setRef(s.trackingRef(), head)
	}
	fetched, err := s.fetch(ctx, remote)
	if err != nil {
		return "", false, err
	}
	return fetched.String(), fetched.String() != known, nil
}

// fetch fetches the branch, shallow, and compacts the cache if it has
// grown past its bound. It returns the fetched tip, which may be newer
// than the listed one if a push came in between.
func (s *Source) fetch(ctx context.Context, remote *git.Remote) (plumbing.Hash, error) {
	s.fetches.Add(1)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(s.cfg.Branch), s.trackingRef()))
	start := time.Now()
	err := remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Depth:    s.cfg.Depth,
		Tags:     git.NoTags,
		Force:    true,
		Auth:     s.cfg.Auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, RedactError(s.cfg.URL, fmt.Errorf("fetch %s from %s: %w", s.cfg.Branch, RedactURL(s.cfg.URL), err))
	}
	ref, err := s.repo.Reference(s.trackingRef(), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read fetched ref: %w", err)
	}
	s.log.Info("fetched", "url", RedactURL(s.cfg.URL), "branch", s.cfg.Branch, "commit", ref.Hash().String(), "duration", time.Since(start))
	if err := s.maybeCompact(); err != nil {
		// The fetch itself worked: a cache that stays large is not a reason
		// to refuse the commit.
		s.log.Warn("compact git cache", "err", err)
	}
	return ref.Hash(), nil
}

func (s *Source) setRef(name plumbing.ReferenceName, h plumbing.Hash) error {
	if err := s.repo.Storer.SetReference(plumbing.NewHashReference(name, h)); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

// Keep pins hash (the commit the node applied) in the cache: compaction
// keeps it, and Commit can read it after a restart while the remote is
// down.
func (s *Source) Keep(hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setRef(keepRef, plumbing.NewHash(hash))
}

// Kept returns the commit pinned by Keep, or "" if none.
func (s *Source) Kept() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.repo.Reference(keepRef, true)
	if err != nil {
		return ""
	}
	return ref.Hash().String()
}

// Commit reads the commit hash from the cache and checks its signature.
// A commit that does not verify returns a *SignatureError. A commit
// missing from the cache returns an error wrapping
// plumbing.ErrObjectNotFound.
func (s *Source) Commit(hash string) (*Commit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := plumbing.NewHash(hash)
	if h.String() != hash {
		return nil, fmt.Errorf("read commit %q: not a full hash", hash)
	}
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	out := &Commit{
		Hash:      hash,
		Author:    c.Author.Name + " <" + c.Author.Email + ">",
		Committer: c.Committer.Name + " <" + c.Committer.Email + ">",
		When:      c.Committer.When,
		Message:   c.Message,
	}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	if s.cfg.Verifier != nil {
		signer, err := s.cfg.Verifier.Verify(c)
		if err != nil {
			return nil, err
		}
		out.Signer = signer
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	out.FS = newTreeFS(tree, s.repo.Storer, c.Committer.When, &s.mu)
	return out, nil
}
