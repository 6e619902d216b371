package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hostDirs opens host directories.
type hostDirs struct{}

func (hostDirs) OpenDir(name string) (*os.Root, error) { return os.OpenRoot(name) }

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onlyTarget fails when dir holds anything but the names given: a
// temporary file was left behind.
func onlyTarget(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("directory holds %v, want %v", got, names)
	}
}

func TestWriteFile_ReplacesWithModeAndNewInode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(hostDirs{}, path, []byte("new\n"), Options{UID: -1, GID: -1, Mode: 0o4750}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "new\n" {
		t.Errorf("content %q", got)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode&0o7777 != 0o4750 {
		t.Errorf("mode %o, want 4750", after.Mode&0o7777)
	}
	if after.Ino == before.Ino {
		t.Error("replaced in place (same inode): a reader could see a mix")
	}
	onlyTarget(t, dir, "a.conf")
}

func TestReplace_FailedWriteLeavesTargetAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("digest mismatch")
	err := Replace(hostDirs{}, path, Options{UID: -1, GID: -1, Mode: 0o644}, func(w io.Writer) error {
		if _, err := w.Write([]byte("half")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's", err)
	}
	if got := read(t, path); got != "old\n" {
		t.Errorf("target changed to %q", got)
	}
	onlyTarget(t, dir, "a.conf")
}

func TestReplace_StaleTemporaryAndSymlinkTarget(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.conf")
	// A symlink at the target is replaced, not followed; a temporary left
	// by a crash (here itself a symlink out) is replaced too.
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, TempName("a.conf"))); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(hostDirs{}, path, []byte("new\n"), Options{UID: -1, GID: -1, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("target is %v, %v; want a regular file", fi, err)
	}
	if got := read(t, victim); got != "host\n" {
		t.Errorf("the symlink's target was written: %q", got)
	}
	onlyTarget(t, dir, "a.conf")
}

func TestSymlinkIn_Replaces(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "current"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, target := range []string{"v1", "/opt/app/v2"} {
		if err := SymlinkIn(r, "current", target); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(filepath.Join(dir, "current")); err != nil || got != target {
			t.Errorf("link = %q, %v; want %q", got, err, target)
		}
	}
	onlyTarget(t, dir, "current")
}

func TestReplaceIn_RefusesANameThatIsNotOneEntry(t *testing.T) {
	r, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, base := range []string{"", ".", "..", "a/b", "/"} {
		if err := ReplaceIn(r, base, Options{UID: -1, GID: -1, Mode: 0o644}, func(io.Writer) error { return nil }); err == nil {
			t.Errorf("ReplaceIn(%q) = nil, want a refusal", base)
		}
	}
}

func TestTempName_Long(t *testing.T) {
	long := strings.Repeat("x", 250)
	if n := TempName(long); len(n) > 255 || !strings.HasPrefix(n, ".fsgit-tmp-") {
		t.Errorf("TempName of a 250-byte name = %q", n)
	}
	if n := TempName("a.conf"); n != ".a.conf.fsgit-tmp" {
		t.Errorf("TempName(a.conf) = %q", n)
	}
}
