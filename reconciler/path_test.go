package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvPath_SymlinkedParent checks that Path refuses, under a root, a
// path whose parents resolve outside it through a symlink, dangling or
// not, and accepts one that stays inside.
func TestEnvPath_SymlinkedParent(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(root, "etc")))           // absolute, out
	must(os.Symlink("../../..", filepath.Join(root, "up")))         // relative, out
	must(os.Mkdir(filepath.Join(root, "real"), 0o755))              //
	must(os.Symlink("real", filepath.Join(root, "in")))             // relative, in
	must(os.Symlink("/does/not/exist", filepath.Join(root, "abs"))) // absolute, dangling
	must(os.Symlink("not/there", filepath.Join(root, "dangle")))    // relative, dangling
	env := &Env{Root: root}
	for _, tc := range []struct {
		path, wantErr string
	}{
		{"/etc/passwd", "outside root"},
		{"/etc/a/b/c", "outside root"},
		{"/up/x", "outside root"},
		{"/abs/x", "outside root"},
		{"/dangle/x", "dangling symlink"},
		{"/in/x", ""},
		{"/in/new/deeper/x", ""},
		{"/etc", ""},    // the last element itself is not followed
		{"/dangle", ""}, // idem
		{"/", ""},
	} {
		got, err := env.Path(tc.path)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Path(%q) = %v", tc.path, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Path(%q) = %q, %v; want an error with %q", tc.path, got, err, tc.wantErr)
		}
	}
	if err := env.CheckResolved(filepath.Join(root, "etc")); err == nil {
		t.Errorf("CheckResolved(<root>/etc) = nil, want the symlink itself refused")
	}
	if err := (&Env{}).CheckResolved(filepath.Join(root, "etc")); err != nil {
		t.Errorf("CheckResolved without a root = %v, want nil", err)
	}
}
