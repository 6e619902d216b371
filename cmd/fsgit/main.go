// Command fsgit is a GitOps, pull-based reconciler for a hybrid ML feature
// store: it evaluates a CUE site for a node, observes the node, and converges
// it. See README.md for the subcommands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/crash"
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

// applyBallast is the size of the ballast applyGC holds: apply's heap
// huge pages (applyHeap), so that the first collection comes when the
// allocations have about filled them.
const applyBallast = applyHeap

// applyGC sets the garbage collector for apply, a short-lived command, and
// returns a ballast the command must keep reachable while it runs
// (runtime.KeepAlive after its work): an allocation of applyBallast bytes
// that nothing reads or writes. The collector paces itself by the heap it
// finds live, and the ballast counts in it, so the first collection waits
// until the heap has grown by about the ballast's size, not by the 4 MB a
// fresh process starts with, and later ones come when it has grown by its
// live size plus the ballast. The ballast costs no memory: the runtime
// takes an allocation that large from a fresh mapping and does not touch
// it, and neither does anything else.
//
// With the heap on huge pages (heapHugePages) the collections, not page
// faults, were the larger cost: a first run of 1,000 files collected 13
// times, a no-op from the cached catalog 5 times. Against the defaults,
// interleaved (medians of 25 and 41 runs, load 7-9): task-clock of a
// first run 482 → 423 ms, of a no-op 129 → 119 ms. GOGC=off with a memory
// limit (debug.SetMemoryLimit) gained as much, but it has no proportional
// fallback: a site whose live heap nears the limit would collect over and
// over (the runtime lets that take half of the CPU), where the ballast
// only adds its size to each goal. GOGC or GOMEMLIMIT in the environment
// wins (a ballast would count in GOMEMLIMIT's budget), and there is no
// ballast when the heap has that much idle memory already (a second
// command in one process: tests run apply in-process), which the runtime
// would hand out, zeroing, and so touching, every page.
func applyGC() []byte {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapIdle >= applyBallast {
		return nil
	}
	return make([]byte, applyBallast)
}

func runCommand(args []string) int {
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

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fsgit",
		Short:         "GitOps reconciler for a hybrid ML feature store",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion().line(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(
		newVersionCmd(),
		newInitCmd(),
		newApplyCmd(),
		newPlanCmd(),
		newVetCmd(),
		newRenderCmd(),
		newVerifyCmd(),
		newAgentCmd(),
		newStatusCmd(),
		newServeCmd(),
		newRunCmd(),
		newHistoryCmd(),
		newDiffCmd(),
		newHoldCmd(),
		newReleaseCmd(),
		newRollbackCmd(),
		// Each subcommand lives in its own file and is added here.
	)
	return root
}
