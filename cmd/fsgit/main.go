// Command fsgit is a GitOps, pull-based reconciler for a hybrid ML feature
// store: it evaluates a CUE site for a node, observes the node, and converges
// it. See README.md for the subcommands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/fsgit/fsgit/internal/crash"
	// Prepares apply's heap before the other packages initialize.
	_ "github.com/fsgit/fsgit/internal/startheap"
)

// exitError carries a process exit code out of a subcommand. Subcommands
// return it for Puppet's detailed exit codes (2, 4, 6) and for "invalid"
// (1) after they have printed their own message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() { os.Exit(run(os.Args[1:])) }

// run executes the command line and returns the exit code. It is separate
// from main so that testscript can call it in-process. A panic becomes
// exit code 1, one line on stderr and a crash file (internal/crash):
// never the runtime's exit code 2, which means "changes applied".
func run(args []string) int {
	return guarded(os.Stderr, func() int { return runCommand(args) })
}

// guarded runs f and returns its exit code, or, should f panic, reports
// the panic on stderr (one line) and in a crash file, and returns 1.
func guarded(stderr io.Writer, f func() int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = crash.Report(stderr, r, debug.Stack())
		}
	}()
	return f()
}

// evalGC sets the garbage collector for a command that evaluates a whole
// site and exits (vet, plan): the heap may grow to three times the live
// data (GOGC=200) instead of twice. At 1,000 nodes that spares more
// collections than the page faults of the bigger heap cost on this kind
// of machine, where a fault costs ~10-50 µs (vet 1.67-1.71 s against
// 1.73-1.83 s, plan 1.91-2.03 s against 1.99-2.15 s, interleaved on a quiet
// machine); GOGC=300 and 400 cost more than they spare. GOGC in the
// environment wins.
//
// It also backs the heap with huge pages where the kernel leaves that to
// the process (heapHugePages): at 1,000 nodes vet touches ~50,000 fresh
// 4 KiB pages otherwise.
func evalGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	heapHugePages(evalHeap)
}

func runCommand(args []string) int {
	if code, done := beforeCommand(args); done {
		return code
	}
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "fsgit:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "fsgit:", err)
	return 1
}
