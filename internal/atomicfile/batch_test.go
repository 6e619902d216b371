package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestBatch_TargetsUntouchedUntilCommit stages two files in one directory
// and one in another: before Commit the targets hold their old content
// (or are absent) and temporary files are there; after it every target
// holds its new content with its mode, and no temporary file is left.
func TestBatch_TargetsUntouchedUntilCommit(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	old := filepath.Join(dirA, "a.conf")
	if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := NewBatch()
	for owner, name := range map[string]string{"r1": old, "r2": filepath.Join(dirA, "b.conf"), "r3": filepath.Join(dirB, "c.conf")} {
		content := "new " + filepath.Base(name)
		if err := b.Replace(owner, hostDirs{}, name, Options{UID: -1, GID: -1, Mode: 0o640}, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, old); got != "old" {
		t.Fatalf("before commit: %s holds %q, want the old content", old, got)
	}
	if _, err := os.Lstat(filepath.Join(dirA, "b.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("before commit: b.conf exists (%v)", err)
	}
	if !b.Pending("r1") || b.Pending("r9") || b.Len() != 3 {
		t.Fatalf("pending: r1 %v, r9 %v, len %d; want true, false, 3", b.Pending("r1"), b.Pending("r9"), b.Len())
	}
	if errs := b.Commit(); errs != nil {
		t.Fatalf("commit: %v", errs)
	}
	for _, name := range []string{old, filepath.Join(dirA, "b.conf"), filepath.Join(dirB, "c.conf")} {
		if got, want := read(t, name), "new "+filepath.Base(name); got != want {
			t.Fatalf("after commit: %s holds %q, want %q", name, got, want)
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s: mode %v, want 0640", name, fi.Mode().Perm())
		}
	}
	onlyTarget(t, dirA, "a.conf", "b.conf")
	onlyTarget(t, dirB, "c.conf")
	if b.Len() != 0 || b.Pending("r1") {
		t.Fatal("batch not empty after commit")
	}
}

// TestBatch_FailedWriteStagesNothing: a write that fails leaves no
// temporary file and nothing to commit.
func TestBatch_FailedWriteStagesNothing(t *testing.T) {
	dir := t.TempDir()
	b := NewBatch()
	boom := errors.New("boom")
	err := b.Replace("r1", hostDirs{}, filepath.Join(dir, "a.conf"), Options{UID: -1, GID: -1, Mode: 0o644}, func(io.Writer) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Replace: %v, want boom", err)
	}
	if b.Len() != 0 {
		t.Fatalf("%d staged after a failed write", b.Len())
	}
	if errs := b.Commit(); errs != nil {
		t.Fatal(errs)
	}
	onlyTarget(t, dir)
}

// TestBatch_CommitReportsOwner: a staged file whose temporary file went
// away fails its owner only; the others are committed.
func TestBatch_CommitReportsOwner(t *testing.T) {
	dir := t.TempDir()
	b := NewBatch()
	for _, owner := range []string{"a", "b"} {
		if err := b.Replace(owner, hostDirs{}, filepath.Join(dir, owner), Options{UID: -1, GID: -1, Mode: 0o644}, func(w io.Writer) error {
			_, err := io.WriteString(w, owner)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, TempName("a"))); err != nil {
		t.Fatal(err)
	}
	errs := b.Commit()
	if errs["a"] == nil || errs["b"] != nil || len(errs) != 1 {
		t.Fatalf("commit errors %v, want one for a only", errs)
	}
	if got := read(t, filepath.Join(dir, "b")); got != "b" {
		t.Fatalf("b holds %q", got)
	}
}

// TestBatch_CommitDuringReplace commits over and over while other
// goroutines stage files in the same directories (as the engine commits
// while resources are still in hand): no staged file may go through a
// directory a commit has closed, and every file ends with its content.
func TestBatch_CommitDuringReplace(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	b := NewBatch()
	const writers, each = 6, 60
	var wg sync.WaitGroup
	done := make(chan struct{})
	errc := make(chan error, writers*each+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := filepath.Join(dirs[i%2], fmt.Sprintf("w%d-%03d", w, i))
				if err := b.Replace(name, hostDirs{}, name, Options{UID: -1, GID: -1, Mode: 0o644}, func(wr io.Writer) error {
					_, err := io.WriteString(wr, filepath.Base(name))
					return err
				}); err != nil {
					errc <- err
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	commit := func() {
		for owner, err := range b.Commit() {
			errc <- fmt.Errorf("%s: %w", owner, err)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			commit()
		}
	}
	commit()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for w := range writers {
		for i := range each {
			name := filepath.Join(dirs[i%2], fmt.Sprintf("w%d-%03d", w, i))
			if got := read(t, name); got != filepath.Base(name) {
				t.Fatalf("%s holds %q", name, got)
			}
		}
	}
}

// TestBatch_StaleTemporaries: what a crash left under a target's temporary
// name (a symlink out of the directory, a regular file, an empty
// directory) is replaced, never followed, and the target gets the new
// content.
func TestBatch_StaleTemporaries(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, TempName("a.conf"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TempName("b.conf")), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, TempName("c.conf")), 0o755); err != nil {
		t.Fatal(err)
	}
	b := NewBatch()
	for _, base := range []string{"a.conf", "b.conf", "c.conf"} {
		if err := b.Replace(base, hostDirs{}, filepath.Join(dir, base), Options{UID: -1, GID: -1, Mode: 0o600}, func(w io.Writer) error {
			_, err := io.WriteString(w, "new "+base)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if errs := b.Commit(); errs != nil {
		t.Fatalf("commit: %v", errs)
	}
	for _, base := range []string{"a.conf", "b.conf", "c.conf"} {
		if got := read(t, filepath.Join(dir, base)); got != "new "+base {
			t.Errorf("%s holds %q", base, got)
		}
	}
	if got := read(t, victim); got != "host\n" {
		t.Errorf("the stale temporary's symlink was followed: %q", got)
	}
	onlyTarget(t, dir, "a.conf", "b.conf", "c.conf")
}
