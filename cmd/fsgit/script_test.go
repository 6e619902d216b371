//go:build !lean

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the fsgit command inside testscript
// scripts, running run() in the child process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fsgit": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScript runs the CLI scripts in testdata/script: each .txtar holds a
// site and asserts an exit code, and the position and words of vet's
// messages.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// The repository's root, for scripts that start from its
			// example site.
			root, err := filepath.Abs("../..")
			env.Setenv("FSGIT_REPO", root)
			return err
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
		},
	})
}

// cmdExitCode runs a command and asserts its exact exit status:
//
//	exitcode 1 fsgit vet --site sites/bad
//
// Its stdout and stderr are kept for the stdout and stderr commands.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}
