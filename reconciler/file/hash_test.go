package file

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fsgit/fsgit/internal/rootfs"
)

// TestFile_HashReusedBuffer: hashFile reuses one read buffer and one
// digest across files, and a file's digest is its own content's whatever
// was hashed before it: a large file, then smaller ones, then one larger
// than the buffers kept, then an empty one.
func TestFile_HashReusedBuffer(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "d"))
	contents := []string{
		string(bytes.Repeat([]byte("large-"), 2000)),
		"ab\n",
		"another, a little longer\n",
		string(bytes.Repeat([]byte{'z'}, maxKeptBuffer+10)),
		"",
		"c",
	}
	for i, c := range contents {
		writeFile(t, filepath.Join(root, "d", fmt.Sprintf("f%d", i)), c, 0o644)
	}
	fsys := rootfs.New(root)
	defer fsys.Close()
	k := &File{}
	for round := 0; round < 2; round++ {
		for i, c := range contents {
			got, err := k.hashFile(fsys, fmt.Sprintf("/d/f%d", i), int64(len(c)))
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256([]byte(c)); !bytes.Equal(got, want[:]) {
				t.Fatalf("round %d, file %d (%d bytes): digest %x, want %x", round, i, len(c), got, want)
			}
		}
	}
}

// TestFile_HashConcurrent: workers hashing files at the same time (as
// the engine's do) each get a digest of their own file's content.
func TestFile_HashConcurrent(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "d"))
	const n = 64
	for i := 0; i < n; i++ {
		writeFile(t, filepath.Join(root, "d", fmt.Sprintf("f%d", i)), string(bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*97)), 0o644)
	}
	fsys := rootfs.New(root)
	defer fsys.Close()
	k := &File{}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				data, err := os.ReadFile(filepath.Join(root, "d", fmt.Sprintf("f%d", i)))
				if err != nil {
					errs <- err
					return
				}
				got, err := k.hashFile(fsys, fmt.Sprintf("/d/f%d", i), int64(len(data)))
				if want := sha256.Sum256(data); err != nil || !bytes.Equal(got, want[:]) {
					errs <- fmt.Errorf("file %d: digest %x, error %v; want %x", i, got, err, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestAccounts_NumericNames: a name that is a number (with a sign, as
// strconv.Atoi reads it) is an ID; a negative one is not, and any other
// name is looked up in the root's tables.
func TestAccounts_NumericNames(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "etc"))
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nfs_svc:x:4242:4343::/nonexistent:/usr/sbin/nologin\n", 0o644)
	writeFile(t, filepath.Join(root, "etc/group"), "root:x:0:\n", 0o644)
	a, err := loadAccounts(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"0": 0, "4242": 4242, "+7": 7, "007": 7, "fs_svc": 4242, "root": 0} {
		if got, err := a.uid(name); err != nil || got != want {
			t.Errorf("uid(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"-1", "", "nobody-here", "4x"} {
		if got, err := a.uid(name); err == nil {
			t.Errorf("uid(%q) = %d, want an error", name, got)
		}
	}
}
