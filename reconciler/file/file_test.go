package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/reconciler"
)

// fileSpecOf is a file spec as the schema hands it over: defaults filled.
func fileSpecOf(path string, content *string, mode string) map[string]any {
	m := map[string]any{"path": path, "ensure": "present", "owner": "root", "group": "root", "mode": mode}
	if content != nil {
		m["content"] = *content
	}
	return m
}

func ptr(s string) *string { return &s }

func TestFile_Validate(t *testing.T) {
	cases := []struct {
		name    string
		id      string
		spec    map[string]any
		wantErr string
	}{
		{"ok", "/etc/a", fileSpecOf("/etc/a", ptr("x"), "0644"), ""},
		{"path from ID", "/etc/a", map[string]any{"content": "x"}, ""},
		{"relative", "etc/a", fileSpecOf("etc/a", ptr("x"), "0644"), "not absolute"},
		{"escaping", "/etc/../../a", fileSpecOf("/etc/../../a", nil, "0644"), "not clean"},
		{"path differs from ID", "/etc/a", fileSpecOf("/etc/b", nil, "0644"), "differs from the ID"},
		// A bad mode or secret key is the schema's to refuse
		// (internal/desired TestVet_KindConstraints).
		{"bad ensure", "/etc/a", map[string]any{"path": "/etc/a", "ensure": "latest"}, "neither present nor absent"},
		{"unknown field", "/etc/a", map[string]any{"path": "/etc/a", "source": "puppet:///x"}, "unknown field"},
		{"undeclared placeholder", "/etc/a", map[string]any{"path": "/etc/a", "content": "pw={{secret:PW}}"}, "which secrets does not declare"},
		{"secrets without content", "/etc/a", map[string]any{"path": "/etc/a", "secrets": map[string]any{"PW": map[string]any{"secret": "db/pw"}}}, "without content"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewFile().Validate(resource(t, "file", tc.id, tc.spec))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestFile_Plan(t *testing.T) {
	cases := []struct {
		name string
		// setup prepares dir/target (the path is /srv/app/target under
		// the root).
		setup   func(t *testing.T, target string)
		spec    map[string]any
		want    []string
		action  reconciler.Action
		content string // expected content after apply, "" to skip
		// sameInode: the apply must not replace the file (chmod/chown only).
		sameInode bool
	}{
		{
			name:    "create with missing parents",
			setup:   func(t *testing.T, target string) {},
			spec:    fileSpecOf("/srv/app/target", ptr("hello\n"), "0640"),
			want:    []string{"ensure:safe", "parents:safe", "content:safe"},
			action:  reconciler.ActionCreate,
			content: "hello\n",
		},
		{
			name:    "content differs",
			setup:   existing("old\n", 0o640),
			spec:    fileSpecOf("/srv/app/target", ptr("new\n"), "0640"),
			want:    []string{"content:safe"},
			action:  reconciler.ActionUpdate,
			content: "new\n",
		},
		{
			name:    "same size, other content",
			setup:   existing("abc\n", 0o640),
			spec:    fileSpecOf("/srv/app/target", ptr("xyz\n"), "0640"),
			want:    []string{"content:safe"},
			action:  reconciler.ActionUpdate,
			content: "xyz\n",
		},
		{
			name:      "mode only",
			setup:     existing("same\n", 0o600),
			spec:      fileSpecOf("/srv/app/target", ptr("same\n"), "0644"),
			want:      []string{"mode:safe"},
			action:    reconciler.ActionUpdate,
			content:   "same\n",
			sameInode: true,
		},
		{
			name: "owner and group only",
			setup: func(t *testing.T, target string) {
				existing("same\n", 0o644)(t, target)
				if err := os.Chown(target, 1, 1); err != nil {
					t.Fatal(err)
				}
			},
			spec:      fileSpecOf("/srv/app/target", ptr("same\n"), "0644"),
			want:      []string{"owner:safe", "group:safe"},
			action:    reconciler.ActionUpdate,
			content:   "same\n",
			sameInode: true,
		},
		{
			name:    "content not managed, file exists",
			setup:   existing("whatever\n", 0o644),
			spec:    fileSpecOf("/srv/app/target", nil, "0644"),
			want:    nil,
			action:  reconciler.ActionNone,
			content: "whatever\n",
		},
		{
			name:    "content not managed, file missing",
			setup:   func(t *testing.T, target string) { mkdirs(t, filepath.Dir(target)) },
			spec:    fileSpecOf("/srv/app/target", nil, "0644"),
			want:    []string{"ensure:safe"},
			action:  reconciler.ActionCreate,
			content: "",
		},
		{
			name: "symlink in the way",
			setup: func(t *testing.T, target string) {
				mkdirs(t, filepath.Dir(target))
				if err := os.Symlink("/etc/passwd", target); err != nil {
					t.Fatal(err)
				}
			},
			spec:    fileSpecOf("/srv/app/target", ptr("mine\n"), "0644"),
			want:    []string{"ensure:safe", "content:safe"},
			action:  reconciler.ActionUpdate,
			content: "mine\n",
		},
		{
			name: "non-empty directory in the way",
			setup: func(t *testing.T, target string) {
				mkdirs(t, target)
				writeFile(t, filepath.Join(target, "data"), "precious", 0o644)
			},
			spec:   fileSpecOf("/srv/app/target", ptr("mine\n"), "0644"),
			want:   []string{"ensure:destructive", "content:safe"},
			action: reconciler.ActionUpdate,
			// Held: not applied without allowDestroy.
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			target := filepath.Join(root, "srv/app/target")
			tc.setup(t, target)
			r := resource(t, "file", "/srv/app/target", tc.spec)
			var before fileState
			if tc.sameInode {
				before = stateOf(t, target)
			}
			p := converge(t, root, NewFile(), r, nil)
			if got := fields(p); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
			if p.Action != tc.action {
				t.Fatalf("action %q, want %q", p.Action, tc.action)
			}
			if p.MaxClass() == reconciler.Destructive {
				if _, err := os.Stat(filepath.Join(target, "data")); err != nil {
					t.Fatalf("destructive change ran without allowDestroy: %v", err)
				}
				return
			}
			if got := readFile(t, target); got != tc.content {
				t.Fatalf("content %q, want %q", got, tc.content)
			}
			after := stateOf(t, target)
			if tc.sameInode && (after.Ino != before.Ino || after.Mtime != before.Mtime) {
				t.Fatalf("file was rewritten (inode %d -> %d, mtime %d -> %d); want chmod/chown only", before.Ino, after.Ino, before.Mtime, after.Mtime)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(target, &st); err != nil {
				t.Fatal(err)
			}
			wantMode, _ := ParseMode(tc.spec["mode"].(string))
			if st.Mode&0o7777 != wantMode || st.Uid != 0 || st.Gid != 0 {
				t.Fatalf("mode %04o uid %d gid %d, want %04o root root", st.Mode&0o7777, st.Uid, st.Gid, wantMode)
			}
			if p2 := mustPlan(t, root, NewFile(), r, nil); p2.HasChanges() {
				t.Fatalf("second plan has changes: %v", fields(p2))
			}
		})
	}
}

func existing(content string, mode os.FileMode) func(t *testing.T, target string) {
	return func(t *testing.T, target string) {
		mkdirs(t, filepath.Dir(target))
		writeFile(t, target, content, mode)
	}
}

func mkdirs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestKinds_ApplyTwice applies each kind twice: the second run must plan no
// change and write nothing (same inode, mtime and ctime on the target and
// on its directory, which a temporary file would touch).
func TestKinds_ApplyTwice(t *testing.T) {
	secrets := mapSecrets{"db/pw": "s3cr3t"}
	cases := []struct {
		kind reconciler.Kind
		name string
		spec map[string]any
	}{
		{NewFile(), "/etc/app/plain.conf", fileSpecOf("/etc/app/plain.conf", ptr("a = 1\n"), "0640")},
		{NewFile(), "/etc/app/secret.conf", map[string]any{
			"path": "/etc/app/secret.conf", "ensure": "present", "owner": "root", "group": "root", "mode": "0600",
			"content": "password = {{secret:PW}}\n", "secrets": map[string]any{"PW": map[string]any{"secret": "db/pw"}},
		}},
		{NewFile(), "/etc/app/empty", fileSpecOf("/etc/app/empty", nil, "0644")},
		{NewFile(), "/etc/app/gone", map[string]any{"path": "/etc/app/gone", "ensure": "absent", "owner": "root", "group": "root", "mode": "0644"}},
		{NewDirectory(), "/var/lib/app/data", map[string]any{"path": "/var/lib/app/data", "ensure": "present", "owner": "root", "group": "root", "mode": "1777"}},
		{NewSymlink(), "/etc/app/current", map[string]any{"path": "/etc/app/current", "target": "releases/v2", "ensure": "present"}},
	}
	for _, tc := range cases {
		t.Run(tc.kind.Kind()+":"+tc.name, func(t *testing.T) {
			root := t.TempDir()
			r := resource(t, tc.kind.Kind(), tc.name, tc.spec)
			first := converge(t, root, tc.kind, r, secrets)
			absent := tc.spec["ensure"] == "absent"
			if !absent && !first.HasChanges() {
				t.Fatal("first run changed nothing")
			}
			target, _ := (&reconciler.Env{Root: root}).Path(tc.name)
			dir := filepath.Dir(target)
			var before, dirBefore fileState
			if !absent {
				before = stateOf(t, target)
			}
			if _, err := os.Stat(dir); err == nil {
				dirBefore = stateOf(t, dir)
			}
			second := converge(t, root, tc.kind, r, secrets)
			if second.HasChanges() {
				t.Fatalf("second run plans changes: %v", fields(second))
			}
			if !absent {
				if after := stateOf(t, target); after != before {
					t.Fatalf("second run wrote the target: %+v -> %+v", before, after)
				}
			}
			if _, err := os.Stat(dir); err == nil {
				if after := stateOf(t, dir); after != dirBefore {
					t.Fatalf("second run wrote the directory: %+v -> %+v", dirBefore, after)
				}
			}
		})
	}
}

func TestFile_Secrets(t *testing.T) {
	const value = "hunter2-very-secret"
	root := t.TempDir()
	spec := map[string]any{
		"path": "/etc/app/db.conf", "ensure": "present", "owner": "root", "group": "root", "mode": "0600",
		"content": "user = fs\npassword = {{secret:PW}}\nagain = {{secret:PW}}\n",
		"secrets": map[string]any{"PW": map[string]any{"secret": "mariadb/fs_user"}},
	}
	r := resource(t, "file", "/etc/app/db.conf", spec)
	secrets := mapSecrets{"mariadb/fs_user": value}
	noLeak := func(t *testing.T, p *reconciler.Plan, content string) {
		t.Helper()
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		for _, leak := range []string{value, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])[:12]} {
			if strings.Contains(string(out), leak) {
				t.Fatalf("plan shows %q: %s", leak, out)
			}
		}
	}
	want := "user = fs\npassword = " + value + "\nagain = " + value + "\n"

	p := converge(t, root, NewFile(), r, secrets)
	noLeak(t, p, want)
	if got := readFile(t, filepath.Join(root, "etc/app/db.conf")); got != want {
		t.Fatalf("content %q, want %q", got, want)
	}
	p = mustPlan(t, root, NewFile(), r, secrets)
	if p.HasChanges() {
		t.Fatalf("second plan has changes: %v", fields(p))
	}
	// What the state keeps of a converged secret-bearing file is the
	// template's digest: nothing computed from the secret.
	tmpl := sha256.Sum256([]byte(spec["content"].(string)))
	if d := p.Observed["sha256"]; d != "template:"+hex.EncodeToString(tmpl[:]) {
		t.Fatalf("observed digest %q, want the template's digest", d)
	}
	noLeak(t, p, want)

	// The secret rotates: the change is found by hash and shown without
	// the value.
	rotated := mapSecrets{"mariadb/fs_user": "n3w-value"}
	p = mustPlan(t, root, NewFile(), r, rotated)
	if len(p.Changes) != 1 || p.Changes[0].Field != "content" || p.Changes[0].After != "(contains secret mariadb/fs_user): changed" {
		t.Fatalf("changes %+v, want one content change naming the secret", p.Changes)
	}
	if d := p.Observed["sha256"]; d != "secret-content:differs" {
		t.Fatalf("observed digest of a drifted secret-bearing file %q, want the fixed marker", d)
	}
	noLeak(t, p, want)

	// A secret that cannot be resolved fails the plan with its name.
	_, err := NewFile().Plan(context.Background(), testEnv(t, root, mapSecrets{}), r)
	if !errors.Is(err, reconciler.ErrSecretNotFound) || !strings.Contains(err.Error(), "mariadb/fs_user") {
		t.Fatalf("plan error %v, want secret not found naming mariadb/fs_user", err)
	}
}

// TestKinds_PlanDelete checks how removal is classed: safe when nothing
// can be lost, destructive otherwise, and held without allowDestroy.
func TestKinds_PlanDelete(t *testing.T) {
	managed := "managed\n"
	cases := []struct {
		name  string
		kind  reconciler.Pruner
		spec  map[string]any
		setup func(t *testing.T, target string)
		want  []string
	}{
		{"file intact", NewFile(), fileSpecOf("/x", &managed, "0644"), existing(managed, 0o644), []string{"ensure:safe"}},
		{"file edited on disk", NewFile(), fileSpecOf("/x", &managed, "0644"), existing("local edit\n", 0o644), []string{"ensure:destructive"}},
		{"file content unmanaged", NewFile(), fileSpecOf("/x", nil, "0644"), existing("data\n", 0o644), []string{"ensure:destructive"}},
		{"file already gone", NewFile(), fileSpecOf("/x", &managed, "0644"), func(*testing.T, string) {}, nil},
		{"empty directory", NewDirectory(), map[string]any{"path": "/x", "mode": "0755"}, func(t *testing.T, p string) { mkdirs(t, p) }, []string{"ensure:safe"}},
		{"non-empty directory", NewDirectory(), map[string]any{"path": "/x", "mode": "0755"}, func(t *testing.T, p string) {
			mkdirs(t, p)
			writeFile(t, filepath.Join(p, "f"), "data", 0o644)
		}, []string{"ensure:destructive"}},
		{"symlink", NewSymlink(), map[string]any{"path": "/x", "target": "/y"}, func(t *testing.T, p string) {
			if err := os.Symlink("/y", p); err != nil {
				t.Fatal(err)
			}
		}, []string{"ensure:safe"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			target := filepath.Join(root, "x")
			tc.setup(t, target)
			k := tc.kind.(reconciler.Kind)
			r := resource(t, k.Kind(), "/x", tc.spec)
			p, err := tc.kind.PlanDelete(context.Background(), testEnv(t, root, nil), r)
			if err != nil {
				t.Fatal(err)
			}
			if got := fields(p); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
			if !p.HasChanges() {
				return
			}
			if err := p.Apply(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("still there after delete: %v", err)
			}
		})
	}
}

// TestKinds_EnsureAbsent checks that ensure absent in the catalog holds a
// destructive removal unless the resource allows destroy.
func TestKinds_EnsureAbsent(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	mkdirs(t, dir)
	writeFile(t, filepath.Join(dir, "f"), "data", 0o644)
	r := resource(t, "directory", "/data", map[string]any{"path": "/data", "ensure": "absent", "owner": "root", "group": "root", "mode": "0755"})
	p := converge(t, root, NewDirectory(), r, nil)
	if p.MaxClass() != reconciler.Destructive {
		t.Fatalf("class %s, want destructive", p.MaxClass())
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Fatalf("removed without allowDestroy: %v", err)
	}
	r.AllowDestroy = true
	converge(t, root, NewDirectory(), r, nil)
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still there with allowDestroy: %v", err)
	}
}

// TestFile_RootAccounts resolves owner and group from the root's
// etc/passwd and etc/group, not the host's.
func TestFile_RootAccounts(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "etc"))
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nfs_svc:x:4242:4343::/nonexistent:/usr/sbin/nologin\n", 0o644)
	writeFile(t, filepath.Join(root, "etc/group"), "root:x:0:\nfs_grp:x:4343:\n", 0o644)
	spec := fileSpecOf("/etc/app.conf", ptr("x\n"), "0640")
	spec["owner"], spec["group"] = "fs_svc", "fs_grp"
	r := resource(t, "file", "/etc/app.conf", spec)
	converge(t, root, NewFile(), r, nil)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "etc/app.conf"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 4242 || st.Gid != 4343 {
		t.Fatalf("uid %d gid %d, want 4242 4343", st.Uid, st.Gid)
	}
	p := mustPlan(t, root, NewFile(), r, nil)
	if p.HasChanges() || p.Observed["owner"] != "fs_svc" || p.Observed["group"] != "fs_grp" {
		t.Fatalf("second plan %v observed %v", fields(p), p.Observed)
	}

	// A name the root does not know is left unmanaged there, with a
	// warning (accounts are not managed under a root), not a failure and
	// not a change that would come back on every run.
	spec["owner"] = "nobody-here"
	p, err := NewFile().Plan(context.Background(), testEnv(t, root, nil), resource(t, "file", "/etc/app.conf", spec))
	if err != nil || p.HasChanges() || !strings.Contains(p.Warning, "owner nobody-here") {
		t.Fatalf("plan error %v, changes %v, warning %q; want no change and a warning", err, fields(p), p.Warning)
	}
}

func TestSymlink_Retarget(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, filepath.Join(root, "opt"))
	if err := os.Symlink("releases/v1", filepath.Join(root, "opt/current")); err != nil {
		t.Fatal(err)
	}
	r := resource(t, "symlink", "/opt/current", map[string]any{"path": "/opt/current", "target": "releases/v2", "ensure": "present"})
	p := converge(t, root, NewSymlink(), r, nil)
	if len(p.Changes) != 1 || p.Changes[0].Before != "releases/v1" || p.Changes[0].After != "releases/v2" {
		t.Fatalf("changes %+v", p.Changes)
	}
	if got, _ := os.Readlink(filepath.Join(root, "opt/current")); got != "releases/v2" {
		t.Fatalf("link -> %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "opt", atomicfile.TempName("current"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary link left behind: %v", err)
	}
}

// TestFile_UnknownOwnerUnderRoot: under --root, where accounts are not
// managed, an owner that exists neither in the root's etc/passwd nor on the
// host leaves ownership as found, with a warning, and the second run is
// quiet: the file is converged for everything fsgit can manage there.
func TestFile_UnknownOwnerUnderRoot(t *testing.T) {
	root := t.TempDir()
	env := &reconciler.Env{Root: root, Cache: reconciler.NewCache()}
	k := NewFile()
	r := &reconciler.Resource{ID: "file:/etc/spark/spark-defaults.conf",
		Spec: []byte(`{"path":"/etc/spark/spark-defaults.conf","ensure":"present","content":"a b\n","owner":"fsgt-nobody-here","group":"fsgt-nobody-here","mode":"0640"}`)}
	p, err := k.Plan(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Warning, "owner fsgt-nobody-here") || !strings.Contains(p.Warning, "group fsgt-nobody-here") {
		t.Fatalf("warning %q", p.Warning)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "etc/spark/spark-defaults.conf"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("file not written with its mode: %v %v", fi, err)
	}
	p2, err := k.Plan(context.Background(), &reconciler.Env{Root: root, Cache: reconciler.NewCache()}, r)
	if err != nil {
		t.Fatal(err)
	}
	if p2.HasChanges() {
		t.Fatalf("second plan has changes: %+v", p2.Changes)
	}
	// Without a root the same owner is an error, as it should be on a host.
	if _, err := k.Plan(context.Background(), &reconciler.Env{Cache: reconciler.NewCache()}, &reconciler.Resource{ID: r.ID,
		Spec: []byte(`{"path":"` + filepath.Join(root, "x") + `","ensure":"present","content":"","owner":"fsgt-nobody-here","group":"root","mode":"0640"}`)}); err == nil {
		t.Fatal("unknown owner accepted on the host")
	}
}
