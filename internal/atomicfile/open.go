package atomicfile

import (
	"os"

	"github.com/fsgit/fsgit/internal/rootfs"
)

// openTempAt creates tmp, one name without a slash, with flag (which has
// O_CREAT, O_EXCL and O_NOFOLLOW) and mode 0600 on the descriptor of the
// directory dir: as the directory's os.Root would, for one name, minus the
// poller registration os.Root's files go through and os.NewFile's fcntl
// (rootfs.OpenAtFD): it returns the bare descriptor.
// errors.ErrUnsupported where there is no openat: the caller then goes
// through the os.Root.
func openTempAt(dir *os.File, tmp string, flag int) (int, error) {
	return rootfs.OpenAtFD(dir, tmp, flag, 0o600)
}
