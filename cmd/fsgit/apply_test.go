//go:build !lean

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/state"
)

// sandboxSite writes a small site whose node n1 manages files (which honour
// --root) and a package and a service (which cannot), and returns its
// directory.
func sandboxSite(t testing.TB, extra string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sandbox")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	site := `package sandbox

import "github.com/fsgit/fsgit/schema"

schema.#Site

schemaVersion: "v1"
name:          "sandbox"
data: {}
roles: web: {
	profiles: []
	data: {}
	resources: {
		"directory:/etc/app": {}
		"file:/etc/app/a.conf": {content: "a=1\n", require: ["directory:/etc/app"], notify: ["service:app"]}
		"file:/etc/app/b.conf": {content: "b=1\n", require: ["directory:/etc/app"], notify: ["service:app"]}
		"service:app": {}
		"package:nginx": {}
` + extra + `
	}
}
nodes: n1: {role: "web", data: {}, resources: {}}
`
	if err := os.WriteFile(filepath.Join(dir, "site.cue"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fsgit runs the command line in-process and returns its exit code,
// stdout and stderr.
func fsgit(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	code := 0
	if err := root.Execute(); err != nil {
		var ee *exitError
		code = 1
		if errors.As(err, &ee) {
			code = ee.code
			if ee.err == nil {
				err = nil
			}
		}
		if err != nil {
			fmt.Fprintln(&stderr, "fsgit:", err)
		}
	}
	return code, stdout.String(), stderr.String()
}

// snapshot returns every path under root with its inode and mtime.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = fmt.Sprintf("ino=%d mtime=%d", st.Ino, fi.ModTime().UnixNano())
		return nil
	})
	return out
}

func TestApply_NoopWritesNothing(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--noop")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (changes found)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"noop: nothing was changed", "would create     file:/etc/app/a.conf", "skipped          package:nginx", "packages cannot be installed under --root"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("noop created the root (or something in it): %v", err)
	}

	// Noop after a real run: the state and the summary stay as they were.
	if code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root); code != 2 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/app/a.conf"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)
	code, out, _ = fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--noop")
	if code != 2 || !strings.Contains(out, "would change     file:/etc/app/a.conf  (drift)") {
		t.Fatalf("noop over drift: exit %d\n%s", code, out)
	}
	if after := snapshot(t, root); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("noop wrote:\n%v\n%v", before, after)
	}
}

func TestApply_Twice(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root}
	code, out, errOut := fsgit(t, args...)
	if code != 2 {
		t.Fatalf("first apply: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/app/a.conf")); err != nil || string(b) != "a=1\n" {
		t.Fatalf("a.conf: %q %v", b, err)
	}
	var sum pass.Summary
	b, err := os.ReadFile(filepath.Join(root, "var/lib/fsgit/last_run_summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.ExitCode != 2 || sum.Resources.Outcomes["created"] != 3 || sum.Resources.Outcomes["skipped"] != 2 || sum.Node != "n1" {
		t.Fatalf("summary %+v", sum)
	}

	managed := filepath.Join(root, "etc")
	before := snapshot(t, managed)
	code, out, errOut = fsgit(t, args...)
	if code != 0 {
		t.Fatalf("second apply: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "summary: 2 skipped, 3 unchanged") {
		t.Fatalf("second apply report:\n%s", out)
	}
	if after := snapshot(t, managed); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the second apply wrote managed files:\n%v\n%v", before, after)
	}
	st, err := state.Open(filepath.Join(root, "var/lib/fsgit/state.db"), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.History(0)
	if err != nil || len(runs) != 2 || runs[0].ExitCode != 0 || runs[1].ExitCode != 2 {
		t.Fatalf("history %+v %v", runs, err)
	}
	meta, _ := st.Meta()
	if meta.AppliedRevision == "" || meta.AppliedRevision != runs[0].Revision {
		t.Fatalf("applied revision %+v", meta)
	}

	// A hand edit is drift: corrected, and marked so.
	if err := os.WriteFile(filepath.Join(root, "etc/app/b.conf"), []byte("b=evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, _ = fsgit(t, args...)
	if code != 2 || !strings.Contains(out, "changed          file:/etc/app/b.conf  (drift corrected)") {
		t.Fatalf("drift: exit %d\n%s", code, out)
	}
}

func TestApply_MissingSecretFailsOnlyItsResource(t *testing.T) {
	site := sandboxSite(t, `		"file:/etc/app/db.cnf": {content: "password={{secret:PW}}\n", secrets: PW: secret: "mariadb/fs_user"}
		"file:/etc/app/needs-db.cnf": {content: "x\n", require: ["file:/etc/app/db.cnf"]}`)
	root := filepath.Join(t.TempDir(), "root")
	secretsDir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(secretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--secrets-dir", secretsDir)
	if code != 6 {
		t.Fatalf("exit %d, want 6 (changes and a failure)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"failed           file:/etc/app/db.cnf",
		"secret mariadb/fs_user not found",
		"skipped          file:/etc/app/needs-db.cnf",
		"dependency file:/etc/app/db.cnf failed",
		"created          file:/etc/app/a.conf",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// With the secret in place the file is written, and the value never
	// reaches the report, the state or the summary.
	const value = "Sup3r-s3cret-value"
	if err := os.MkdirAll(filepath.Join(secretsDir, "mariadb"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secretsDir, "mariadb/fs_user"), []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--secrets-dir", secretsDir, "-o", "json", "-v")
	if code != 2 {
		t.Fatalf("with the secret: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/app/db.cnf")); string(b) != "password="+value+"\n" {
		t.Fatalf("db.cnf: %q", b)
	}
	leaks := []string{out, errOut}
	for _, f := range []string{"var/lib/fsgit/state.db", "var/lib/fsgit/last_run_summary.json"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, string(b))
	}
	for i, s := range leaks {
		if strings.Contains(s, value) {
			t.Errorf("output %d holds the secret's value", i)
		}
	}
}

func TestApply_CouldNotRun(t *testing.T) {
	cycle := sandboxSite(t, `		"file:/etc/app/x": {content: "x", require: ["file:/etc/app/y"]}
		"file:/etc/app/y": {content: "y", require: ["file:/etc/app/x"]}`)
	root := filepath.Join(t.TempDir(), "root")
	code, out, errOut := fsgit(t, "apply", "--once", "--site", cycle, "--node", "n1", "--root", root)
	if code != 1 || !strings.Contains(errOut, "cycle") {
		t.Fatalf("cycle: exit %d, want 1 naming the cycle\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a catalog with a cycle reached the node: %v", err)
	}

	site := sandboxSite(t, "")
	if code, _, errOut := fsgit(t, "apply", "--site", site, "--node", "n1"); code != 1 || !strings.Contains(errOut, "--once") {
		t.Fatalf("without --once: exit %d %s", code, errOut)
	}
	if code, _, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "nope", "--root", root); code != 1 || !strings.Contains(errOut, `node "nope" is not in site sandbox`) {
		t.Fatalf("unknown node: exit %d %s", code, errOut)
	}

	// Another fsgit holds the state: the message says so.
	st, err := state.Open(filepath.Join(root, "var/lib/fsgit/state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, errOut = fsgit(t, "apply", "--once", "--site", site, "--node", "n1", "--root", root, "--lock-timeout", "50ms")
	if code != 1 || !strings.Contains(errOut, "another fsgit") {
		t.Fatalf("locked state: exit %d %s", code, errOut)
	}
}

// cacheFile reads the catalog cache file of node n1 under root.
func cacheFile(t *testing.T, root string) (pass.CacheFile, os.FileInfo) {
	t.Helper()
	p := filepath.Join(root, "var/lib/fsgit/catalog-n1.json")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("cache file: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cf pass.CacheFile
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatalf("cache file %s: %v", b, err)
	}
	return cf, fi
}

// catalogFrom returns where the -v log says the catalog came from:
// "cache" or "evaluated" (and fails on neither or both).
func catalogFrom(t *testing.T, errOut string) string {
	t.Helper()
	cached := strings.Contains(errOut, `msg="catalog from cache"`)
	evaluated := strings.Contains(errOut, `msg="catalog evaluated"`)
	switch {
	case cached && !evaluated:
		return "cache"
	case evaluated && !cached:
		return "evaluated"
	}
	t.Fatalf("the log does not say where the catalog came from:\n%s", errOut)
	return ""
}

func TestApply_CatalogCache(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root, "-v"}
	cachePath := filepath.Join(root, "var/lib/fsgit/catalog-n1.json")

	code, out, errOut := fsgit(t, args...)
	if code != 2 || catalogFrom(t, errOut) != "evaluated" {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errOut)
	}
	cf, fi := cacheFile(t, root)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", fi.Mode())
	}
	key, err := desired.KeyDir(site)
	if err != nil {
		t.Fatal(err)
	}
	build, _ := pass.BuildIdentity()
	if cf.Key != key || cf.Build != build || cf.Node != "n1" || cf.Format != pass.CacheFormat {
		t.Errorf("cache file key %q build %q node %q format %d; want key %q build %q", cf.Key, cf.Build, cf.Node, cf.Format, key, build)
	}
	// The cached catalog is the evaluated one, spec bytes included.
	s, err := desired.LoadDir(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Catalog("n1")
	if err != nil {
		t.Fatal(err)
	}
	want.Revision = s.Revision()
	if !reflect.DeepEqual(cf.Catalog, want) {
		t.Errorf("cached catalog differs from the evaluated one:\n%+v\n%+v", cf.Catalog, want)
	}

	// Second run: from the cache, nothing to do, and the cache is not
	// rewritten.
	before := snapshot(t, cachePath)
	code, out, errOut = fsgit(t, args...)
	if code != 0 || catalogFrom(t, errOut) != "cache" {
		t.Fatalf("second apply: exit %d\n%s%s", code, out, errOut)
	}
	if after := snapshot(t, cachePath); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("a cache hit rewrote the cache: %v -> %v", before, after)
	}

	// The run really applies the cached catalog: a catalog planted under
	// the current key is what gets applied.
	for i := range cf.Catalog.Resources {
		if r := &cf.Catalog.Resources[i]; r.ID == "file:/etc/app/a.conf" {
			r.Spec = bytes.Replace(r.Spec, []byte(`a=1\n`), []byte(`a=planted\n`), 1)
		}
	}
	writeCache(t, cachePath, cf, 0o600)
	code, out, errOut = fsgit(t, args...)
	if code != 2 || catalogFrom(t, errOut) != "cache" {
		t.Fatalf("apply of a planted cache: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/app/a.conf")); string(b) != "a=planted\n" {
		t.Fatalf("a.conf = %q: the cached catalog was not applied", b)
	}

	// Touching the site keeps the cache.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(site, "site.cue"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, _, errOut = fsgit(t, args...); catalogFrom(t, errOut) != "cache" {
		t.Fatalf("touching the site invalidated the cache:\n%s", errOut)
	}

	// Editing the site invalidates it: evaluated, applied, re-cached.
	b, err := os.ReadFile(filepath.Join(site, "site.cue"))
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte(`content: "a=1\n"`), []byte(`content: "a=2\n"`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("the site's text changed: fix the test's edit")
	}
	if err := os.WriteFile(filepath.Join(site, "site.cue"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = fsgit(t, args...)
	if code != 2 || catalogFrom(t, errOut) != "evaluated" || !strings.Contains(errOut, `reason="the site changed"`) {
		t.Fatalf("apply after a site edit: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/app/a.conf")); string(b) != "a=2\n" {
		t.Fatalf("a.conf = %q after the site edit", b)
	}
	newKey, _ := desired.KeyDir(site)
	if cf, _ := cacheFile(t, root); cf.Key != newKey || newKey == key {
		t.Errorf("cache key after the edit %q, site key %q (was %q)", cf.Key, newKey, key)
	}

	// A corrupt cache file is ignored and rewritten.
	if err := os.WriteFile(cachePath, []byte(`{"format":1,"key":`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = fsgit(t, args...)
	if code != 0 || catalogFrom(t, errOut) != "evaluated" || !strings.Contains(errOut, "unreadable") {
		t.Fatalf("apply over a corrupt cache: exit %d\n%s%s", code, out, errOut)
	}
	if cf, _ := cacheFile(t, root); cf.Key != newKey || cf.Catalog == nil || len(cf.Catalog.Resources) != 5 {
		t.Errorf("the corrupt cache was not rewritten: %+v", cf)
	}
	if _, _, errOut = fsgit(t, args...); catalogFrom(t, errOut) != "cache" {
		t.Fatalf("the rewritten cache is not used:\n%s", errOut)
	}

	// A cache file others could have written is not trusted, and is
	// replaced by a private one.
	if err := os.Chmod(cachePath, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, _, errOut = fsgit(t, args...); catalogFrom(t, errOut) != "evaluated" || !strings.Contains(errOut, "not trusted") {
		t.Fatalf("a world-writable cache was used:\n%s", errOut)
	}
	if _, fi := cacheFile(t, root); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten cache mode %v", fi.Mode())
	}

	// A cache of another build is not used.
	cf, _ = cacheFile(t, root)
	cf.Build = "github.com/fsgit/fsgit@v0.0.1 buildid=other"
	writeCache(t, cachePath, cf, 0o600)
	if _, _, errOut = fsgit(t, args...); catalogFrom(t, errOut) != "evaluated" || !strings.Contains(errOut, "another fsgit build") {
		t.Fatalf("another build's cache was used:\n%s", errOut)
	}

	// --no-cache evaluates and leaves the cache alone.
	before = snapshot(t, cachePath)
	if _, _, errOut = fsgit(t, append(args, "--no-cache")...); catalogFrom(t, errOut) != "evaluated" {
		t.Fatalf("--no-cache used the cache:\n%s", errOut)
	}
	if after := snapshot(t, cachePath); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("--no-cache wrote the cache: %v -> %v", before, after)
	}
}

func writeCache(t *testing.T, path string, cf pass.CacheFile, perm os.FileMode) {
	t.Helper()
	b, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
}

func TestApply_NoopReadsCacheWritesNone(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root, "-v"}
	noop := append(append([]string(nil), args...), "--noop")
	stateDir := filepath.Join(root, "var/lib/fsgit")
	cachePath := filepath.Join(stateDir, "catalog-n1.json")

	if code, out, errOut := fsgit(t, args...); code != 2 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}

	// A valid cache: noop reads it, and writes nothing.
	before := snapshot(t, stateDir)
	code, out, errOut := fsgit(t, noop...)
	if code != 0 || catalogFrom(t, errOut) != "cache" {
		t.Fatalf("noop: exit %d\n%s%s", code, out, errOut)
	}
	if after := snapshot(t, stateDir); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("noop wrote in the state directory:\n%v\n%v", before, after)
	}

	// No cache file: noop evaluates and writes none.
	if err := os.Remove(cachePath); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, stateDir)
	if code, out, errOut = fsgit(t, noop...); code != 0 || catalogFrom(t, errOut) != "evaluated" {
		t.Fatalf("noop without cache: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(cachePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("noop wrote a cache file: %v", err)
	}
	if after := snapshot(t, stateDir); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("noop wrote in the state directory:\n%v\n%v", before, after)
	}
}

// TestApply_HonoursHolds: a hold in the state file (fsgit hold while no
// agent runs) binds fsgit apply --once as it binds the agent: the held
// file's drift is reported, not corrected; a node hold holds every
// resource; an expired hold binds nothing.
func TestApply_HonoursHolds(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root}
	if code, out, errOut := fsgit(t, args...); code != 2 {
		t.Fatalf("first apply: exit %d, want 2\n%s%s", code, out, errOut)
	}
	setHolds := func(hs ...state.Hold) {
		t.Helper()
		st, err := state.Open(filepath.Join(root, "var/lib/fsgit/state.db"), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.SetHolds(hs); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(root, "etc/app/b.conf")
	now := time.Now()
	for _, c := range []struct {
		name string
		hold state.Hold
	}{
		{"resource", state.Hold{ID: "file:/etc/app/b.conf", By: "ops", Reason: "INC-7", Since: now, Until: now.Add(time.Hour)}},
		{"node", state.Hold{By: "ops", Reason: "disk swap", Since: now, Until: now.Add(time.Hour)}},
	} {
		setHolds(c.hold)
		if err := os.WriteFile(b, []byte("b=by hand\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out, errOut := fsgit(t, args...)
		if got, _ := os.ReadFile(b); string(got) != "b=by hand\n" {
			t.Fatalf("%s hold: the held file was changed to %q\n%s%s", c.name, got, out, errOut)
		}
		if !strings.Contains(out, c.hold.Reason) {
			t.Errorf("%s hold: the report does not give the hold's reason:\n%s", c.name, out)
		}
		// Held drift is reported, not counted as corrected.
		if strings.Contains(out, "drift corrected") {
			t.Errorf("%s hold: the report says the held drift was corrected:\n%s", c.name, out)
		}
		var sum pass.Summary
		if b, err := os.ReadFile(filepath.Join(root, "var/lib/fsgit/last_run_summary.json")); err != nil || json.Unmarshal(b, &sum) != nil || sum.Resources.Corrective != 0 {
			t.Errorf("%s hold: summary %+v (%v), want no drift corrected", c.name, sum.Resources, err)
		}
	}
	setHolds(state.Hold{ID: "file:/etc/app/b.conf", By: "ops", Reason: "over", Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)})
	if code, out, errOut := fsgit(t, args...); code != 2 {
		t.Fatalf("expired hold: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if got, _ := os.ReadFile(b); string(got) == "b=by hand\n" {
		t.Fatal("an expired hold still held the file")
	}
}

// TestApply_RefusesWhilePinned: a rollback's pin (fsgit rollback while the
// agent is stopped, or before it stopped) binds fsgit apply --once: it
// would undo the rollback, so it refuses and says how to end the pin; a
// noop run still reports.
func TestApply_RefusesWhilePinned(t *testing.T) {
	site := sandboxSite(t, "")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"apply", "--once", "--site", site, "--node", "n1", "--root", root}
	if code, out, errOut := fsgit(t, args...); code != 2 {
		t.Fatalf("first apply: exit %d, want 2\n%s%s", code, out, errOut)
	}
	st, err := state.Open(filepath.Join(root, "var/lib/fsgit/state.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPin(&state.Pin{Revision: "sha256:0123456789ab", By: "ops", Reason: "bad release", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	b := filepath.Join(root, "etc/app/b.conf")
	if err := os.WriteFile(b, []byte("b=by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := fsgit(t, args...)
	if code != 1 || !strings.Contains(errOut+out, "pinned to sha256:0123456789ab by ops") || !strings.Contains(errOut+out, "fsgit rollback --release") {
		t.Fatalf("pinned apply: exit %d, want 1 and the pin\n%s%s", code, out, errOut)
	}
	if got, _ := os.ReadFile(b); string(got) != "b=by hand\n" {
		t.Fatalf("the pinned apply changed a file to %q", got)
	}
	if code, out, errOut := fsgit(t, append(args, "--noop")...); code != 2 {
		t.Fatalf("pinned noop: exit %d, want 2 (drift reported)\n%s%s", code, out, errOut)
	}
}
