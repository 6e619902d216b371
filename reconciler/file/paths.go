package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// defaultFileMode is the mode of a new file whose mode is not managed.
const defaultFileMode = 0o644

// MissingParents returns the ancestors of name that do not exist in fsys,
// the outermost first, as host paths (for display).
func MissingParents(fsys *rootfs.FS, name string) ([]string, error) {
	var missing []string
	for dir := filepath.Dir(name); ; dir = filepath.Dir(dir) {
		_, err := fsys.Lstat(dir)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat parent: %w", err)
		}
		missing = append([]string{fsys.HostPath(dir)}, missing...)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return missing, nil
}

// MkdirParents creates the ancestors of name that do not exist, owned by
// the running user with mode 0755, and fsyncs each new entry's directory.
// A parent that a sibling resource creates at the same moment is not an
// error.
func MkdirParents(fsys *rootfs.FS, name string) error {
	var missing []string
	for dir := filepath.Dir(name); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		_, err := fsys.Lstat(dir)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat parent: %w", err)
		}
		missing = append([]string{dir}, missing...)
	}
	for _, dir := range missing {
		if err := fsys.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create parent directory: %w", err)
		}
		if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile replaces the file name with what write produces, atomically
// and durably (see [reconciler.Env.ReplaceFile]), with p's ownership and
// mode (0644 when p manages none). A symlink at name is replaced, not
// followed. The directory must exist.
func replaceFile(env *reconciler.Env, name string, p Perms, write func(w io.Writer) error) error {
	return env.ReplaceFile(name, p.Options(), write)
}

// lstat returns name's lstat, or nil when nothing is there.
func lstat(fsys *rootfs.FS, name string) (fs.FileInfo, error) {
	fi, err := fsys.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	return fi, nil
}

// typeName names what fi is, for display: file, directory, symlink, ...
func typeName(fi fs.FileInfo) string {
	if fi == nil {
		return "absent"
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "other"
}

// isEmptyDir reports whether the directory name has no entries.
func isEmptyDir(fsys *rootfs.FS, name string) (bool, error) {
	d, err := fsys.Open(name)
	if err != nil {
		return false, fmt.Errorf("open directory: %w", err)
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read directory: %w", err)
	}
	return false, nil
}

// RemoveAny removes what is at name (a directory with all it holds) and
// fsyncs the parent directory. fi is name's lstat.
func RemoveAny(fsys *rootfs.FS, name string, fi fs.FileInfo) error {
	var err error
	if fi.IsDir() {
		err = fsys.RemoveAll(name)
	} else {
		err = fsys.Remove(name)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", fsys.HostPath(name), err)
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// replaceClass classes replacing what fi is with something else (or with
// nothing): safe when nothing can be lost (a symlink, an empty directory),
// destructive otherwise. Regular files are classed by the caller.
func replaceClass(fsys *rootfs.FS, name string, fi fs.FileInfo) (reconciler.Class, error) {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return reconciler.Safe, nil
	case fi.IsDir():
		empty, err := isEmptyDir(fsys, name)
		if err != nil {
			return reconciler.Destructive, err
		}
		if empty {
			return reconciler.Safe, nil
		}
	}
	return reconciler.Destructive, nil
}
