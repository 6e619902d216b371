// Package doccheck guards fsgit's comment rule from the style guide: every
// package has a package doc comment, and every exported top-level name (func,
// method on an exported type, type, var, const) has a doc comment that starts
// with that name. A const or var group may instead carry one comment for the
// whole group.
//
// The package holds no code of its own: its test parses every non-test .go
// file of the module and fails with one line per missing or misplaced
// comment, so that "go test ./internal/doccheck" keeps the rule enforced.
package doccheck
