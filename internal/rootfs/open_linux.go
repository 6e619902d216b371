//go:build linux

package rootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// directOpen is true where reads open files on a kept directory's
// descriptor directly.
const directOpen = true

// openNoFollow opens base, one name without a slash, in the directory dir
// for reading, following no symlink (O_NOFOLLOW): nothing can lead out of
// dir. The descriptor stays valid while in use, even if dir is closed at
// the same moment. The file is made with os.NewFile, which leaves a
// blocking descriptor off the poller at the cost of one fcntl.
func openNoFollow(dir *os.File, base string, flag int) (*os.File, error) {
	return OpenAt(dir, base, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
}

// OpenAt opens name, one name without a slash (not "." or ".."), in the
// directory dir with openat(2) on dir's descriptor, with flag and perm as
// given (the caller adds O_NOFOLLOW and O_CLOEXEC where it wants them),
// retrying on EINTR. The file is made with os.NewFile: a blocking
// descriptor, off the poller that os.Open's files go through (an
// epoll_ctl that fails for a regular file, and its fcntl calls), at the
// cost of one fcntl. Where there is no openat it returns
// errors.ErrUnsupported.
func OpenAt(dir *os.File, name string, flag int, perm uint32) (*os.File, error) {
	fd, err := OpenAtFD(dir, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// OpenAtFD is OpenAt returning the bare descriptor, which the caller
// closes: no *os.File, and so not its fcntl either.
func OpenAtFD(dir *os.File, name string, flag int, perm uint32) (int, error) {
	if name == "" || name == "." || name == ".." || containsSlash(name) {
		return -1, &fs.PathError{Op: "openat", Path: name, Err: syscall.EINVAL}
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var operr error
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, operr = syscall.Openat(int(dfd), name, flag, perm)
			if !errors.Is(operr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return -1, err
	}
	if operr != nil {
		return -1, &fs.PathError{Op: "openat", Path: name, Err: operr}
	}
	return fd, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// readNoFollow opens base in dir as openNoFollow does, reads it with
// readShort on the raw descriptor and closes it.
func readNoFollow(dir *os.File, base string, size int64, buf []byte, w io.Writer) error {
	if base == "" || base == "." || base == ".." || containsSlash(base) {
		return &fs.PathError{Op: "openat", Path: base, Err: syscall.EINVAL}
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var operr error
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, operr = syscall.Openat(int(dfd), base, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
			if !errors.Is(operr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if operr != nil {
		return &fs.PathError{Op: "openat", Path: base, Err: operr}
	}
	defer syscall.Close(fd)
	return readShort(base, size, buf, w, func(p []byte) (int, error) {
		for {
			n, err := syscall.Read(fd, p)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if n < 0 {
				n = 0
			}
			return n, err
		}
	})
}
