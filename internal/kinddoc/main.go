// Command kinddoc writes, from the kinds of schema/kinds.cue (#Kinds),
// docs/kinds.md (a table of every kind's fields, their constraints,
// defaults and doc comments as the schema says them, and its example,
// under the hand-written text of kinds.md.tmpl) and schema/resources.cue
// (#Resources, a pattern per kind). Run it from the repository's root
// after changing the schema:
//
//	go run ./internal/kinddoc
//
// A test fails while either file differs from what it writes.
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
	if err := run("docs/kinds.md", "schema/resources.cue"); err != nil {
		fmt.Fprintln(os.Stderr, "kinddoc:", err)
		os.Exit(1)
	}
}

// run writes the page to out and #Resources to resourcesOut.
func run(out, resourcesOut string) error {
	b, err := page()
	if err != nil {
		return err
	}
	r, err := resourcesFile()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(resourcesOut, r, 0o644)
}

// kindsSource returns the embedded schema/kinds.cue.
func kindsSource() ([]byte, error) {
	src, err := fs.ReadFile(schema.Files(), "kinds.cue")
	if err != nil {
		return nil, fmt.Errorf("read schema/kinds.cue: %w", err)
	}
	return src, nil
}

// page renders docs/kinds.md from the embedded schema.
func page() ([]byte, error) {
	src, err := kindsSource()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := render(&b, src, pageTemplate); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// resourcesFile writes schema/resources.cue from the embedded schema.
func resourcesFile() ([]byte, error) {
	src, err := kindsSource()
	if err != nil {
		return nil, err
	}
	return resources(src)
}
