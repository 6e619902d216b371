package sitefiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
)

// keyFormat names the way ContentKey hashes; change it when that way
// changes, so that keys computed the old way never match.
const keyFormat = "fsgit-site-key/1"

// Key returns the content key of the site of src: "sha256:<hex>" over
// every input that desired.Load evaluates, computed without evaluating
// (or linking) CUE. The inputs are the files Load reads (the site's tree:
// its .cue files, the profiles of schema/profile/ when the tree has them)
// and the files the binary embeds (the module file, the schema with its
// version, the default profiles), with the site directory's path. A
// tree's cue.mod/module.cue is not an input: Load uses the embedded one,
// and a cue.mod/ only decides where the repository's root is, which is in
// the paths hashed.
//
// Two sources with the same key evaluate to the same site, so a node's
// catalog computed from one serves the other (for the same fsgit build).
// Unlike the revision, the key does not depend on src.Revision.
func Key(src Source) (string, error) {
	siteDir, err := CleanSiteDir(src.SiteDir)
	if err != nil {
		return "", fmt.Errorf("key site: %w", err)
	}
	t, err := Collect(src.FS, siteDir, src.Limits.WithDefaults().MaxFileBytes, map[string]int64{})
	if err != nil {
		return "", fmt.Errorf("key site %s: %w", siteDir, err)
	}
	return ContentKey(siteDir, t.Files), nil
}

// KeyDir returns the content key of the site in a directory, found as
// desired.LoadDir finds it ([DirSource]): for the same directory and
// files, KeyDir(dir) == desired.LoadDir(dir).Key().
func KeyDir(siteDir string) (string, error) {
	src, err := DirSource(siteDir)
	if err != nil {
		return "", err
	}
	return Key(src)
}

// ContentKey hashes the site directory (a clean slash path) and every
// file of its load tree ([Tree.Files]), by path, in path order, into
// "sha256:<hex>". Lengths delimit every field, so no two inputs hash
// alike by moving bytes between a name and a content.
func ContentKey(siteDir string, files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d:%s\x00%d\x00", keyFormat, len(siteDir), siteDir, len(names))
	for _, name := range names {
		fmt.Fprintf(h, "%d:%s\x00%d\x00", len(name), name, len(files[name]))
		h.Write(files[name])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
