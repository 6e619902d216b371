// Package atomicfile replaces files and symlinks so that a reader, or a
// crash at any moment (kill -9, power loss), sees the old one or the new
// one, never a mix and never a part.
//
// A file is written to a temporary file in the same directory (mode 0600
// while it is written), given its owner and mode, fsynced, renamed over the
// target, and the directory is fsynced. Every step works on one open
// directory (an [os.Root]), so the temporary file, the rename and the fsync
// are in the same directory however the path to it changes meanwhile, and
// under a run's root nothing is done outside it. The temporary name is
// fixed per target ([TempName]): a temporary left by a crash is found and
// replaced by the next write.
package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Options are what the new file gets besides its content.
type Options struct {
	// UID and GID own the file; -1 leaves the writer's.
	UID, GID int
	// Mode holds the permission, setuid, setgid and sticky bits (07777).
	Mode uint32
}

// Dirs opens directories by name: a run's filesystem (rootfs.FS), which
// keeps them inside its root.
type Dirs interface {
	OpenDir(name string) (*os.Root, error)
}

// TempName returns the temporary name used for the entry base: hidden,
// fixed per target, and hashed when base is too long to take a prefix and
// suffix.
func TempName(base string) string {
	name := "." + base + ".fsgit-tmp"
	if len(name) > 255 {
		sum := sha256.Sum256([]byte(base))
		name = ".fsgit-tmp-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// Replace replaces the file name (an absolute path, opened through d) with
// what write produces; see [ReplaceIn]. Its directory must exist.
func Replace(d Dirs, name string, o Options, write func(w io.Writer) error) error {
	dir, err := d.OpenDir(filepath.Dir(name))
	if err != nil {
		return fmt.Errorf("open the directory of %s: %w", name, err)
	}
	defer dir.Close()
	return ReplaceIn(dir, filepath.Base(name), o, write)
}

// ReplaceIn replaces the entry base of dir with a regular file holding what
// write produces. When write returns an error (a digest that does not
// match, say) the temporary file is removed and base is untouched. A
// symlink at base is replaced, not followed.
func ReplaceIn(dir *os.Root, base string, o Options, write func(w io.Writer) error) error {
	tmp, err := writeTemp(dir, nil, base, o, write, true)
	if err != nil {
		return err
	}
	if err := dir.Rename(tmp, base); err != nil {
		_ = dir.Remove(tmp)
		return fmt.Errorf("rename into place: %w", err)
	}
	return SyncDir(dir)
}

// writeTemp writes what write produces to base's temporary file in dir,
// gives it its owner and mode, fsyncs it when sync is set, closes it and
// returns its name. On error the temporary file is removed. dirFile, when
// not nil, is dir itself opened as a file, on which the temporary file is
// created directly (createTemp).
func writeTemp(dir *os.Root, dirFile *os.File, base string, o Options, write func(w io.Writer) error, sync bool) (_ string, err error) {
	if err := checkBase(base); err != nil {
		return "", err
	}
	tmp := TempName(base)
	f, err := createTemp(dir, dirFile, tmp)
	if err != nil {
		return "", err
	}
	closed := false
	defer func() {
		if closed && err == nil {
			return
		}
		// On an error, and on a panic in write: the descriptor has no
		// finalizer to close it.
		if !closed {
			_ = f.Close()
		}
		_ = dir.Remove(tmp)
	}()
	if err = write(f); err != nil {
		return "", err
	}
	if o.UID >= 0 || o.GID >= 0 {
		if err = f.Chown(o.UID, o.GID); err != nil {
			return "", fmt.Errorf("chown temporary file: %w", err)
		}
	}
	if err = f.Fchmod(o.Mode); err != nil {
		return "", fmt.Errorf("chmod temporary file: %w", err)
	}
	if sync {
		if err = f.Sync(); err != nil {
			return "", fmt.Errorf("fsync temporary file: %w", err)
		}
	}
	closed = true
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("close temporary file: %w", err)
	}
	return tmp, nil
}

// createTemp creates the temporary file tmp in dir: a new file (O_EXCL),
// never reached through a symlink (O_NOFOLLOW). Whatever a crash left
// under that name is removed and the creation tried once more. Creating
// first spares the two failing unlinks (file, then directory) that
// removing first costs when, as almost always, nothing is there.
func createTemp(dir *os.Root, dirFile *os.File, tmp string) (tempFile, error) {
	f, err := openTemp(dir, dirFile, tmp)
	if errors.Is(err, fs.ErrExist) {
		if err := dir.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale temporary file: %w", err)
		}
		f, err = openTemp(dir, dirFile, tmp)
	}
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return f, nil
}

// openTemp creates tmp, one name of dir, for writing: through dir, or,
// when dirFile is set, on its descriptor (openTempAt), as a bare
// descriptor (fdTemp).
func openTemp(dir *os.Root, dirFile *os.File, tmp string) (tempFile, error) {
	const flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	if dirFile != nil {
		fd, err := openTempAt(dirFile, tmp, flag)
		if err == nil {
			return &fdTemp{fd: fd, name: tmp}, nil
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			return nil, err
		}
	}
	f, err := dir.OpenFile(tmp, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return osTemp{f}, nil
}

// WriteFile replaces the file name (through d) with data; see [Replace].
func WriteFile(d Dirs, name string, data []byte, o Options) error {
	return Replace(d, name, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SymlinkIn points the entry base of dir at target: a new link under the
// temporary name, renamed over base, and the directory fsynced. A symlink
// or file at base is replaced; a directory must be removed first.
func SymlinkIn(dir *os.Root, base, target string) error {
	if err := checkBase(base); err != nil {
		return err
	}
	tmp := TempName(base)
	if err := dir.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale temporary link: %w", err)
	}
	if err := dir.Symlink(target, tmp); err != nil {
		return fmt.Errorf("create link: %w", err)
	}
	if err := dir.Rename(tmp, base); err != nil {
		_ = dir.Remove(tmp)
		return fmt.Errorf("rename link into place: %w", err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs dir, making the creations, renames and removals of its
// entries durable.
func SyncDir(dir *os.Root) error {
	d, err := dir.Open(".")
	if err != nil {
		return fmt.Errorf("open directory to fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir.Name(), err)
	}
	return nil
}

// checkBase refuses a base that is not one entry of its directory.
func checkBase(base string) error {
	if base == "" || base == "." || base == ".." || base == "/" || filepath.Base(base) != base {
		return fmt.Errorf("replace %q: not a file name", base)
	}
	return nil
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
