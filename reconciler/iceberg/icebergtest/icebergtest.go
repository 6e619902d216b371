// Package icebergtest builds the fsgit-iceberg helper for tests that drive
// the iceberg kinds or fsgit verify through it.
package icebergtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// Build compiles cmd/fsgit-iceberg into a new temporary directory and
// returns its path and a function that removes the directory. Call it
// once per test package (from TestMain) and point $FSGIT_ICEBERG at it.
func Build() (string, func(), error) {
	dir, err := os.MkdirTemp("", "fsgit-iceberg-")
	if err != nil {
		return "", nil, fmt.Errorf("make a directory for %s: %w", iceberg.Executable, err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin, err := BuildTo(dir)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return bin, cleanup, nil
}

// BuildTo compiles cmd/fsgit-iceberg into dir and returns its path.
func BuildTo(dir string) (string, error) {
	bin := filepath.Join(dir, iceberg.Executable)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/fsgit/fsgit/cmd/fsgit-iceberg")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", iceberg.Executable, err, out)
	}
	return bin, nil
}

// Setenv builds the helper and sets $FSGIT_ICEBERG to it. It panics when
// the build fails: a test package that needs the helper cannot run
// without it.
func Setenv() (cleanup func()) {
	bin, cleanup, err := Build()
	if err != nil {
		panic(err)
	}
	if err := os.Setenv(iceberg.EnvExecutable, bin); err != nil {
		cleanup()
		panic(err)
	}
	return cleanup
}
