package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestOpenTemp_BareDescriptor checks that a temporary file created on its
// directory's descriptor is a bare descriptor (no os.NewFile, no fcntl)
// that writes, owns, chmods, syncs and closes as an *os.File would.
func TestOpenTemp_BareDescriptor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("openat on a kept descriptor is Linux's")
	}
	dir, root, dirFile := tempRoot(t)
	f, err := openTemp(root, dirFile, ".a.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*fdTemp); !ok {
		t.Fatalf("openTemp on a directory's descriptor made a %T, want a bare descriptor", f)
	}
	for _, part := range []string{"hello ", strings.Repeat("x", 100_000)} {
		if n, err := f.Write([]byte(part)); err != nil || n != len(part) {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if err := f.Chown(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := f.Fchmod(0o640); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second close: %v, want os.ErrClosed", err)
	}
	if _, err := f.Write([]byte("late")); err == nil {
		t.Fatal("write after close succeeded")
	}
	fi, err := os.Stat(filepath.Join(dir, ".a.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Size() != int64(len("hello ")+100_000) {
		t.Fatalf("temporary file: mode %v, size %d", fi.Mode(), fi.Size())
	}
	// A second creation under the same name fails as os.Root's does.
	if _, err := openTemp(root, dirFile, ".a.tmp"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create: %v, want os.ErrExist", err)
	}
}

// TestRenameIn_OverDirectory checks that renaming a temporary file over a
// directory fails and leaves both, on the descriptor as through the root.
func TestRenameIn_OverDirectory(t *testing.T) {
	dir, root, dirFile := tempRoot(t)
	for _, df := range []*os.File{dirFile, nil} {
		if err := os.WriteFile(filepath.Join(dir, ".t"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := renameIn(root, df, ".t", "d")
		var le *os.LinkError
		if !errors.As(err, &le) || le.Op != "renameat" {
			t.Fatalf("rename over a directory (descriptor %v): %v", df != nil, err)
		}
		if df != nil && !errors.Is(err, syscall.EISDIR) {
			t.Fatalf("rename over a directory on the descriptor: %v, want EISDIR", err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "d")); err != nil || !fi.IsDir() {
			t.Fatalf("the directory is gone: %v", err)
		}
		if err := os.Remove(filepath.Join(dir, ".t")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "d")); err != nil {
			t.Fatal(err)
		}
	}
	// And a rename that can be done is done.
	if err := os.WriteFile(filepath.Join(dir, ".t"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := renameIn(root, dirFile, ".t", "f"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "f")); got != "new" {
		t.Fatalf("f holds %q", got)
	}
}

// tempRoot makes a temporary directory and opens it as an os.Root and as
// a file (the descriptor a batch keeps), both closed at the test's end.
func tempRoot(t *testing.T) (dir string, root *os.Root, dirFile *os.File) {
	t.Helper()
	dir = t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if dirFile, err = root.Open("."); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dirFile.Close() })
	return dir, root, dirFile
}
