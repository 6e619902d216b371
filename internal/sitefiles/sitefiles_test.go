package sitefiles

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/fsgit/fsgit/schema"
)

const siteCUE = `package s

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "s"
roles: r: profiles: []
nodes: n: role: "r"
`

// writeFiles writes files (slash paths to contents) under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keyDir(t *testing.T, dir string) string {
	t.Helper()
	k, err := KeyDir(dir)
	if err != nil {
		t.Fatalf("key %s: %v", dir, err)
	}
	if !strings.HasPrefix(k, "sha256:") || len(k) != len("sha256:")+64 {
		t.Fatalf("key %s = %q, want sha256:<64 hex>", dir, k)
	}
	return k
}

// TestKeyDir_FollowsCUEFiles: the key changes when a .cue file's content
// changes or a .cue file is added, and not when a file that is not CUE
// (or a hidden one) is added, in a repository and in a lone directory.
func TestKeyDir_FollowsCUEFiles(t *testing.T) {
	for _, repo := range []bool{true, false} {
		name := "lone directory"
		if repo {
			name = "repository"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{"sites/s/site.cue": siteCUE}
			if repo {
				files["cue.mod/module.cue"] = string(schema.ModuleFile())
			}
			writeFiles(t, root, files)
			site := filepath.Join(root, "sites/s")
			base := keyDir(t, site)
			if again := keyDir(t, site); again != base {
				t.Fatalf("two keys of the same files: %s, %s", base, again)
			}

			writeFiles(t, root, map[string]string{"sites/s/README.md": "notes\n", "sites/s/.hidden.cue": "package s\n"})
			if got := keyDir(t, site); got != base {
				t.Errorf("a README and a hidden .cue file changed the key: %s -> %s", base, got)
			}

			seen := map[string]string{base: "base"}
			for _, e := range []struct{ what, file, content string }{
				{"site file edited, same size", "sites/s/site.cue", strings.Replace(siteCUE, `name:          "s"`, `name:          "t"`, 1)},
				{"site file edited", "sites/s/site.cue", siteCUE + "nodes: m: role: \"r\"\n"},
				{"site file added", "sites/s/extra.cue", "package s\n"},
				{"file in a subdirectory added", "sites/s/sub/sub.cue", "package sub\n"},
			} {
				writeFiles(t, root, map[string]string{e.file: e.content})
				got := keyDir(t, site)
				if prev, dup := seen[got]; dup {
					t.Errorf("%s: the key is the same as after %s", e.what, prev)
				}
				seen[got] = e.what
			}
		})
	}
}

// TestKeyDir_LoneDirectoryIsSitesName: a directory with no cue.mod/ above
// it is keyed as sites/<name> of a repository that has nothing else.
func TestKeyDir_LoneDirectoryIsSitesName(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"web/site.cue": siteCUE})
	got := keyDir(t, filepath.Join(root, "web"))
	want, err := Key(Source{FS: NewMemFS(map[string][]byte{"sites/web/site.cue": []byte(siteCUE)}), SiteDir: "sites/web"})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("KeyDir = %s, the key of sites/web in memory = %s", got, want)
	}
	other, err := Key(Source{FS: NewMemFS(map[string][]byte{"sites/other/site.cue": []byte(siteCUE)}), SiteDir: "sites/other"})
	if err != nil {
		t.Fatal(err)
	}
	if other == want {
		t.Error("the site directory's name is not in the key")
	}
}

// TestKey_Inputs: the key covers the embedded schema and profiles, the
// tree's profiles when it has some, shared packages and root files, and
// neither the revision, the limits (other than reading) nor a sibling's
// hidden directories.
func TestKey_Inputs(t *testing.T) {
	key := func(files map[string]string, mod func(*Source)) string {
		t.Helper()
		m := map[string][]byte{}
		for name, c := range files {
			m[name] = []byte(c)
		}
		src := Source{FS: NewMemFS(m), SiteDir: "sites/s"}
		if mod != nil {
			mod(&src)
		}
		k, err := Key(src)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := map[string]string{"sites/s/site.cue": siteCUE}
	with := func(name, content string) map[string]string {
		m := map[string]string{name: content}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	b := key(base, nil)
	if got := key(base, func(s *Source) { s.Revision = "abc"; s.Node = "n"; s.Limits.MaxDepth = 3 }); got != b {
		t.Error("the revision, the node or a limit other than the file size changed the key")
	}
	if got := key(with("sites/s/.git/x.cue", "package x\n"), nil); got != b {
		t.Error("a file in a hidden directory changed the key")
	}
	if got := key(with("sites/s/cue.mod/module.cue", "module: \"x\"\n"), nil); got != b {
		t.Error("a cue.mod/ of the site changed the key")
	}
	for _, name := range []string{"schema/profile/p.cue", "sites/lib/lib.cue", "root.cue", "sites/site.cue"} {
		if got := key(with(name, "package x\n"), nil); got == b {
			t.Errorf("%s did not change the key", name)
		}
	}
	// Outside the site's top directory, .cue files are not inputs.
	if got := key(with("other/x.cue", "package x\n"), nil); got != b {
		t.Error("a .cue file of another top-level directory changed the key")
	}
	if _, err := Key(Source{FS: NewMemFS(nil), SiteDir: "schema/x"}); err == nil || !strings.HasPrefix(err.Error(), "key site: site directory \"schema/x\" must be") {
		t.Errorf("keying schema/x: %v", err)
	}
	if _, err := Key(Source{FS: NewMemFS(nil), SiteDir: "sites/none"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("keying a missing site: %v, want fs.ErrNotExist", err)
	}
	if _, err := KeyDir(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("KeyDir of a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// TestCollect_Origins: where each file comes from, which files are the
// repository's, and the size limit (listed in big, or an error).
func TestCollect_Origins(t *testing.T) {
	fsys := NewMemFS(map[string][]byte{
		"sites/s/site.cue":     []byte(siteCUE),
		"sites/s/huge.cue":     []byte("package s\n" + strings.Repeat("// x\n", 100)),
		"schema/profile/p.cue": []byte("package profile\n"),
		"schema/kinds.cue":     []byte("package schema // replaced by the embedded schema\n"),
	})
	big := map[string]int64{}
	tr, err := Collect(fsys, "sites/s", 200, big)
	if err != nil {
		t.Fatal(err)
	}
	if big["sites/s/huge.cue"] != 510 || len(big) != 1 {
		t.Errorf("big = %v, want sites/s/huge.cue of 510 bytes", big)
	}
	if _, read := tr.Files["sites/s/huge.cue"]; read {
		t.Error("a file over the limit was read")
	}
	want := map[string]Origin{"sites/s/site.cue": OriginSite, "schema/profile/p.cue": OriginProfile, "cue.mod/module.cue": OriginSchema}
	for name, o := range want {
		if tr.Origins[name] != o {
			t.Errorf("origin of %s = %d, want %d", name, tr.Origins[name], o)
		}
	}
	for _, name := range schema.ProfileFiles() {
		if _, ok := tr.Files["schema/"+name]; ok {
			t.Errorf("embedded profile %s loaded although the tree has profiles", name)
		}
	}
	embedded, err := fs.ReadFile(schema.Files(), "kinds.cue")
	if err != nil {
		t.Fatal(err)
	}
	if string(tr.Files["schema/kinds.cue"]) != string(embedded) {
		t.Error("the tree's schema/kinds.cue replaced the embedded one")
	}
	if len(tr.Repo) != 2 || !tr.Repo["sites/s/site.cue"] || !tr.Repo["schema/profile/p.cue"] || len(tr.RepoHash) != 64 {
		t.Errorf("repository files %v, hash %q", tr.Repo, tr.RepoHash)
	}
	if _, err := Collect(fsys, "sites/s", 200, nil); err == nil || !strings.Contains(err.Error(), "sites/s/huge.cue: 510 bytes") {
		t.Errorf("without big, a file over the limit: %v", err)
	}
	if _, err := Collect(fsys, "sites/s", -1, nil); err != nil {
		t.Errorf("no size limit: %v", err)
	}
}

// TestFS: the in-memory tree is a file system as testing/fstest checks
// it; a lone directory shown as a site has its files under the site's
// directory, and nothing else.
func TestFS(t *testing.T) {
	if err := fstest.TestFS(NewMemFS(map[string][]byte{"sites/s/site.cue": []byte(siteCUE), "root.cue": nil}), "sites/s/site.cue", "root.cue"); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"site.cue": siteCUE, "sub/x.cue": "package x\n"})
	fsys := dirAsSite(dir, "sites/web")
	var walked []string
	if err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		walked = append(walked, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(walked, " "), ". sites sites/web sites/web/site.cue sites/web/sub sites/web/sub/x.cue"; got != want {
		t.Errorf("walked %s, want %s", got, want)
	}
	if b, err := fs.ReadFile(fsys, "sites/web/site.cue"); err != nil || string(b) != siteCUE {
		t.Errorf("read sites/web/site.cue: %q, %v", b, err)
	}
	for _, name := range []string{"site.cue", "sites/other", "schema", "sites/web/none.cue"} {
		if _, err := fs.Stat(fsys, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat %s: %v, want fs.ErrNotExist", name, err)
		}
	}
}

// TestNoCUE fails if the package ever links CUE (or another heavy
// dependency of fsgit): a binary that only computes keys must stay lean.
func TestNoCUE(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/fsgit/fsgit/internal/sitefiles") {
		t.Fatalf("go list -deps listed %d packages, not this one: %q", len(deps), out)
	}
	for _, p := range deps {
		for _, heavy := range []string{"cuelang.org/", "github.com/cockroachdb/apd", "github.com/prometheus/", "github.com/docker/"} {
			if strings.HasPrefix(p, heavy) {
				t.Errorf("sitefiles links %s", p)
			}
		}
	}
}
