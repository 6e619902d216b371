// Package faulttest injects file system faults for tests, on real file
// systems: a small tmpfs that fills up, a read-only remount, an immutable
// file, a file damaged under the program that has it open. Mounting needs root; a test skips, saying why, only where the
// kernel refuses the mount.
package faulttest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size (as mount(8) takes it: "300k", "2m") on a
// new temporary directory, unmounted when the test ends, and returns the
// directory.
func Tmpfs(tb testing.TB, size string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("mounting a tmpfs needs root")
	}
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		tb.Skipf("the kernel refuses to mount a tmpfs here: %v", err)
	}
	tb.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// Remount remounts the tmpfs at dir read-only or read-write.
func Remount(tb testing.TB, dir string, readOnly bool) {
	tb.Helper()
	flags := uintptr(syscall.MS_REMOUNT)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, ""); err != nil {
		tb.Skipf("the kernel refuses to remount %s (read-only %v): %v", dir, readOnly, err)
	}
}

// Fill takes the free space of dir's file system but leave bytes, with a
// file named "filler" in dir, and returns the function that gives the
// space back.
func Fill(tb testing.TB, dir string, leave int64) (free func()) {
	tb.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - leave
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for ; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			break
		}
	}
	_ = f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}

// Chattr sets ("+i") or clears ("-i") the immutable attribute of path
// with chattr(1). Setting it clears it again when the test ends.
func Chattr(tb testing.TB, flag, path string) {
	tb.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		tb.Skipf("chattr %s %s: %v: %s", flag, path, err, out)
	}
	if flag == "+i" {
		tb.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
	}
}

// PartialNames are the name parts of files being written, which a failed
// write must remove: fsgit's temporary files (managed files, artifact
// downloads and verification records, the state's inventory copy and run
// summary, a state file being built) and go-git's (pack and object files
// being written).
var PartialNames = []string{".fsgit-tmp-", ".download-", ".record-", ".tmp-", "state.db.new-", "tmp_pack_", "tmp_obj_", "tmp_idx_"}

// Leftovers lists the partial files under dir.
func Leftovers(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, pat := range PartialNames {
			if strings.Contains(d.Name(), pat) {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	return out
}

// Scribble writes 0xA5 over every byte of the file at path past its first
// 8 KiB (a bbolt file's two meta pages, at the usual 4 KiB page size),
// through a descriptor of its own, as a failing disk would: a program
// that has the file open or mapped sees the damage.
func Scribble(tb testing.TB, path string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(fi.Size())-8192), 8192); err != nil {
		tb.Fatal(err)
	}
}
