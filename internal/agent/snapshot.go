package agent

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"time"
)

// maxSnapshot bounds what snapshotDir keeps in memory.
const maxSnapshot = 16 << 20

// fileSnapshot is a read-only set of files held in memory, keyed by
// slash-separated path. It serves Open of files, which is all a secret
// provider asks of it; directories are not listed.
type fileSnapshot map[string][]byte

// snapshotDir reads every regular file under dir of fsys into memory. A
// missing dir gives an empty snapshot.
func snapshotDir(fsys fs.FS, dir string) (fileSnapshot, error) {
	snap := fileSnapshot{}
	total := 0
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if total += len(b); total > maxSnapshot {
			return errors.New("the site's secrets directory holds more than 16 MiB")
		}
		rel := p[len(dir)+1:]
		snap[rel] = b
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return snap, nil
	}
	return snap, err
}

// Open implements fs.FS for the snapshot's files.
func (s fileSnapshot) Open(name string) (fs.File, error) {
	b, ok := s[name]
	if !fs.ValidPath(name) || !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &snapFile{Reader: bytes.NewReader(b), name: path.Base(name), size: int64(len(b))}, nil
}

type snapFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *snapFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *snapFile) Close() error               { return nil }
func (f *snapFile) Name() string               { return f.name }
func (f *snapFile) Size() int64                { return f.size }
func (f *snapFile) Mode() fs.FileMode          { return 0o400 }
func (f *snapFile) ModTime() time.Time         { return time.Time{} }
func (f *snapFile) IsDir() bool                { return false }
func (f *snapFile) Sys() any                   { return nil }
