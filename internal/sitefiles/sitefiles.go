// Package sitefiles finds the files a site is evaluated from, and the
// site's content key, without linking CUE: the tree collection and key
// of package desired (which evaluates the site, and links CUE) live here,
// so that a binary that only needs the key (a node's fsgit apply --once,
// reading its compiled catalog from the cache keyed by it) stays lean.
//
// A site's load tree is the module file and schema embedded in the binary,
// the profiles (the repository's schema/profile/ when it has one, the
// embedded ones otherwise), and the repository's .cue files that CUE may
// read for the site ([Collect]). [Key] hashes that tree; [KeyDir] finds
// a directory's site as desired.LoadDir does ([DirSource]) and hashes it.
// Nothing here reads or parses CUE: files are told apart by their names.
package sitefiles

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fsgit/fsgit/schema"
)

// Source is where a site is loaded from.
type Source struct {
	// FS is the repository tree's root: it has sites/, maybe cue.mod/ and
	// schema/profile/.
	FS fs.FS
	// SiteDir is the site's directory within FS, e.g. "sites/example".
	SiteDir string
	// Revision identifies the tree (a commit hash). When empty, desired's
	// Load sets it to "sha256:<hex>" of the site's files.
	Revision string
	// Display, when set, maps a slash path within FS to the name printed
	// in positions. By default positions name files by their path within
	// FS.
	Display func(name string) string
	// Limits bound what evaluating the site may cost; zero fields take
	// their defaults.
	Limits Limits
	// Node, when set, is the one node the caller needs a catalog of: the
	// other nodes' entries are left out of the evaluation where they cannot
	// change its catalog (desired's prune.go), and the Site serves that
	// node only.
	Node string
}

// Origin says where a file of the load tree came from, which decides
// how positions in it are shown and which position of an error is the most
// useful one (the site's, then a profile's, then the schema's).
type Origin int

// The origins of a file of the load tree.
const (
	// OriginSite is a file of the repository outside schema/profile/: the
	// site's, a shared package's, the repository root's.
	OriginSite Origin = iota
	// OriginProfile is a profile: the repository's schema/profile/, or
	// the embedded profiles when it has none.
	OriginProfile
	// OriginSchema is the embedded module file or schema.
	OriginSchema
)

// Tree is a site's load tree, as [Collect] found it.
type Tree struct {
	// Files are the load tree's files by slash path from the repository
	// root: what CUE is given, and what [Key] hashes.
	Files map[string][]byte
	// Origins says where each file of Files came from.
	Origins map[string]Origin
	// Repo holds the names of the files that were read from the
	// repository (not embedded in the binary).
	Repo map[string]bool
	// RepoHash is the hex SHA-256 of the files read from the repository,
	// by path, in path order.
	RepoHash string
}

// CleanSiteDir returns the site directory as a clean slash path, or an
// error if it is not a directory of the repository outside schema/ and
// cue.mod/.
func CleanSiteDir(dir string) (string, error) {
	siteDir := path.Clean(filepath.ToSlash(dir))
	if !fs.ValidPath(siteDir) || siteDir == "." || IsUnder(siteDir, "schema") || IsUnder(siteDir, "cue.mod") {
		return "", fmt.Errorf("site directory %q must be a directory of the repository outside schema/ and cue.mod/", dir)
	}
	return siteDir, nil
}

// Collect builds the load tree of the site in siteDir (a clean slash
// path, see [CleanSiteDir]) of the repository fsys: the embedded module
// file and schema, the profiles (the tree's, or the embedded ones), and
// the tree's .cue files under the site directory's top-level directory
// (so that a site may import a package shared by sites) and in the site
// directory's ancestors (CUE reads a package's files from its parents
// too). A file bigger than maxFile (when not negative) is not read: it is
// listed in big with its size when big is not nil (whether it matters
// depends on whether the site reads it), and is an error otherwise.
func Collect(fsys fs.FS, siteDir string, maxFile int64, big map[string]int64) (*Tree, error) {
	files := map[string][]byte{"cue.mod/module.cue": schema.ModuleFile()}
	origins := map[string]Origin{"cue.mod/module.cue": OriginSchema}
	tree := map[string]bool{}
	for _, name := range schema.SchemaFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			return nil, fmt.Errorf("read embedded schema: %w", err)
		}
		files["schema/"+name] = b
		origins["schema/"+name] = OriginSchema
	}
	var fromTree []string
	add := func(name string) error {
		if _, dup := files[name]; dup {
			return nil
		}
		if err := checkSize(fsys, name, maxFile); err != nil {
			var tb *tooBigError
			if errors.As(err, &tb) && big != nil {
				big[name] = tb.size
				return nil
			}
			return err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		files[name] = b
		fromTree = append(fromTree, name)
		return nil
	}
	walk := func(top string, origin Origin) (bool, error) {
		found := false
		err := fs.WalkDir(fsys, top, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				if name == top && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return err
			}
			base := d.Name()
			if d.IsDir() {
				if name != top && (strings.HasPrefix(base, ".") || base == "cue.mod" || base == "node_modules") {
					return fs.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(base, ".cue") || strings.HasPrefix(base, ".") {
				return nil
			}
			found = true
			origins[name] = origin
			return add(name)
		})
		return found, err
	}

	if ok, err := walk("schema/profile", OriginProfile); err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	} else if !ok {
		for _, name := range schema.ProfileFiles() {
			b, err := fs.ReadFile(schema.Files(), name)
			if err != nil {
				return nil, fmt.Errorf("read embedded profiles: %w", err)
			}
			files["schema/"+name] = b
			origins["schema/"+name] = OriginProfile
		}
	}
	top, _, _ := strings.Cut(siteDir, "/")
	if _, err := fs.Stat(fsys, siteDir); err != nil {
		return nil, fmt.Errorf("site directory: %w", err)
	}
	if _, err := walk(top, OriginSite); err != nil {
		return nil, fmt.Errorf("read site files: %w", err)
	}
	// Files directly in the repository root belong to the root package,
	// which a site in sites/x shares only if it has the same package name.
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read repository root: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".cue") && !strings.HasPrefix(e.Name(), ".") {
			origins[e.Name()] = OriginSite
			if err := add(e.Name()); err != nil {
				return nil, fmt.Errorf("read %s: %w", e.Name(), err)
			}
		}
	}

	sort.Strings(fromTree)
	h := sha256.New()
	for _, name := range fromTree {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(files[name]))
		h.Write(files[name])
	}
	for _, name := range fromTree {
		tree[name] = true
	}
	return &Tree{Files: files, Origins: origins, Repo: tree, RepoHash: hex.EncodeToString(h.Sum(nil))}, nil
}

// IsUnder reports whether name is dir or inside it (slash paths; "."
// holds everything).
func IsUnder(name, dir string) bool {
	return dir == "." || name == dir || strings.HasPrefix(name, dir+"/")
}
