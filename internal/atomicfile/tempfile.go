package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// tempFile is a temporary file being written: an *os.File (osTemp), or a
// bare descriptor (fdTemp) where it was created on its directory's.
type tempFile interface {
	io.Writer
	Chown(uid, gid int) error
	// Fchmod sets the mode bits as given (setuid, setgid and sticky
	// included), as fchmod does.
	Fchmod(mode uint32) error
	Sync() error
	Close() error
}

// osTemp is a temporary file as an *os.File.
type osTemp struct{ *os.File }

// Fchmod implements tempFile.
func (f osTemp) Fchmod(mode uint32) error { return fchmod(f.File, mode) }

// maxWrite is the most one write(2) is given, as os.File's writes do.
const maxWrite = 1 << 30

// fdTemp is a temporary file on a bare, blocking descriptor
// (rootfs.OpenAtFD). Its calls do what an *os.File's do on such a
// descriptor (every byte written, EINTR retried, errors as *fs.PathError
// with the same operation names), without the fcntl that os.NewFile makes
// to learn whether the descriptor blocks: one per file, 1,000 in a first
// run of 1,000 files. Its owner closes it: there is no finalizer.
type fdTemp struct {
	fd   int
	name string
}

// Write implements io.Writer.
func (f *fdTemp) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		chunk := p[n:]
		if len(chunk) > maxWrite {
			chunk = chunk[:maxWrite]
		}
		m, err := syscall.Write(f.fd, chunk)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if m > 0 {
			n += m
		}
		if err != nil {
			return n, &fs.PathError{Op: "write", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, &fs.PathError{Op: "write", Path: f.name, Err: io.ErrUnexpectedEOF}
		}
	}
	return n, nil
}

// Chown implements tempFile.
func (f *fdTemp) Chown(uid, gid int) error {
	if err := ignoringEINTR(func() error { return syscall.Fchown(f.fd, uid, gid) }); err != nil {
		return &fs.PathError{Op: "chown", Path: f.name, Err: err}
	}
	return nil
}

// Fchmod implements tempFile.
func (f *fdTemp) Fchmod(mode uint32) error {
	if err := ignoringEINTR(func() error { return syscall.Fchmod(f.fd, mode) }); err != nil {
		return &fs.PathError{Op: "chmod", Path: f.name, Err: err}
	}
	return nil
}

// Sync implements tempFile.
func (f *fdTemp) Sync() error {
	if err := ignoringEINTR(func() error { return syscall.Fsync(f.fd) }); err != nil {
		return &fs.PathError{Op: "sync", Path: f.name, Err: err}
	}
	return nil
}

// Close implements tempFile. A second Close is an error, as with an
// *os.File, and closes nothing.
func (f *fdTemp) Close() error {
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	fd := f.fd
	f.fd = -1
	if err := syscall.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// ignoringEINTR calls f until it returns something other than EINTR.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
