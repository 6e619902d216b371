// Command kinddoc writes docs/kinds.md from schema/kinds.cue: a table of
// every kind's fields (their constraints, defaults and doc comments, as
// the schema says them) under the hand-written text of kinds.md.tmpl.
// Run it from the repository's root after changing the schema:
//
//	go run ./internal/kinddoc
//
// A test fails while docs/kinds.md differs from what it writes.
package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"io/fs"
	"os"

	"github.com/fsgit/fsgit/schema"
)

//go:embed kinds.md.tmpl
var pageTemplate string

func main() {
	if err := run("docs/kinds.md"); err != nil {
		fmt.Fprintln(os.Stderr, "kinddoc:", err)
		os.Exit(1)
	}
}

// run writes the page to out.
func run(out string) error {
	b, err := page()
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// page renders docs/kinds.md from the embedded schema.
func page() ([]byte, error) {
	src, err := fs.ReadFile(schema.Files(), "kinds.cue")
	if err != nil {
		return nil, fmt.Errorf("read schema/kinds.cue: %w", err)
	}
	var b bytes.Buffer
	if err := render(&b, src, pageTemplate); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
