package desired

import "github.com/fsgit/fsgit/internal/sitefiles"

// Key returns the content key of the site of src: "sha256:<hex>" over
// every input that Load evaluates, computed without evaluating CUE. It is
// [sitefiles.Key], which says what the inputs are; package sitefiles
// computes it without linking CUE, for binaries that only need the key.
//
// Two sources with the same key evaluate to the same site, so a node's
// catalog computed from one serves the other (for the same fsgit build).
// Unlike the revision, the key does not depend on src.Revision.
func Key(src Source) (string, error) { return sitefiles.Key(src) }

// KeyDir returns the content key of the site in a directory, found as
// LoadDir finds it: for the same directory and files,
// KeyDir(dir) == LoadDir(dir).Key(). It is [sitefiles.KeyDir].
func KeyDir(siteDir string) (string, error) { return sitefiles.KeyDir(siteDir) }

// Key returns the site's content key (see [Key]) for the files it was
// evaluated from.
func (s *Site) Key() string { return s.key }
