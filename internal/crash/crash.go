// Package crash turns a panic that reaches the top of an fsgit goroutine
// into what an operator can act on: one line on standard error naming a
// crash file, the details (panic value, stack, version, command line) in
// that file, and exit code 1. Exit code 2 means "changes applied" to
// fsgit's callers, and is what the Go runtime uses for an uncaught panic,
// so no panic may leave fsgit uncaught.
//
// Crash files go to $FSGIT_CRASH_DIR if set, else to $STATE_DIRECTORY
// (set by systemd's StateDirectory=, /var/lib/fsgit for fsgit.service),
// else to the system's temporary directory; they are named
// fsgit-crash-<UTC time>-<pid>.txt.
package crash

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// ExitCode is the exit code of a crashed fsgit.
const ExitCode = 1

// Dir returns the directory crash files go to.
func Dir() string {
	if d := os.Getenv("FSGIT_CRASH_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd may list several, separated by colons.
		d, _, _ = strings.Cut(d, ":")
		return d
	}
	return os.TempDir()
}

// Write records a panic's details in a new crash file in Dir and returns
// its path.
func Write(value any, stack []byte) (string, error) {
	dir := Dir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	name := fmt.Sprintf("fsgit-crash-%s-%d.txt", now.Format("20060102T150405.000Z"), os.Getpid())
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	version := "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
	}
	_, err = fmt.Fprintf(f, "fsgit crashed at %s\nversion: %s\ncommand: %q\npanic: %v\n\n%s", now.Format(time.RFC3339Nano), version, os.Args, value, stack)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// Report writes the crash file for a recovered panic and says so on w, in
// one line. It returns ExitCode.
func Report(w io.Writer, value any, stack []byte) int {
	msg := strings.Join(strings.Fields(fmt.Sprint(value)), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	path, err := Write(value, stack)
	if err != nil {
		fmt.Fprintf(w, "fsgit: internal error: %s (no crash file: %v)\n", msg, err)
	} else {
		fmt.Fprintf(w, "fsgit: internal error: %s (details in %s)\n", msg, path)
	}
	return ExitCode
}

// Exit is deferred at the top of a goroutine: a panic that reaches it is
// reported (Report, on standard error) and the process exits with
// ExitCode.
func Exit() {
	if r := recover(); r != nil {
		os.Exit(Report(os.Stderr, r, debug.Stack()))
	}
}
