package sitefiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DirSource returns the Source of the site in a directory, as
// desired.LoadDir loads it (and [KeyDir] keys it): the repository around
// it when there is one (the nearest directory above it that has a
// cue.mod/), the directory alone otherwise, as sites/<name> of a
// repository that has nothing else. Positions name files relative to the
// current directory.
func DirSource(siteDir string) (Source, error) {
	abs, err := filepath.Abs(siteDir)
	if err != nil {
		return Source{}, fmt.Errorf("load site %s: %w", siteDir, err)
	}
	if err := checkSiteDir(siteDir, abs); err != nil {
		return Source{}, err
	}
	cwd, _ := os.Getwd()
	rel := func(p string) string {
		if cwd == "" {
			return p
		}
		if r, err := filepath.Rel(cwd, p); err == nil {
			return filepath.ToSlash(r)
		}
		return p
	}
	root := findModuleRoot(abs)
	if root == "" {
		// No repository around the site: load its directory alone, as
		// sites/<name> of a repository that has nothing else.
		inner := "sites/" + filepath.Base(abs)
		return Source{
			FS:      dirAsSite(abs, inner),
			SiteDir: inner,
			Display: func(name string) string {
				return path.Join(rel(abs), strings.TrimPrefix(strings.TrimPrefix(name, inner), "/"))
			},
		}, nil
	}
	r, err := filepath.Rel(root, abs)
	if err != nil {
		return Source{}, fmt.Errorf("load site %s: %w", siteDir, err)
	}
	return Source{
		FS:      os.DirFS(root),
		SiteDir: filepath.ToSlash(r),
		Display: func(name string) string { return path.Join(rel(root), name) },
	}, nil
}

// checkSiteDir refuses a site directory that is missing, not a directory
// or holds no .cue file, naming it as the user gave it (dir; abs is where
// it resolves).
func checkSiteDir(dir, abs string) error {
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missingSiteError{dir: dir}
	case err != nil:
		return fmt.Errorf("site %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("site %s is not a directory: --site names the directory of a site's .cue files", dir)
	}
	if m, err := filepath.Glob(filepath.Join(abs, "*.cue")); err == nil && len(m) == 0 {
		return fmt.Errorf("site %s has no .cue files: a site is a directory of CUE files (fsgit init makes one)", dir)
	}
	return nil
}

// missingSiteError is a site directory that does not exist; it is an
// fs.ErrNotExist.
type missingSiteError struct{ dir string }

func (e missingSiteError) Error() string {
	return fmt.Sprintf("site %s: no such directory (--site names the directory of a site's .cue files; fsgit init makes one)", e.dir)
}

// Is makes the error an fs.ErrNotExist.
func (e missingSiteError) Is(target error) bool { return target == fs.ErrNotExist }

// findModuleRoot returns the nearest directory from dir up that has a
// cue.mod/ directory, or "" when none has.
func findModuleRoot(dir string) string {
	for {
		if fi, err := os.Stat(filepath.Join(dir, "cue.mod")); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// dirAsSite returns dir's tree as if it sat under inner (a slash path),
// as a site of a repository that has nothing else. Files are read when
// the loader reads them, so that a file too big is refused before it is
// read.
func dirAsSite(dir, inner string) fs.FS {
	return &innerFS{inner: inner, dir: os.DirFS(dir)}
}

// innerFS shows the tree of dir under the directory inner, and nothing
// else.
type innerFS struct {
	inner string
	dir   fs.FS
}

// Open implements fs.FS.
func (f *innerFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == f.inner {
		return f.dir.Open(".")
	}
	if rest, ok := strings.CutPrefix(name, f.inner+"/"); ok {
		return f.dir.Open(rest)
	}
	if IsUnder(f.inner, name) {
		// An ancestor of inner: it holds the next directory down.
		child, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f.inner, name), "/"), "/")
		if name == "." {
			child, _, _ = strings.Cut(f.inner, "/")
		}
		return &memDir{info: memInfo{name: path.Base(name), dir: true}, entries: []fs.DirEntry{fs.FileInfoToDirEntry(memInfo{name: child, dir: true})}}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
