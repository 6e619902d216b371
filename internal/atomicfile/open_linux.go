//go:build linux

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openTempAt creates tmp, one name without a slash, with flag (which has
// O_CREAT, O_EXCL and O_NOFOLLOW) and mode 0600 on the descriptor of the
// directory dir: as the directory's os.Root would, for one name, minus the
// poller registration os.Root's files go through (an epoll_ctl that fails
// for a regular file and four fcntl). The file is made with os.NewFile,
// which costs one fcntl.
func openTempAt(dir *os.File, tmp string, flag int) (*os.File, error) {
	if tmp == "" || tmp == "." || tmp == ".." || containsSlash(tmp) {
		return nil, &fs.PathError{Op: "openat", Path: tmp, Err: syscall.EINVAL}
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var operr error
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, operr = syscall.Openat(int(dfd), tmp, flag, 0o600)
			if !errors.Is(operr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	if operr != nil {
		return nil, &fs.PathError{Op: "openat", Path: tmp, Err: operr}
	}
	return os.NewFile(uintptr(fd), tmp), nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}
