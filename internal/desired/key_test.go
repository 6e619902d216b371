package desired

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/schema"
)

// keyRepo writes a repository on disk: a cue.mod/, the default profiles
// plus one of its own in schema/profile/, and two sites using it. It
// returns the repository's root.
func keyRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"cue.mod/module.cue": string(schema.ModuleFile()),
		"schema/profile/motd.cue": `package profile

#Data: motd: text: *"Managed by fsgit\n" | string

#Profiles: motd: #Motd

#Motd: #Profile & {
	data: _
	resources: "file:/etc/motd": content: "\(data.motd.text)"
}
`,
		"sites/s/site.cue": `package s

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "s"
roles: r: profiles: ["motd"]
nodes: n: {role: "r", data: motd: text: "hello\n"}
`,
		"sites/t/site.cue": `package t

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "t"
roles: r: profiles: ["motd"]
nodes: n: {role: "r"}
`,
	}
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		files["schema/"+name] = string(b)
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func keyDir(t *testing.T, dir string) string {
	t.Helper()
	k, err := KeyDir(dir)
	if err != nil {
		t.Fatalf("key %s: %v", dir, err)
	}
	return k
}

func TestKeyDir_MatchesLoadDir(t *testing.T) {
	root := keyRepo(t)
	site := filepath.Join(root, "sites/s")
	s, err := LoadDir(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	if got := keyDir(t, site); got != s.Key() || len(got) != len("sha256:")+64 {
		t.Errorf("KeyDir = %q, LoadDir's Key = %q", got, s.Key())
	}
	if s.Key() == s.Revision() {
		t.Error("the key equals the revision: the embedded schema is not in it")
	}
	// Another site of the same repository reads the same files, but is
	// another site.
	if keyDir(t, filepath.Join(root, "sites/t")) == s.Key() {
		t.Error("two sites of one repository have the same key")
	}
}

func TestKeyDir_FollowsContentNotTimes(t *testing.T) {
	root := keyRepo(t)
	site := filepath.Join(root, "sites/s")
	base := keyDir(t, site)

	// Touch every input without changing it, and rewrite one with the
	// same bytes: the key stays.
	later := time.Now().Add(time.Hour)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chtimes(p, later, later)
		}
		return nil
	})
	siteFile := filepath.Join(site, "site.cue")
	b, err := os.ReadFile(siteFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(siteFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := keyDir(t, site); got != base {
		t.Fatalf("touching the files changed the key: %s -> %s", base, got)
	}
	// A file that is not CUE is not an input.
	if err := os.WriteFile(filepath.Join(site, "README.md"), []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := keyDir(t, site); got != base {
		t.Errorf("a README changed the key")
	}

	edits := []struct {
		name, file, content string
	}{
		{"site file edited", "sites/s/site.cue", string(b) + "nodes: n: data: motd: text: \"bye\\n\"\n"},
		{"profile edited", "schema/profile/motd.cue", "package profile\n\n#Profiles: motd: #Profile\n"},
		{"site file added", "sites/s/extra.cue", "package s\n"},
		{"shared package added", "sites/lib/lib.cue", "package lib\n"},
	}
	seen := map[string]string{base: "base"}
	for _, e := range edits {
		p := filepath.Join(root, filepath.FromSlash(e.file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(e.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got := keyDir(t, site)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: the key is the same as after %s", e.name, prev)
		}
		seen[got] = e.name
	}
}

func TestKey_ProfilesFromBinaryWhenTreeHasNone(t *testing.T) {
	// Without schema/profile in the tree, the embedded profiles are
	// inputs: the key of such a tree differs from one carrying a copy
	// with an edit.
	site := []byte("package s\n")
	a := map[string][]byte{"sites/s/site.cue": site}
	b := map[string][]byte{"sites/s/site.cue": site, "schema/profile/base.cue": []byte("package profile\n")}
	ka, err := Key(Source{FS: sitefiles.NewMemFS(a), SiteDir: "sites/s"})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := Key(Source{FS: sitefiles.NewMemFS(b), SiteDir: "sites/s", Revision: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if ka == kb {
		t.Error("replacing the profiles kept the key")
	}
	if kc, _ := Key(Source{FS: sitefiles.NewMemFS(a), SiteDir: "sites/s", Revision: "abc"}); kc != ka {
		t.Error("the revision changed the key")
	}
	if _, err := Key(Source{FS: sitefiles.NewMemFS(a), SiteDir: "schema"}); err == nil {
		t.Error("keyed schema/ as a site")
	}
}

// TestSitefilesKey_MatchesLoad: package sitefiles, which computes keys
// without linking CUE, finds the key Load's site has, for a site of a
// repository, a lone directory and an in-memory tree.
func TestSitefilesKey_MatchesLoad(t *testing.T) {
	lone := filepath.Join(t.TempDir(), "web")
	site := []byte(`package web

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "web"
roles: r: profiles: []
nodes: n: role: "r"
`)
	if err := os.Mkdir(lone, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lone, "site.cue"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, dir := range []string{filepath.Join(keyRepo(t), "sites/s"), lone} {
		s, err := LoadDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sitefiles.KeyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.Key() || len(got) != len("sha256:")+64 {
			t.Errorf("%s: sitefiles.KeyDir = %q, LoadDir's Key = %q", dir, got, s.Key())
		}
		keys[got] = dir
	}
	src := Source{FS: sitefiles.NewMemFS(map[string][]byte{"sites/web/site.cue": site}), SiteDir: "sites/web", Node: "n"}
	s, err := Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sitefiles.Key(src)
	if err != nil {
		t.Fatal(err)
	}
	if got != s.Key() {
		t.Errorf("in memory: sitefiles.Key = %q, Load's Key = %q", got, s.Key())
	}
	// A lone directory loads as sites/<name> of a tree with nothing else:
	// the same site as the tree in memory.
	if keys[got] != lone {
		t.Errorf("the in-memory sites/web has key %s, not the lone directory's (keys: %v)", got, keys)
	}
}
