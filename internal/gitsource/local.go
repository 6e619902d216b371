package gitsource

import (
	"fmt"
	"io/fs"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Local is a repository on this machine read by revision, with no checkout:
// fsgit plan evaluates a site at two revisions of the repository it runs in.
type Local struct {
	repo *git.Repository
	mu   sync.Mutex
}

// OpenLocal opens the repository that contains dir (a work tree or a bare
// repository), looking in parent directories as git does.
func OpenLocal(dir string) (*Local, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", dir, err)
	}
	return &Local{repo: repo}, nil
}

// Tree resolves rev (a branch, tag, full or short hash, or an expression
// such as HEAD~1) to a commit and returns the commit's full hash and its
// tree as a read-only fs.FS.
func (l *Local) Tree(rev string) (fs.FS, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, err := l.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, "", fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	c, err := l.repo.CommitObject(*h)
	if err != nil {
		return nil, "", fmt.Errorf("read commit %s: %w", h, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, "", fmt.Errorf("read tree of %s: %w", h, err)
	}
	return newTreeFS(tree, l.repo.Storer, c.Committer.When, &l.mu), h.String(), nil
}

// MergeBase returns the best common ancestor of two revisions, for a plan
// against the merge base of a pull request.
func (l *Local) MergeBase(a, b string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ha, err := l.repo.ResolveRevision(plumbing.Revision(a))
	if err != nil {
		return "", fmt.Errorf("resolve revision %q: %w", a, err)
	}
	hb, err := l.repo.ResolveRevision(plumbing.Revision(b))
	if err != nil {
		return "", fmt.Errorf("resolve revision %q: %w", b, err)
	}
	ca, err := l.repo.CommitObject(*ha)
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", ha, err)
	}
	cb, err := l.repo.CommitObject(*hb)
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", hb, err)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	if len(bases) == 0 {
		return "", fmt.Errorf("%s and %s have no common ancestor", a, b)
	}
	return bases[0].Hash.String(), nil
}
