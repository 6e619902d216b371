//go:build !lean

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// assertEmpty fails when dir holds anything: fsgit wrote outside its root.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("written outside the root: %s", filepath.Join(dir, e.Name()))
	}
}

// TestApply_OwnFilesStayInRoot checks that fsgit's own files (the state,
// the catalog cache, the run summary) go through the same confinement as
// every managed path: a symlink planted in the root, or one the site
// itself declares, never carries them out of --root (issue 12 item 9).
func TestApply_OwnFilesStayInRoot(t *testing.T) {
	t.Run("planted var link", func(t *testing.T) {
		site := sandboxSite(t, "")
		root, outside := t.TempDir(), t.TempDir()
		if err := os.Symlink(outside, filepath.Join(root, "var")); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root)
		if code != 1 || !strings.Contains(errOut, "outside root") {
			t.Errorf("exit %d, want 1 and a refusal to leave the root\n%s%s", code, out, errOut)
		}
		assertEmpty(t, outside)
	})
	t.Run("planted state directory link", func(t *testing.T) {
		site := sandboxSite(t, "")
		root, outside := t.TempDir(), t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "var/lib"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../../../../../.."+outside, filepath.Join(root, "var/lib/fsgit")); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root)
		if code != 1 || !strings.Contains(errOut, "outside root") {
			t.Errorf("exit %d, want 1 and a refusal to leave the root\n%s%s", code, out, errOut)
		}
		assertEmpty(t, outside)
	})
	t.Run("site symlink", func(t *testing.T) {
		// The site itself points /var/lib/fsgit out of the root; the state
		// is elsewhere (--state), so the run goes ahead and makes the
		// link, and the summary that would follow it is refused.
		outside := t.TempDir()
		site := sandboxSite(t, `"symlink:/var/lib/fsgit": {target: "`+outside+`"}`)
		root := t.TempDir()
		statePath := filepath.Join(t.TempDir(), "state.db")
		code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--state", statePath)
		if code != 6 || !strings.Contains(errOut, "the run is not recorded") || !strings.Contains(errOut, "outside root") {
			t.Errorf("exit %d, want 6 (changes, and the summary refused)\n%s%s", code, out, errOut)
		}
		if target, err := os.Readlink(filepath.Join(root, "var/lib/fsgit")); err != nil || target != outside {
			t.Errorf("the declared link: %q, %v", target, err)
		}
		assertEmpty(t, outside)
	})
}

// TestApply_RootIsNotADirectory checks that --root naming a file is
// refused before anything runs: exit 1, one line, no report, with or
// without --state, in noop too (issue 12 item 11).
func TestApply_RootIsNotADirectory(t *testing.T) {
	site := sandboxSite(t, "")
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root")
	if err := os.WriteFile(rootFile, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--noop"}, {"--state", filepath.Join(dir, "state.db")}, {"--state", filepath.Join(dir, "state.db"), "--noop"}} {
		args := append([]string{"apply", "--once", "--site", site, "--node", "n1", "--root", rootFile}, extra...)
		code, out, errOut := fsgit(t, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 1 || out != "" || len(lines) != 1 || !strings.Contains(errOut, "--root "+rootFile+" is a regular file, not a directory") {
			t.Errorf("%v: exit %d, want 1 with one line saying the root is not a directory\nstdout: %s\nstderr: %s", extra, code, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		t.Error("a state file was made for a run that should not have started")
	}
}
