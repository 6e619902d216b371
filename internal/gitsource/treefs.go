package gitsource

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeFS is a commit's tree as an fs.FS. Blobs are read from the cache when
// opened; every read holds the source's lock, since the cache's storage is
// not safe for concurrent use.
type treeFS struct {
	root  *object.Tree
	store storer.EncodedObjectStorer
	when  time.Time
	mu    *sync.Mutex
}

var (
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

func newTreeFS(root *object.Tree, store storer.EncodedObjectStorer, when time.Time, mu *sync.Mutex) *treeFS {
	return &treeFS{root: root, store: store, when: when, mu: mu}
}

// entry finds name in the tree. "." is the root.
func (t *treeFS) entry(op, name string) (*object.TreeEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: t.root.Hash}, nil
	}
	e, err := t.root.FindEntry(name)
	if err != nil {
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return e, nil
}

func (t *treeFS) info(e *object.TreeEntry) (*fileInfo, error) {
	fi := &fileInfo{name: path.Base(e.Name), mode: e.Mode, when: t.when}
	if e.Mode == filemode.Dir || e.Mode == filemode.Submodule {
		return fi, nil
	}
	obj, err := t.store.EncodedObject(plumbing.BlobObject, e.Hash)
	if err != nil {
		return nil, err
	}
	fi.size = obj.Size()
	return fi, nil
}

// Open implements fs.FS.
func (t *treeFS) Open(name string) (fs.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.entry("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if e.Mode == filemode.Dir {
		entries, err := t.readDir(name, e)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: fi, entries: entries}, nil
	}
	b, err := t.readBlob(name, e)
	if err != nil {
		return nil, err
	}
	return &blobFile{info: fi, Reader: bytes.NewReader(b)}, nil
}

// ReadFile implements fs.ReadFileFS.
func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.entry("read", name)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return t.readBlob(name, e)
}

// ReadDir implements fs.ReadDirFS.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.entry("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.Mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return t.readDir(name, e)
}

// Stat implements fs.StatFS.
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.entry("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(e)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

func (t *treeFS) readBlob(name string, e *object.TreeEntry) ([]byte, error) {
	blob, err := object.GetBlob(t.store, e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// readDir lists a directory sorted by name, as fs.ReadDir promises (git
// sorts trees with "/" after directory names, which differs).
func (t *treeFS) readDir(name string, e *object.TreeEntry) ([]fs.DirEntry, error) {
	tree := t.root
	if name != "." {
		sub, err := t.root.Tree(name)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
		}
		tree = sub
	}
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for i := range tree.Entries {
		te := tree.Entries[i]
		fi, err := t.info(&te)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: path.Join(name, te.Name), Err: err}
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// fileInfo describes a tree entry. Every entry has the commit's time.
type fileInfo struct {
	name string
	size int64
	mode filemode.FileMode
	when time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) ModTime() time.Time { return fi.when }
func (fi *fileInfo) IsDir() bool        { return fi.mode == filemode.Dir || fi.mode == filemode.Submodule }
func (fi *fileInfo) Sys() any           { return nil }
func (fi *fileInfo) Mode() fs.FileMode {
	switch fi.mode {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o555
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o444
	}
	return 0o444
}

// blobFile is an open file: its content was read when it was opened.
type blobFile struct {
	info *fileInfo
	*bytes.Reader
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	info    *fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
