package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// write makes file name (host path) with content.
func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFS_KeptDirSwappedForSymlink: a directory that reads went through is
// kept open; when something replaces it by a symlink out of the root, the
// reads stay on the directory they opened (never outside) and writes,
// which resolve the whole name, are refused.
func TestFS_KeptDirSwappedForSymlink(t *testing.T) {
	root, outside := plant(t)
	write(t, filepath.Join(root, "d/a.conf"), "inside\n")
	f := New(root)
	defer f.Close()
	if _, err := f.Lstat("/d/a.conf"); err != nil {
		t.Fatal(err)
	}
	// Behind the FS's back: /d moves aside, a symlink out takes its place.
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "d.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"read":     func() error { _, err := f.ReadFile("/d/keep.conf"); return err },
		"lstat":    func() error { _, err := f.Lstat("/d/keep.conf"); return err },
		"stat":     func() error { _, err := f.Stat("/d/keep.conf"); return err },
		"readlink": func() error { _, err := f.Readlink("/d/keep.conf"); return err },
		"open": func() error {
			fh, err := f.OpenFile("/d/keep.conf", os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err == nil {
				fh.Close()
			}
			return err
		},
	} {
		if err := op(); err == nil {
			t.Errorf("%s /d/keep.conf: read the file outside the root", name)
		}
	}
	if b, err := f.ReadFile("/d/a.conf"); err != nil || string(b) != "inside\n" {
		t.Errorf("read /d/a.conf through the kept directory = %q, %v", b, err)
	}
	fh, err := f.OpenFile("/d/new", os.O_WRONLY|os.O_CREATE, 0o644)
	if err == nil {
		fh.Close()
	}
	if !errors.Is(err, ErrEscapes) {
		t.Errorf("create /d/new: %v, want ErrEscapes", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Error("a file was created outside the root")
	}
}

// TestFS_KeptDirsDroppedOnRemove: after a directory is removed and made
// again through the FS, reads see the new one.
func TestFS_KeptDirsDroppedOnRemove(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "d/a.conf"), "old\n")
	f := New(root)
	defer f.Close()
	for _, remove := range []func() error{
		func() error { return f.RemoveAll("/d") },
		func() error {
			if err := f.Remove("/d/a.conf"); err != nil {
				return err
			}
			return f.Remove("/d")
		},
		func() error { return f.Rename("/d", "/d.aside") },
	} {
		if b, err := f.ReadFile("/d/a.conf"); err != nil || string(b) != "old\n" {
			t.Fatalf("read before: %q, %v", b, err)
		}
		if err := remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Lstat("/d/a.conf"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lstat after the removal: %v, want not exist", err)
		}
		if err := f.MkdirAll("/d", 0o755); err != nil {
			t.Fatal(err)
		}
		fh, err := f.OpenFile("/d/a.conf", os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fh.WriteString("old\n")
		fh.Close()
		if fi, err := f.Lstat("/d/a.conf"); err != nil || fi.Size() != 4 {
			t.Fatalf("lstat of the new file: %v, %v (a removed directory kept?)", fi, err)
		}
		_ = os.RemoveAll(filepath.Join(root, "d.aside"))
	}
}

// TestFS_KeptDirLeafLinkFollowed: a last element that is a symlink out of
// its directory but not out of the root is followed by the reads that
// follow it, and refused when it leaves the root.
func TestFS_KeptDirLeafLinkFollowed(t *testing.T) {
	root, _ := plant(t)
	write(t, filepath.Join(root, "e/x.conf"), "x\n")
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../e/x.conf", filepath.Join(root, "d/in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../../etc/hostname", filepath.Join(root, "d/out")); err != nil {
		t.Fatal(err)
	}
	f := New(root)
	defer f.Close()
	if b, err := f.ReadFile("/d/in"); err != nil || string(b) != "x\n" {
		t.Errorf("read /d/in = %q, %v", b, err)
	}
	if fi, err := f.Stat("/d/in"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("stat /d/in = %v, %v", fi, err)
	}
	if fi, err := f.Lstat("/d/in"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("lstat /d/in = %v, %v; want the link", fi, err)
	}
	if _, err := f.ReadFile("/d/out"); !errors.Is(err, ErrEscapes) {
		t.Errorf("read /d/out: %v, want ErrEscapes", err)
	}
	if _, err := f.Stat("/d/out"); !errors.Is(err, ErrEscapes) {
		t.Errorf("stat /d/out: %v, want ErrEscapes", err)
	}
}

// TestFS_KeptDirsConcurrent: reads of many files in a few directories at
// once (run with -race), and Close while kept.
func TestFS_KeptDirsConcurrent(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a", "b/c"} {
		for _, n := range []string{"1", "2", "3"} {
			write(t, filepath.Join(root, d, n), n)
		}
	}
	f := New(root)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, d := range []string{"/a", "/b/c"} {
				for _, n := range []string{"1", "2", "3"} {
					if b, err := f.ReadFile(d + "/" + n); err != nil || string(b) != n {
						t.Errorf("read %s/%s = %q, %v", d, n, b, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Lstat("/a/1"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("lstat after close: %v, want closed", err)
	}
}
