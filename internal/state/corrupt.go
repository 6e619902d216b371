package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt is wrapped by every error that says the state file is
// corrupt: its structure fails the checks made before it is mapped, bbolt
// panics or faults reading it, or what it holds does not decode.
var ErrCorrupt = errors.New("state file is corrupt")

// CorruptError is a corrupt state file: where it was found, doing what,
// and why.
type CorruptError struct {
	Path string
	// Op is what was being done: check, open, verify, read, record.
	Op  string
	Err error
}

// Error says, in one sentence, which file is corrupt and why.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (%s): %v", e.Path, e.Op, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

func corruptf(path, op, format string, args ...any) *CorruptError {
	return &CorruptError{Path: path, Op: op, Err: fmt.Errorf(format, args...)}
}

// IsCorrupt reports whether err says that a state file is corrupt.
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

// asCorrupt returns err as a corruption of the file at path when it is
// one: a panic or fault (already a *CorruptError), or one of bbolt's
// errors for a file that is not a valid database. Other errors (I/O,
// permissions, the lock) pass unchanged.
func asCorrupt(path, op string, err error) error {
	var ce *CorruptError
	switch {
	case err == nil, errors.As(err, &ce):
		return err
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping),
		errors.Is(err, bolterrors.ErrIncompatibleValue), errors.Is(err, bolterrors.ErrBucketNotFound),
		strings.Contains(err.Error(), "file size too small"):
		return &CorruptError{Path: path, Op: op, Err: err}
	}
	return err
}

// guard runs fn, which reads or writes the state file through bbolt, with
// memory faults turned into panics (a fault on bbolt's memory map is
// otherwise fatal to the process) and every panic into a *CorruptError,
// since bbolt panics or faults only on a file it cannot make sense of.
func guard(path, op string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			var where string
			if _, file, line, ok := runtime.Caller(3); ok {
				where = fmt.Sprintf(" at %s:%d", filepath.Base(file), line)
			}
			err = &CorruptError{Path: path, Op: op, Err: fmt.Errorf("bbolt panicked%s: %v", where, r)}
		}
	}()
	return fn()
}

// maxQuarantined is how many corrupt files moved aside are kept, the
// newest; older ones are removed.
const maxQuarantined = 3

// quarantineSuffix precedes the time in the name of a corrupt file moved
// aside: state.db.corrupt-20261206T083500.123456789Z.
const quarantineSuffix = ".corrupt-"

// quarantine moves the corrupt file at path aside, beside it, and returns
// the new name. Only the newest maxQuarantined are kept.
func quarantine(path string, now time.Time) (string, error) {
	dst := path + quarantineSuffix + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("move the corrupt state file aside: %w", err)
	}
	syncDir(filepath.Dir(path))
	old, _ := filepath.Glob(globEscape(path) + quarantineSuffix + "*")
	sort.Strings(old)
	for len(old) > maxQuarantined {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	return dst, nil
}

// globEscape escapes the glob metacharacters of a path.
func globEscape(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(p)
}

// lockAside takes the lock bbolt uses (flock) on the file at path,
// shared or exclusive, waiting up to timeout, so that a file is not
// judged corrupt, or moved, while another fsgit writes it. It returns the
// unlock function.
func lockAside(path string, timeout time.Duration, shared bool) (func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncDir flushes a directory's entries (a rename, a new file) to disk;
// errors are ignored, as some file systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
