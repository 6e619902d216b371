//go:build !lean

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPair builds fsgit as it is installed (scripts/build.sh): the front
// for cached runs (fsgit), the full fsgit (fsgit-core) and fsgit-iceberg,
// into a new directory, and returns it.
func buildPair(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds fsgit twice")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build fsgit with")
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/build.sh", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build.sh: %v\n%s", err, out)
	}
	return dir
}

// runBin runs a binary and returns its exit code, stdout and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("run %s: %v", bin, err)
	return 0, "", ""
}

// moveAside renames path to path+".aside" and returns the function that
// puts it back.
func moveAside(t *testing.T, path string) func() {
	t.Helper()
	if err := os.Rename(path, path+".aside"); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Rename(path+".aside", path); err != nil {
			t.Fatal(err)
		}
	}
}

// wantHandOver checks that the front tried to hand the command to
// fsgit-core, which is not there: exit 1 and the reason on stderr.
func wantHandOver(t *testing.T, what string, code int, errOut string) {
	t.Helper()
	if code != 1 || !strings.Contains(errOut, "run the full fsgit") || !strings.Contains(errOut, "fsgit-core") {
		t.Errorf("%s with fsgit-core gone: exit %d, want 1 and the hand-over's error\n%s", what, code, errOut)
	}
}

// TestFront runs fsgit as installed: the front runs a cached catalog
// itself, and hands everything else to fsgit-core, which is moved aside to
// tell who ran what.
func TestFront(t *testing.T) {
	bin := buildPair(t)
	front, core := filepath.Join(bin, "fsgit"), filepath.Join(bin, "fsgit-core")
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root, "-v"}

	// Other commands, help and bad flags are the full fsgit's, to the
	// byte.
	for _, cl := range [][]string{{"version"}, {"apply", "--help"}, {"apply", "--once", "--bogus"}, {"nosuch"}} {
		fc, fout, ferr := runBin(t, front, cl...)
		cc, cout, cerr := runBin(t, core, cl...)
		if fc != cc || fout != cout || ferr != cerr {
			t.Errorf("fsgit %q: the front gave exit %d\n%s%s\nfsgit-core gave exit %d\n%s%s", cl, fc, fout, ferr, cc, cout, cerr)
		}
	}

	// The first run: nothing cached, so fsgit-core evaluates the site
	// and caches the catalog under its own build identity.
	code, out, errOut := runBin(t, front, args...)
	if code != 2 || catalogFrom(t, errOut) != "evaluated" {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errOut)
	}
	_, id, _ := runBin(t, core, "version", "--build-identity")
	if cf, _ := cacheFile(t, root); cf.Build != strings.TrimSpace(id) {
		t.Errorf("cache written by build %q, want fsgit-core's %q", cf.Build, id)
	}

	// From here fsgit-core is gone: what runs, the front ran.
	restore := moveAside(t, core)
	code, out, errOut = runBin(t, front, args...)
	if code != 0 || catalogFrom(t, errOut) != "cache" {
		t.Fatalf("second apply, by the front: exit %d\n%s%s", code, out, errOut)
	}
	conf := filepath.Join(root, "etc/app/a.conf")
	if err := os.WriteFile(conf, []byte("drifted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runBin(t, front, args...)
	if b, _ := os.ReadFile(conf); code != 2 || string(b) != "a=1\n" {
		t.Errorf("drift corrected by the front: exit %d, a.conf %q\n%s%s", code, b, out, errOut)
	}
	code, out, _ = runBin(t, front, append(args, "-o", "json")...)
	if code != 0 || !strings.Contains(out, `"node": "n1"`) {
		t.Errorf("JSON report from the front: exit %d\n%s", code, out)
	}
	for _, cl := range [][]string{
		{"version"},
		append(args, "-o", "yaml"),
		append(args, "--no-cache"),
		{"apply", "--once", "--bogus"},
	} {
		code, _, errOut := runBin(t, front, cl...)
		wantHandOver(t, strings.Join(cl, " "), code, errOut)
	}

	// A site with a Docker kind, which the front does not link: the
	// catalog fsgit-core caches for it is handed back to fsgit-core.
	restore()
	docker := sandboxSite(t, `"docker.volume:cache": {}`)
	dargs := []string{"apply", "--once", "--site", docker, "--node", "n1", "--root", filepath.Join(t.TempDir(), "root")}
	if code, out, errOut := runBin(t, front, dargs...); code != 2 {
		t.Fatalf("apply of a site with a Docker kind: exit %d\n%s%s", code, out, errOut)
	}
	restore = moveAside(t, core)
	code, _, errOut = runBin(t, front, dargs...)
	wantHandOver(t, "a cached catalog with a Docker kind", code, errOut)
	restore()

	// A front whose stamp is not the build that compiled the cache runs
	// nothing itself; nor does one without a stamp.
	for _, ldflags := range []string{"-X 'main.coreBuild=another build'", ""} {
		other := filepath.Join(t.TempDir(), "fsgit")
		cmd := exec.Command("go", "build", "-tags", "lean", "-ldflags", ldflags, "-o", other, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build the front: %v\n%s", err, b)
		}
		code, _, errOut := runBin(t, other, args...)
		wantHandOver(t, "a front stamped "+ldflags, code, errOut)
	}
}

// TestFrontRegistry checks the front's kinds: every kind of the full
// fsgit but the Docker ones.
func TestFrontRegistry(t *testing.T) {
	reg := newFrontRegistry()
	has := func(kind string) bool { _, ok := reg.Lookup(kind); return ok }
	for _, kind := range []string{"docker.image", "docker.network", "docker.volume", "docker.container"} {
		if has(kind) {
			t.Errorf("the front's registry has %s, whose client it must not link", kind)
		}
	}
	full := newRegistry()
	for _, kind := range full.Kinds() {
		if !has(kind) && !strings.HasPrefix(kind, "docker.") {
			t.Errorf("the front's registry lacks %s", kind)
		}
	}
}
