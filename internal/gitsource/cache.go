package gitsource

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// CacheSize returns the bytes held by the objects of the bare cache at
// dir.
func CacheSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// maybeCompact compacts the cache when it holds more than its bound.
func (s *Source) maybeCompact() error {
	size, err := CacheSize(s.cfg.CacheDir)
	if err != nil {
		return fmt.Errorf("measure git cache: %w", err)
	}
	if size <= max(s.cfg.CacheMaxBytes, s.compactAt) {
		return nil
	}
	return s.compact(size)
}

// compact rebuilds the cache with only the commits its refs name (the
// fetched tip and the applied commit), their trees and blobs, without
// history, then swaps it in. Fetched packs accumulate every version of
// every file; after compaction the cache is about two trees.
func (s *Source) compact(before int64) error {
	dir := s.cfg.CacheDir
	tmp := dir + ".compact"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear %s: %w", tmp, err)
	}
	fresh, err := git.PlainInit(tmp, true)
	if err != nil {
		return fmt.Errorf("make compacted cache: %w", err)
	}
	refs, err := s.repo.References()
	if err != nil {
		return fmt.Errorf("list cache refs: %w", err)
	}
	var kept []*plumbing.Reference
	err = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			kept = append(kept, r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list cache refs: %w", err)
	}
	copied := map[plumbing.Hash]bool{}
	var shallow []plumbing.Hash
	for _, r := range kept {
		if err := copyCommit(s.repo.Storer, fresh.Storer, r.Hash(), copied); err != nil {
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				continue // a ref to a commit that was never fetched
			}
			return fmt.Errorf("copy %s into the compacted cache: %w", r.Name(), err)
		}
		shallow = append(shallow, r.Hash())
		if err := fresh.Storer.SetReference(r); err != nil {
			return fmt.Errorf("set %s in the compacted cache: %w", r.Name(), err)
		}
	}
	if err := fresh.Storer.SetShallow(shallow); err != nil {
		return fmt.Errorf("set shallow commits: %w", err)
	}
	cfg, err := s.repo.Config()
	if err != nil {
		return fmt.Errorf("read git cache config: %w", err)
	}
	if err := fresh.SetConfig(cfg); err != nil {
		return fmt.Errorf("write compacted cache config: %w", err)
	}

	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("clear %s: %w", old, err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("swap compacted cache in: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return errors.Join(fmt.Errorf("swap compacted cache in: %w", err), os.Rename(old, dir))
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return fmt.Errorf("open compacted cache: %w", err)
	}
	s.repo = repo
	s.compactions.Add(1)
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("remove old cache: %w", err)
	}
	after, _ := CacheSize(dir)
	// A site larger than half the bound would otherwise be compacted after
	// every fetch.
	s.compactAt = 2 * after
	s.log.Info("compacted git cache", "before", before, "after", after, "commits", len(shallow))
	return nil
}

// copyCommit copies a commit, its tree, subtrees and blobs (not its
// parents) from src to dst.
func copyCommit(src, dst storer.EncodedObjectStorer, h plumbing.Hash, copied map[plumbing.Hash]bool) error {
	c, err := object.GetCommit(src, h)
	if err != nil {
		return err
	}
	if err := copyObject(src, dst, h, copied); err != nil {
		return err
	}
	return copyTree(src, dst, c.TreeHash, copied)
}

func copyTree(src, dst storer.EncodedObjectStorer, h plumbing.Hash, copied map[plumbing.Hash]bool) error {
	if copied[h] {
		return nil
	}
	t, err := object.GetTree(src, h)
	if err != nil {
		return err
	}
	if err := copyObject(src, dst, h, copied); err != nil {
		return err
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			err = copyTree(src, dst, e.Hash, copied)
		case filemode.Submodule:
			// A submodule's commit lives in another repository.
		default:
			err = copyObject(src, dst, e.Hash, copied)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copyObject(src, dst storer.EncodedObjectStorer, h plumbing.Hash, copied map[plumbing.Hash]bool) error {
	if copied[h] {
		return nil
	}
	o, err := src.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return err
	}
	if _, err := dst.SetEncodedObject(o); err != nil {
		return err
	}
	copied[h] = true
	return nil
}
