package sitefiles

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"
)

// MemFS is the read-only, in-memory file tree that a site is loaded from:
// the embedded schema, the module file and the site's files ([Tree.Files]),
// under slash-separated paths relative to the repository root. Directories
// are implied by the files. Nothing on the host filesystem can join it.
type MemFS struct {
	files map[string][]byte
	dirs  map[string][]string // dir -> sorted child names
}

// NewMemFS returns the tree of files, keyed by slash path. The map is
// not copied: it must not change while the tree is in use.
func NewMemFS(files map[string][]byte) *MemFS {
	m := &MemFS{files: files, dirs: map[string][]string{".": nil}}
	seen := map[string]bool{}
	for name := range files {
		for p := name; p != "."; {
			dir := path.Dir(p)
			key := dir + "\x00" + path.Base(p)
			if !seen[key] {
				seen[key] = true
				m.dirs[dir] = append(m.dirs[dir], path.Base(p))
			}
			p = dir
		}
	}
	for d := range m.dirs {
		sort.Strings(m.dirs[d])
	}
	return m
}

// Open implements fs.FS.
func (m *MemFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if data, ok := m.files[name]; ok {
		return &memFile{info: memInfo{name: path.Base(name), size: int64(len(data))}, r: bytes.NewReader(data)}, nil
	}
	if children, ok := m.dirs[name]; ok {
		entries := make([]fs.DirEntry, len(children))
		for i, c := range children {
			full := path.Join(name, c)
			if data, isFile := m.files[full]; isFile {
				entries[i] = fs.FileInfoToDirEntry(memInfo{name: c, size: int64(len(data))})
			} else {
				entries[i] = fs.FileInfoToDirEntry(memInfo{name: c, dir: true})
			}
		}
		return &memDir{info: memInfo{name: path.Base(name), dir: true}, entries: entries}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	info memInfo
	r    *bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	info    memInfo
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
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
