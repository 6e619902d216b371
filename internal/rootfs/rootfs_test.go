package rootfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// plant makes a root whose /etc is a symlink out of it (absolute) and
// whose /up is one that climbs out (relative), and returns the root and the
// directory outside, which holds keep.conf.
func plant(t *testing.T) (root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep.conf"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../.."+outside, filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

// TestFS_NoWriteLeavesTheRoot runs every operation through a symlink that
// leads out of the root and checks that each is refused with ErrEscapes
// and that nothing outside changed.
func TestFS_NoWriteLeavesTheRoot(t *testing.T) {
	for _, via := range []string{"/etc", "/up"} {
		root, outside := plant(t)
		f := New(root)
		defer f.Close()
		ops := map[string]func() error{
			"mkdir":    func() error { return f.Mkdir(via+"/d", 0o755) },
			"mkdirall": func() error { return f.MkdirAll(via+"/a/b", 0o755) },
			"create": func() error {
				fh, err := f.OpenFile(via+"/new", os.O_WRONLY|os.O_CREATE, 0o644)
				if err == nil {
					fh.Close()
				}
				return err
			},
			"truncate": func() error {
				fh, err := f.OpenFile(via+"/keep.conf", os.O_WRONLY|os.O_TRUNC, 0)
				if err == nil {
					fh.Close()
				}
				return err
			},
			"symlink":   func() error { return f.Symlink("x", via+"/link") },
			"rename":    func() error { return f.Rename(via+"/keep.conf", via+"/moved") },
			"remove":    func() error { return f.Remove(via + "/keep.conf") },
			"removeall": func() error { return f.RemoveAll(via + "/keep.conf") },
			"chmod":     func() error { return f.Chmod(via+"/keep.conf", 0o777) },
			"lchown":    func() error { return f.Lchown(via+"/keep.conf", os.Getuid(), os.Getgid()) },
			"opendir": func() error {
				r, err := f.OpenDir(via)
				if err == nil {
					r.Close()
				}
				return err
			},
			"read":     func() error { _, err := f.ReadFile(via + "/keep.conf"); return err },
			"resolves": func() error { return f.Resolves(via + "/x") },
		}
		for name, op := range ops {
			err := op()
			if !errors.Is(err, ErrEscapes) {
				t.Errorf("%s through %s: err = %v, want ErrEscapes", name, via, err)
			}
		}
		ents, err := os.ReadDir(outside)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "keep.conf" {
			t.Errorf("outside the root now holds %v", ents)
		}
		if fi, err := os.Stat(filepath.Join(outside, "keep.conf")); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 5 {
			t.Errorf("keep.conf outside the root changed: %v, %v", fi, err)
		}
	}
}

// TestFS_LastElementNotFollowed checks that a symlink as the last element
// is itself what Lstat, Remove, Rename and Readlink act on, even when it
// points out of the root.
func TestFS_LastElementNotFollowed(t *testing.T) {
	root, outside := plant(t)
	f := New(root)
	defer f.Close()
	fi, err := f.Lstat("/etc")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("lstat /etc = %v, %v; want the symlink", fi, err)
	}
	if target, err := f.Readlink("/etc"); err != nil || target != outside {
		t.Errorf("readlink /etc = %q, %v", target, err)
	}
	if err := f.Rename("/etc", "/etc.old"); err != nil {
		t.Fatalf("rename the link: %v", err)
	}
	if err := f.Remove("/etc.old"); err != nil {
		t.Fatalf("remove the link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep.conf")); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}
}

// TestFS_InsideLinksFollowed checks that a relative symlink that stays in
// the root is followed.
func TestFS_InsideLinksFollowed(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	f := New(root)
	defer f.Close()
	if err := f.MkdirAll("/etc/app/conf.d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Resolves("/etc/app/conf.d/new"); err != nil {
		t.Errorf("resolves: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "real/app/conf.d")); err != nil {
		t.Errorf("not created through the inside link: %v", err)
	}
}

// TestFS_MissingRoot checks that a root that does not exist reads as empty
// and is created by the first write.
func TestFS_MissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "root")
	f := New(root)
	defer f.Close()
	if _, err := f.Lstat("/etc/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lstat under a missing root: %v, want not-exist", err)
	}
	if err := f.Resolves("/etc/x"); err != nil {
		t.Fatalf("resolves under a missing root: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading created the root: %v", err)
	}
	if err := f.MkdirAll("/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc")); err != nil || !fi.IsDir() {
		t.Fatalf("root/etc: %v, %v", fi, err)
	}
}

// TestFS_ResolvesDanglingAndRaces checks Resolves: a dangling link inside
// the root is refused, and a directory that siblings create while it looks
// never is (issue 12 item 10: EvalSymlinks said not-exist, a sibling
// created the directory, Lstat then succeeded and the path was called a
// dangling symlink).
func TestFS_ResolvesDanglingAndRaces(t *testing.T) {
	root := t.TempDir()
	if err := os.Symlink("not/there", filepath.Join(root, "dangle")); err != nil {
		t.Fatal(err)
	}
	f := New(root)
	defer f.Close()
	if err := f.Resolves("/dangle/x"); err == nil {
		t.Error("resolves through a dangling link: nil, want a refusal")
	}
	for round := range 300 {
		dir := filepath.Join("/race", string(rune('a'+round%26)), filepath.Base(t.TempDir()))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					errs <- f.MkdirAll(dir, 0o755)
				} else {
					errs <- f.Resolves(dir + "/file")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestFS_Host checks that without a root (or with "/") names are host
// paths.
func TestFS_Host(t *testing.T) {
	if New("/").Dir() != "" {
		t.Error(`New("/") is not the host's filesystem`)
	}
	dir := t.TempDir()
	f := New("")
	name := filepath.Join(dir, "a", "b")
	if err := f.MkdirAll(name, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := f.HostPath(name); got != name {
		t.Errorf("host path %q, want %q", got, name)
	}
	if err := f.Chmod(name, 0o1750); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, %v; want sticky 0750", fi.Mode(), err)
	}
}

// TestFS_ReadNoFollow reads files of every size relative to the buffer,
// in the root and on the host, whole; a symlink as the last element is
// refused, and one that leads out of the root too.
func TestFS_ReadNoFollow(t *testing.T) {
	root, _ := plant(t)
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, fsys := range map[string]*FS{"root": New(root), "host": New("")} {
		defer fsys.Close()
		prefix := ""
		if name == "host" {
			prefix = root
		}
		for _, size := range []int{0, 1, 15, 16, 17, 100, 4096} {
			want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			p := "/srv/f.conf"
			if err := os.WriteFile(filepath.Join(root, p), want, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, bufSize := range []int{1, 16, size + 1, size + 512} {
				var got bytes.Buffer
				if err := fsys.ReadNoFollow(prefix+p, int64(size), make([]byte, bufSize), &got); err != nil {
					t.Fatalf("%s: size %d, buffer %d: %v", name, size, bufSize, err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("%s: size %d, buffer %d: read %d bytes, want %d", name, size, bufSize, got.Len(), size)
				}
			}
		}
		if err := os.Symlink("f.conf", filepath.Join(root, "srv", "link-"+name)); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := fsys.ReadNoFollow(prefix+"/srv/link-"+name, 0, make([]byte, 64), &got); err == nil || got.Len() != 0 {
			t.Fatalf("%s: a symlink as the last element was followed: %v, %d bytes", name, err, got.Len())
		}
	}
	f := New(root)
	defer f.Close()
	var got bytes.Buffer
	if err := f.ReadNoFollow("/etc/keep.conf", 5, make([]byte, 64), &got); !errors.Is(err, ErrEscapes) || got.Len() != 0 {
		t.Fatalf("read through a symlink out of the root: %v, %q", err, got.String())
	}
}

// TestReadShort_InterruptedReads: reads that come up short before the size
// lstat gave are followed by more, so the whole content is read; once the
// size is read, a short read ends it.
func TestReadShort_InterruptedReads(t *testing.T) {
	want := bytes.Repeat([]byte("x"), 1000)
	for _, chunk := range []int{1, 7, 512, 999} {
		src := bytes.NewReader(want)
		reads := 0
		var got bytes.Buffer
		err := readShort("f", int64(len(want)), make([]byte, len(want)+1), &got, func(p []byte) (int, error) {
			reads++
			return src.Read(p[:min(len(p), chunk)])
		})
		if err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("chunks of %d: %v, read %d bytes of %d", chunk, err, got.Len(), len(want))
		}
		if wantReads := (len(want) + chunk - 1) / chunk; reads != wantReads {
			t.Fatalf("chunks of %d: %d reads, want %d (no read past the size)", chunk, reads, wantReads)
		}
	}
}
