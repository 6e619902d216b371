// Package rootfs is the filesystem a run manages: the host's own, or the
// tree under a root directory (fsgit's --root) that no operation leaves.
//
// Every name is the absolute path a site declares ("/etc/app.conf"). Under
// a root, each operation resolves it inside the root with [os.Root]
// (openat, one component at a time): a symlink on the way is followed only
// while it stays inside the root, and one that is absolute or climbs out of
// it with ".." fails the operation with an error that wraps [ErrEscapes].
// The check and the write are the same system calls, so there is no window
// between them for a planted symlink or for a sibling that creates a
// directory. Without a root, names are host paths and the os package's
// functions are used as they are.
//
// Reads (Lstat, Stat, Open and OpenFile for reading, ReadFile, Readlink)
// resolve the directory that holds the name once per FS: the directory is
// opened inside the root as above, its handle kept, and the last element
// looked up relative to it, so that a run that looks at a thousand files
// in one directory opens it once rather than walking the path for each.
// A handle is an open directory, not a path: a symlink planted on the way
// later cannot redirect it. Removing or renaming through the FS drops the
// handles (what they name may have gone); a change made by another
// process while the FS is in use is seen as os.Root sees a root moved
// under it. Writes always resolve the whole name.
//
// The last element of a name is not followed by Lstat, Lchown, Remove,
// Rename, Symlink and Readlink; Stat, Open, OpenFile, OpenDir and Chmod
// follow it (inside the root).
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ErrEscapes is wrapped by the error of an operation whose name leads out
// of the root through a symlink.
var ErrEscapes = errors.New("leads outside the root")

// FS is a run's managed filesystem. It is safe for concurrent use. The
// root directory is opened on first use (and created by the first write
// when missing), so that an FS over a root that does not exist yet can
// still be read: everything in it is absent.
type FS struct {
	dir string

	mu     sync.Mutex
	root   *os.Root
	escape error // what os.Root returns for a name that leaves it
	closed bool
	// dirs are the directories reads went through, opened inside root,
	// by their name relative to it.
	dirs map[string]*kept
}

// kept is a directory kept open for reads: as a root for os.Root's
// operations, and as a file for the few made directly on its descriptor.
type kept struct {
	root *os.Root
	file *os.File
}

func (k *kept) close() {
	_ = k.root.Close()
	_ = k.file.Close()
}

// New returns the filesystem under dir, or the host's when dir is "" or
// "/" (where there is nothing to leave, and the host's absolute symlinks
// must work as they do).
func New(dir string) *FS {
	if dir != "" {
		dir = filepath.Clean(dir)
	}
	if dir == "/" {
		dir = ""
	}
	return &FS{dir: dir}
}

// Dir returns the root directory, "" for the host's filesystem.
func (f *FS) Dir() string { return f.dir }

// HostPath returns where name is on the host: name itself without a root,
// else name placed under the root (textually: symlinks are not resolved).
func (f *FS) HostPath(name string) string {
	if f.dir == "" {
		return name
	}
	return filepath.Join(f.dir, name)
}

// Close releases the root directory. The FS is not usable afterwards.
func (f *FS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.dropDirsLocked()
	if f.root == nil {
		return nil
	}
	err := f.root.Close()
	f.root = nil
	return err
}

// opened is the root directory, open, with the error it gives for a name
// that leaves it.
type opened struct {
	root   *os.Root
	escape error
}

// open returns the opened root, creating its directory first when create
// is set and it is missing.
func (f *FS) open(create bool) (opened, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return opened{}, fmt.Errorf("root %s: %w", f.dir, fs.ErrClosed)
	}
	if f.root != nil {
		return opened{f.root, f.escape}, nil
	}
	r, err := os.OpenRoot(f.dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			return opened{}, fmt.Errorf("create root: %w", err)
		}
		r, err = os.OpenRoot(f.dir)
	}
	if err != nil {
		return opened{}, err
	}
	// os.Root reports a name that leaves it with an unexported error;
	// learn it from a name that certainly does.
	_, probe := r.Lstat("..")
	var pe *fs.PathError
	if errors.As(probe, &pe) {
		f.escape = pe.Err
	}
	f.root = r
	return opened{f.root, f.escape}, nil
}

// dropDirsLocked closes the directories kept for reads. f.mu is held.
func (f *FS) dropDirsLocked() {
	for _, d := range f.dirs {
		d.close()
	}
	f.dirs = nil
}

// dropDirs forgets the directories kept for reads, before an operation
// that may remove or move one of them.
func (f *FS) dropDirs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropDirsLocked()
}

// keptDir returns the directory dir (relative, never "" or ".") opened inside
// the root, from the ones kept or opened now and kept. Failures are not
// kept: a directory missing now may be created later.
func (f *FS) keptDir(o opened, dir string) (*kept, error) {
	f.mu.Lock()
	d := f.dirs[dir]
	f.mu.Unlock()
	if d != nil {
		return d, nil
	}
	r, err := o.root.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	file, err := r.Open(".")
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	d = &kept{root: r, file: file}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.root != o.root {
		d.close()
		return nil, fmt.Errorf("root %s: %w", f.dir, fs.ErrClosed)
	}
	if k := f.dirs[dir]; k != nil {
		d.close() // opened at the same moment by another read
		return k, nil
	}
	if f.dirs == nil {
		f.dirs = map[string]*kept{}
	}
	f.dirs[dir] = d
	return d, nil
}

// read is in for a read: op runs on the directory that holds name, kept
// open, with the last element of name alone. An op that follows that
// element (follows true) and is refused because it leaves the directory
// runs again on the root, which may hold where it leads.
func read[T any](f *FS, opName, name string, follows bool, op func(r *os.Root, rel string) (T, error)) (T, error) {
	return readIn(f, opName, name, follows, op, nil)
}

// readIn is read, with inDir, when set, run instead of op on a kept
// directory.
func readIn[T any](f *FS, opName, name string, follows bool, op func(r *os.Root, rel string) (T, error), inDir func(d *kept, base string) (T, error)) (T, error) {
	var zero T
	rel, err := f.rel(name)
	if err != nil {
		return zero, err
	}
	o, err := f.open(false)
	if err != nil {
		return zero, f.wrap(opName, name, nil, err)
	}
	parent, base := path.Split(rel)
	if parent == "" {
		v, err := op(o.root, rel)
		if err != nil {
			return zero, f.wrap(opName, name, o.escape, err)
		}
		return v, nil
	}
	d, err := f.keptDir(o, strings.TrimSuffix(parent, "/"))
	if err != nil {
		return zero, f.wrap(opName, name, o.escape, err)
	}
	var v T
	if inDir != nil {
		v, err = inDir(d, base)
	} else {
		v, err = op(d.root, base)
	}
	if err != nil && follows && o.escape != nil && errors.Is(err, o.escape) {
		v, err = op(o.root, rel)
	}
	if err != nil {
		return zero, f.wrap(opName, name, o.escape, err)
	}
	return v, nil
}

// rel returns name relative to the root: "." for "/".
func (f *FS) rel(name string) (string, error) {
	if !filepath.IsAbs(name) {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: errors.New("not an absolute path")}
	}
	clean := filepath.Clean(name)
	if clean == "/" {
		return ".", nil
	}
	return clean[1:], nil
}

// in runs op on the root with name made relative, and gives its error the
// host path and, for a name that leaves the root, [ErrEscapes].
func in[T any](f *FS, opName, name string, create bool, op func(r *os.Root, rel string) (T, error)) (T, error) {
	var zero T
	rel, err := f.rel(name)
	if err != nil {
		return zero, err
	}
	o, err := f.open(create)
	if err != nil {
		return zero, f.wrap(opName, name, nil, err)
	}
	v, err := op(o.root, rel)
	if err != nil {
		return zero, f.wrap(opName, name, o.escape, err)
	}
	return v, nil
}

// wrap rewrites an error of the root's into one that names the host path,
// keeping what errors.Is needs (fs.ErrNotExist, syscall errnos). escape is
// the root's error for a name that leaves it.
func (f *FS) wrap(op, name string, escape, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if escape != nil && errors.Is(pe.Err, escape) {
			return &EscapeError{Op: op, Name: name, Root: f.dir}
		}
		return &fs.PathError{Op: op, Path: f.HostPath(name), Err: pe.Err}
	}
	if escape != nil && errors.Is(err, escape) {
		return &EscapeError{Op: op, Name: name, Root: f.dir}
	}
	return err
}

// EscapeError is an operation refused because its name leads out of the
// root: a symlink on the way is absolute, or climbs out with "..".
type EscapeError struct {
	Op   string
	Name string // the declared name
	Root string
}

// Error says which path, which root and why.
func (e *EscapeError) Error() string {
	return fmt.Sprintf("%s %s: a symlink on the way leads outside root %s (absolute, or climbing out with ..); refusing to follow it",
		e.Op, e.Name, e.Root)
}

// Unwrap returns [ErrEscapes].
func (e *EscapeError) Unwrap() error { return ErrEscapes }

// none is the result of operations that return only an error.
type none struct{}

// do is in for operations that return only an error.
func do(f *FS, opName, name string, create bool, op func(r *os.Root, rel string) error) error {
	_, err := in(f, opName, name, create, func(r *os.Root, rel string) (none, error) { return none{}, op(r, rel) })
	return err
}

// Lstat returns what is at name, without following it if it is a symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if f.dir == "" {
		return os.Lstat(name)
	}
	return read(f, "lstat", name, false, (*os.Root).Lstat)
}

// Stat returns what name leads to.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if f.dir == "" {
		return os.Stat(name)
	}
	return read(f, "stat", name, true, (*os.Root).Stat)
}

// Open opens name for reading.
func (f *FS) Open(name string) (*os.File, error) {
	if f.dir == "" {
		return os.Open(name)
	}
	return read(f, "open", name, true, (*os.Root).Open)
}

// OpenFile opens name as os.OpenFile does. perm may hold permission bits
// only.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if f.dir == "" {
		return os.OpenFile(name, flag, perm)
	}
	openFile := func(r *os.Root, rel string) (*os.File, error) { return r.OpenFile(rel, flag, perm) }
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) == 0 {
		if flag&syscall.O_NOFOLLOW == 0 || !directOpen {
			return read(f, "open", name, flag&syscall.O_NOFOLLOW == 0, openFile)
		}
		// Nothing is followed: the last element is opened on the kept
		// directory's descriptor directly (os.Root's file would be tried
		// on the poller, four fcntl calls for a regular file).
		return readIn(f, "open", name, false, openFile, func(d *kept, base string) (*os.File, error) {
			return openNoFollow(d.file, base, flag)
		})
	}
	return in(f, "open", name, flag&os.O_CREATE != 0, openFile)
}

// ReadNoFollow reads the file name, its last element not followed,
// through buf into w, on a descriptor of its own (no *os.File, whose
// making costs an fcntl and a finalizer). size is the size lstat gave: a
// read that returns less than buf holds, once size bytes or more are
// read, is taken for the end of the file, so that with buf a byte larger
// than size a file of that size costs one open, one read and one close.
// A shorter read before that, or a full one, is followed by another, up
// to a read that returns nothing. Should the file grow meanwhile and a
// read come up short, the content read ends early: a caller comparing
// digests then sees a difference, never a match.
func (f *FS) ReadNoFollow(name string, size int64, buf []byte, w io.Writer) error {
	if len(buf) == 0 {
		return &fs.PathError{Op: "read", Path: name, Err: errors.New("no buffer")}
	}
	if f.dir == "" || !directOpen {
		fh, err := f.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer fh.Close()
		return readShort(name, size, buf, w, fh.Read)
	}
	_, err := readIn(f, "open", name, false, func(r *os.Root, rel string) (struct{}, error) {
		fh, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return struct{}{}, err
		}
		defer fh.Close()
		return struct{}{}, readShort(name, size, buf, w, fh.Read)
	}, func(d *kept, base string) (struct{}, error) {
		return struct{}{}, readNoFollow(d.file, base, size, buf, w)
	})
	return err
}

// readShort reads through buf into w until a read returns nothing, or
// returns less than buf holds once size bytes or more are read.
func readShort(name string, size int64, buf []byte, w io.Writer, read func([]byte) (int, error)) error {
	var total int64
	for {
		n, err := read(buf)
		if n > 0 {
			total += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && (n == 0 || (n < len(buf) && total >= size))) {
			return nil
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: name, Err: err}
		}
	}
}

// OpenDir opens the directory name as an [os.Root] of its own, for work in
// that one directory (an atomic replace: temporary file, rename, fsync).
// The caller closes it.
func (f *FS) OpenDir(name string) (*os.Root, error) {
	if f.dir == "" {
		return os.OpenRoot(name)
	}
	return in(f, "open directory", name, false, (*os.Root).OpenRoot)
}

// ReadFile returns the content of name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if f.dir == "" {
		return os.ReadFile(name)
	}
	return read(f, "read", name, true, (*os.Root).ReadFile)
}

// Readlink returns the target of the symlink name.
func (f *FS) Readlink(name string) (string, error) {
	if f.dir == "" {
		return os.Readlink(name)
	}
	return read(f, "readlink", name, false, (*os.Root).Readlink)
}

// Mkdir creates the directory name.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	if f.dir == "" {
		return os.Mkdir(name, perm)
	}
	return do(f, "mkdir", name, true, func(r *os.Root, rel string) error { return r.Mkdir(rel, perm) })
}

// MkdirAll creates the directory name and its missing parents. A directory
// that a sibling creates at the same moment is not an error.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	if f.dir == "" {
		return os.MkdirAll(name, perm)
	}
	return do(f, "mkdir", name, true, func(r *os.Root, rel string) error {
		if rel == "." {
			return nil
		}
		return r.MkdirAll(rel, perm)
	})
}

// Remove removes the file, symlink or empty directory name.
func (f *FS) Remove(name string) error {
	if f.dir == "" {
		return os.Remove(name)
	}
	f.dropDirs()
	return do(f, "remove", name, false, (*os.Root).Remove)
}

// RemoveAll removes name and all it holds. Nothing is followed out of the
// root.
func (f *FS) RemoveAll(name string) error {
	if f.dir == "" {
		return os.RemoveAll(name)
	}
	f.dropDirs()
	return do(f, "remove", name, false, (*os.Root).RemoveAll)
}

// Rename renames oldname to newname, replacing what newname names
// (without following it).
func (f *FS) Rename(oldname, newname string) error {
	if f.dir == "" {
		return os.Rename(oldname, newname)
	}
	newRel, err := f.rel(newname)
	if err != nil {
		return err
	}
	f.dropDirs()
	return do(f, "rename", oldname, false, func(r *os.Root, rel string) error { return r.Rename(rel, newRel) })
}

// Symlink creates name as a symlink to target, written as given.
func (f *FS) Symlink(target, name string) error {
	if f.dir == "" {
		return os.Symlink(target, name)
	}
	return do(f, "symlink", name, true, func(r *os.Root, rel string) error { return r.Symlink(target, rel) })
}

// Lchown changes the owner and group of name (of a symlink itself); -1
// leaves one as it is.
func (f *FS) Lchown(name string, uid, gid int) error {
	if f.dir == "" {
		return os.Lchown(name, uid, gid)
	}
	return do(f, "chown", name, false, func(r *os.Root, rel string) error { return r.Lchown(rel, uid, gid) })
}

// Chmod sets the permission, setuid, setgid and sticky bits of name to
// bits (07777).
func (f *FS) Chmod(name string, bits uint32) error {
	mode := fileMode(bits)
	if f.dir == "" {
		return os.Chmod(name, mode)
	}
	return do(f, "chmod", name, false, func(r *os.Root, rel string) error { return r.Chmod(rel, mode) })
}

// SyncDir fsyncs the directory name, making the creations, renames and
// removals of its entries durable.
func (f *FS) SyncDir(name string) error {
	d, err := f.Open(name)
	if err != nil {
		return fmt.Errorf("open directory to fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", f.HostPath(name), err)
	}
	return nil
}

// Resolves checks that name, or its deepest existing ancestor, leads
// through every symlink to a place inside the root, for a consumer that
// follows the host path itself (Docker's bind mounts, a warehouse). A
// dangling symlink on the way is refused: where it will come to point is
// not known. Something a sibling creates while Resolves looks is taken as
// it is then, never mistaken for a dangling symlink. Without a root it
// checks nothing.
func (f *FS) Resolves(name string) error {
	if f.dir == "" {
		return nil
	}
	if _, err := f.rel(name); err != nil {
		return err
	}
	if _, err := f.open(false); errors.Is(err, fs.ErrNotExist) {
		return nil // nothing exists under it yet
	} else if err != nil {
		return f.wrap("resolve", name, nil, err)
	}
	dir := filepath.Clean(name)
	for retries := 0; ; {
		_, err := f.Stat(dir)
		if err == nil || errors.Is(err, ErrEscapes) {
			return err
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("resolve %s: %w", name, err)
		}
		fi, lerr := f.Lstat(dir)
		switch {
		case lerr == nil && fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is or goes through a dangling symlink; refusing to write under it", f.HostPath(dir))
		case lerr == nil && retries < 8:
			// Created between the two looks: look again.
			retries++
			continue
		case lerr == nil:
			return fmt.Errorf("resolve %s: %w", name, err)
		}
		if dir == "/" {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

// fileMode converts permission, setuid, setgid and sticky bits (07777) to
// an fs.FileMode.
func fileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
