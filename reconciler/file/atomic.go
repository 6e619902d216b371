package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fsgit/fsgit/reconciler"
)

// defaultFileMode is the mode of a new file whose mode is not managed.
const defaultFileMode = 0o644

// TempName returns the temporary name WriteAtomic uses for path: a hidden
// file in the same directory, fixed per target so that a temporary left by
// a crash is found and replaced by the next write.
func TempName(path string) string {
	dir, base := filepath.Split(path)
	name := "." + base + ".fsgit-tmp"
	if len(name) > 255 {
		sum := sha256.Sum256([]byte(base))
		name = ".fsgit-tmp-" + hex.EncodeToString(sum[:8])
	}
	return filepath.Join(dir, name)
}

// WriteAtomic replaces path with what write produces, so that a reader, or
// a crash at any moment, sees the old content or the new, never a mix. It
// writes a temporary file in the same directory (mode 0600 while it is
// written), gives it p's ownership and mode (0644 when p manages none),
// fsyncs it, renames it over path and fsyncs the directory. When write
// returns an error (a digest that does not match, say) the temporary file
// is removed and path is untouched. A symlink at path is replaced, not
// followed. The directory must exist.
func WriteAtomic(path string, p Perms, write func(w io.Writer) error) (err error) {
	tmp := TempName(path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale temporary file %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if p.UID >= 0 || p.GID >= 0 {
		if err = f.Chown(p.UID, p.GID); err != nil {
			return fmt.Errorf("chown temporary file: %w", err)
		}
	}
	mode := uint32(defaultFileMode)
	if p.HasMode {
		mode = p.Mode
	}
	if err = fchmod(f, mode); err != nil {
		return fmt.Errorf("chmod temporary file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync temporary file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// fchmod sets raw mode bits (permissions, setuid, setgid, sticky) on f.
func fchmod(f *os.File, mode uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = syscall.Fchmod(int(fd), mode) }); err != nil {
		return err
	}
	return cerr
}

// SyncDir fsyncs a directory, making the renames, creations and removals
// of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory to fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// MissingParents returns the ancestors of path that do not exist, the
// outermost first.
func MissingParents(path string) ([]string, error) {
	var missing []string
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		_, err := os.Lstat(dir)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat parent: %w", err)
		}
		missing = append([]string{dir}, missing...)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return missing, nil
}

// MkdirParents creates the ancestors of path that do not exist, owned by
// the running user with mode 0755, and fsyncs each new entry's directory.
func MkdirParents(path string) error {
	missing, err := MissingParents(path)
	if err != nil {
		return err
	}
	for _, dir := range missing {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create parent directory: %w", err)
		}
		if err := SyncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	return nil
}

// lstat returns path's lstat, or nil when nothing is there.
func lstat(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
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

// isEmptyDir reports whether the directory at path has no entries.
func isEmptyDir(path string) (bool, error) {
	d, err := os.Open(path)
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

// removeAny removes what is at path (a directory with all it holds) and
// fsyncs the parent directory.
func removeAny(path string, fi fs.FileInfo) error {
	var err error
	if fi.IsDir() {
		err = os.RemoveAll(path)
	} else {
		err = os.Remove(path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// replaceClass classes replacing what fi is with something else (or with
// nothing): safe when nothing can be lost (a symlink, an empty directory),
// destructive otherwise. Regular files are classed by the caller.
func replaceClass(path string, fi fs.FileInfo) (reconciler.Class, error) {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return reconciler.Safe, nil
	case fi.IsDir():
		empty, err := isEmptyDir(path)
		if err != nil {
			return reconciler.Destructive, err
		}
		if empty {
			return reconciler.Safe, nil
		}
	}
	return reconciler.Destructive, nil
}

// GuardRoot makes p's Apply map declared (the resource's absolute path)
// through env.Path again just before it runs, so that a symlink planted in
// the path's parents between plan and apply does not carry the write out of
// the root. It returns p.
func GuardRoot(env *reconciler.Env, declared string, p *reconciler.Plan) *reconciler.Plan {
	if p == nil || p.Apply == nil || env.Root == "" {
		return p
	}
	apply := p.Apply
	p.Apply = func(ctx context.Context) error {
		if _, err := env.Path(declared); err != nil {
			return fmt.Errorf("apply %s: %w", declared, err)
		}
		return apply(ctx)
	}
	return p
}

// guard returns a function that passes a plan and its error through,
// with [GuardRoot] applied to the plan.
func guard(env *reconciler.Env, declared string) func(*reconciler.Plan, error) (*reconciler.Plan, error) {
	return func(p *reconciler.Plan, err error) (*reconciler.Plan, error) {
		if err != nil {
			return nil, err
		}
		return GuardRoot(env, declared, p), nil
	}
}
