package sitefiles

import (
	"fmt"
	"io/fs"
	"time"
)

// Limits bound what evaluating a site may cost, so that a hostile or
// mistaken commit (a label chain 100,000 levels deep, a huge generated
// file, a comprehension that multiplies) is refused with a clear message
// instead of holding a CPU and gigabytes of memory for minutes. A zero
// field takes its default; a negative one disables that limit.
//
// Package desired checks the limits (only MaxFileBytes matters here:
// [Collect] does not read a file bigger than it), in two steps. Before
// CUE sees anything, the size of each file and of the site, and the
// nesting depth of each file, are checked by reading the files and
// scanning their tokens: no parse tree is built, so the check costs a few
// milliseconds even for the inputs it refuses, and the inputs whose
// evaluation cost grows with depth (CUE's cost grows faster than linearly
// with it: 33 s at 20,000 levels) cannot reach the evaluator. Then
// evaluation runs under a time budget, for what a cheap check cannot
// foresee.
type Limits struct {
	// MaxFileBytes bounds each .cue file of the site (and of the tree's
	// profiles).
	MaxFileBytes int64
	// MaxSiteBytes bounds the .cue files of the site and the tree's
	// profiles together.
	MaxSiteBytes int64
	// MaxDepth bounds the nesting depth of a file: one level for each
	// field label of a chain (a: b: c: 1 is three deep) and for each
	// {, [ or ( around it.
	MaxDepth int
	// MaxTerms bounds the terms of one chain of binary operators (a | b
	// | c, 1 + 2 + 3), whose evaluation time also grows faster than
	// their number.
	MaxTerms int
	// EvalTimeout is the time budget of evaluating the site: loading it
	// and computing catalogs, all calls on one Site together.
	EvalTimeout time.Duration
}

// The defaults are well above what a real site needs and well below what
// hurts. The example site with the built-in profiles is 64 KB, nests 15
// levels and has expressions of 5 terms at most; a 300-node fleet adds
// about 20 KB of nodes and evaluates for vet in about a second. What the
// pre-checks let through costs at most about this much: a 1 MiB file of
// nothing but 256-term expressions took 17 s and 220 MB on a busy 2-core
// machine (4 MiB: 36 s and 770 MB), which the time budget bounds.
const (
	// DefaultMaxFileBytes is the default of Limits.MaxFileBytes: 1 MiB.
	DefaultMaxFileBytes = 1 << 20
	// DefaultMaxSiteBytes is the default of Limits.MaxSiteBytes: 8 MiB.
	DefaultMaxSiteBytes = 8 << 20
	// DefaultMaxDepth is the default of Limits.MaxDepth.
	DefaultMaxDepth = 64
	// DefaultMaxTerms is the default of Limits.MaxTerms.
	DefaultMaxTerms = 256
	// DefaultEvalTimeout is the default of Limits.EvalTimeout.
	DefaultEvalTimeout = 30 * time.Second
)

// WithDefaults returns the limits with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxSiteBytes == 0 {
		l.MaxSiteBytes = DefaultMaxSiteBytes
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxTerms == 0 {
		l.MaxTerms = DefaultMaxTerms
	}
	if l.EvalTimeout == 0 {
		l.EvalTimeout = DefaultEvalTimeout
	}
	return l
}

// tooBigError is a file bigger than the limit per file; it was not read.
type tooBigError struct {
	name string // slash path within the source's FS
	size int64
}

func (e *tooBigError) Error() string { return fmt.Sprintf("%s: %d bytes", e.name, e.size) }

// checkSize refuses, before it is read, a file bigger than max (when
// positive).
func checkSize(fsys fs.FS, name string, max int64) error {
	if max < 0 {
		return nil
	}
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return err
	}
	if fi.Size() > max {
		return &tooBigError{name: name, size: fi.Size()}
	}
	return nil
}
