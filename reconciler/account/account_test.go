package account

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fsgit/fsgit/internal/kindtest"
	"github.com/fsgit/fsgit/reconciler"
)

// resource returns a resource of kind with spec, a user's filled with the
// defaults schema/kinds.cue gives it (the kind has none of its own).
func resource(t testing.TB, kind, name string, spec map[string]any) *reconciler.Resource {
	t.Helper()
	var defaults map[string]any
	if kind == UserKindName {
		login := name
		if n, ok := spec["name"].(string); ok {
			login = n
		}
		defaults = map[string]any{"group": login, "home": "/home/" + login, "shell": "/bin/bash", "manageHome": true}
	}
	return kindtest.Resource(t, kind, name, spec, defaults)
}

func newEnv() *reconciler.Env { return &reconciler.Env{Cache: reconciler.NewCache()} }

// uniqueName returns a name no account on this machine has, prefixed fsgt.
func uniqueName(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "fsgt" + hex.EncodeToString(b[:])
}

// needRoot skips a test that runs the shadow utilities on this machine.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("managing accounts needs root")
	}
	for _, c := range []string{"useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed", c)
		}
	}
}

// stamp identifies a file's state: inode and mtime change on any write,
// atomic or in place.
func stamp(t testing.TB, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d@%s", fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime())
}

var accountFiles = []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"}

func stamps(t testing.TB, extra ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range append(slices.Clone(accountFiles), extra...) {
		if _, err := os.Stat(f); err == nil {
			m[f] = stamp(t, f)
		}
	}
	return m
}

func plan(t testing.TB, k reconciler.Kind, r *reconciler.Resource) *reconciler.Plan {
	t.Helper()
	p, err := k.Plan(context.Background(), newEnv(), r)
	if err != nil {
		t.Fatalf("plan %s: %v", r.ID, err)
	}
	return p
}

func apply(t testing.TB, p *reconciler.Plan) {
	t.Helper()
	if p.Apply == nil {
		t.Fatal("plan has no Apply")
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func fields(p *reconciler.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Field)
	}
	return out
}

func TestFiles_read(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	gr := filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/bash\n\n+nis\nalice:x:1000:1000:Alice A,,,:/home/alice:/bin/zsh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte("root:x:0:\nalice:x:1000:\nsudo:x:27:alice,bob\ndocker:x:999:bob\nadm:x:4:alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := files{passwd: pw, group: gr}.read()
	if err != nil {
		t.Fatal(err)
	}
	a := d.users["alice"]
	if a.uid != 1000 || a.gid != 1000 || a.home != "/home/alice" || a.shell != "/bin/zsh" || a.comment != "Alice A,,," {
		t.Fatalf("alice = %+v", a)
	}
	if got := d.memberOf("alice"); !slices.Equal(got, []string{"adm", "sudo"}) {
		t.Fatalf("alice's groups = %v, want [adm sudo]", got)
	}
	if d.groupName(27) != "sudo" || d.groupName(4242) != "4242" {
		t.Fatalf("groupName: %q %q", d.groupName(27), d.groupName(4242))
	}
	if err := os.WriteFile(pw, []byte("broken:x:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (files{passwd: pw, group: gr}).read(); err == nil || !strings.Contains(err.Error(), "passwd:1") {
		t.Fatalf("read of a broken passwd: %v, want an error naming the line", err)
	}
}

func TestUser_Validate(t *testing.T) {
	cases := []struct {
		name string
		id   string
		spec map[string]any
		ok   bool
	}{
		{"defaults", "deploy", map[string]any{}, true},
		{"full", "deploy", map[string]any{"uid": 1500, "group": "deploy", "groups": []string{"adm"}, "home": "/srv/deploy", "shell": "/bin/sh", "system": true, "manageHome": false, "comment": "Deploy", "authorizedKeys": []string{"ssh-ed25519 AAAA a@b"}}, true},
		// A bad name, group, path or uid is the schema's to refuse
		// (internal/desired TestVet_KindConstraints).
		{"colon in home", "deploy", map[string]any{"home": "/home/a:b"}, false},
		{"colon in comment", "deploy", map[string]any{"comment": "a:b"}, false},
		{"two keys in one line", "deploy", map[string]any{"authorizedKeys": []string{"ssh-ed25519 A\nssh-ed25519 B"}}, false},
		{"bad ensure", "deploy", map[string]any{"ensure": "locked"}, false},
		{"unknown field", "deploy", map[string]any{"password": "x"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := NewUser().Validate(resource(t, UserKindName, c.id, c.spec))
			if (err == nil) != c.ok {
				t.Fatalf("Validate: err = %v, want ok = %v", err, c.ok)
			}
		})
	}
}

func TestGroup_Validate(t *testing.T) {
	cases := []struct {
		name string
		spec map[string]any
		ok   bool
	}{
		{"defaults", map[string]any{}, true},
		{"gid and system", map[string]any{"gid": 4000, "system": true}, true},
		{"absent", map[string]any{"ensure": "absent"}, true},
		// A gid out of range is the schema's to refuse
		// (internal/desired TestVet_KindConstraints).
		{"members are not ours", map[string]any{"members": []string{"a"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := NewGroup().Validate(resource(t, GroupKindName, "fsgtgroup", c.spec))
			if (err == nil) != c.ok {
				t.Fatalf("Validate: err = %v, want ok = %v", err, c.ok)
			}
		})
	}
}

func TestKinds_underRootAreSkipped(t *testing.T) {
	env := newEnv()
	env.Root = t.TempDir()
	ctx := context.Background()
	u := resource(t, UserKindName, "deploy", map[string]any{})
	g := resource(t, GroupKindName, "deploy", map[string]any{})
	for name, err := range map[string]error{
		"user plan":         func() error { _, err := NewUser().Plan(ctx, env, u); return err }(),
		"user plan delete":  func() error { _, err := NewUser().PlanDelete(ctx, env, u); return err }(),
		"group plan":        func() error { _, err := NewGroup().Plan(ctx, env, g); return err }(),
		"group plan delete": func() error { _, err := NewGroup().PlanDelete(ctx, env, g); return err }(),
	} {
		if !reconciler.IsSkip(err) {
			t.Errorf("%s under a root: err = %v, want a skip", name, err)
		}
	}
}

// TestAccounts_ApplyTwice creates a group and a user (with a supplementary
// group and SSH keys) with the real shadow utilities, then applies again:
// no change, and none of the account files nor the keys file is written.
func TestAccounts_ApplyTwice(t *testing.T) {
	needRoot(t)
	user, primary, extra := uniqueName(t), uniqueName(t), uniqueName(t)
	t.Cleanup(func() {
		_ = exec.Command("userdel", "-r", user).Run()
		_ = exec.Command("groupdel", primary).Run()
		_ = exec.Command("groupdel", extra).Run()
	})
	users, groups := NewUser(), NewGroup()
	home := "/home/" + user
	keys := []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsgtFsgtFsgtFsgtFsgtFsgtFsgtFsgtFsgtFsgt one@test", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtwoGtwoGtwoGtwoGtwoGtwoGtwoGtwoGtwoGtwo two@test"}
	gp := resource(t, GroupKindName, primary, map[string]any{})
	ge := resource(t, GroupKindName, extra, map[string]any{"system": true})
	ur := resource(t, UserKindName, user, map[string]any{
		"group": primary, "groups": []string{extra}, "home": home, "shell": "/bin/sh",
		"comment": "fsgit test", "authorizedKeys": keys,
	})

	for _, r := range []*reconciler.Resource{gp, ge} {
		p := plan(t, groups, r)
		if p.Action != reconciler.ActionCreate {
			t.Fatalf("%s: first plan %q, want create", r.ID, p.Action)
		}
		apply(t, p)
	}
	p := plan(t, users, ur)
	if p.Action != reconciler.ActionCreate || !slices.Equal(fields(p), []string{"ensure", "authorizedKeys"}) {
		t.Fatalf("user: first plan %q %v, want create of ensure and authorizedKeys", p.Action, fields(p))
	}
	apply(t, p)

	// What the real system says.
	out, err := exec.Command("id", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "("+primary+")") || !strings.Contains(string(out), "("+extra+")") {
		t.Fatalf("id %s = %s, want primary %s and group %s", user, out, primary, extra)
	}
	kf := filepath.Join(home, ".ssh", "authorized_keys")
	b, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != strings.Join(keys, "\n")+"\n" {
		t.Fatalf("authorized_keys = %q", b)
	}
	fi, _ := os.Stat(kf)
	d, _ := hostFiles.read()
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || int(st.Uid) != d.users[user].uid || int(st.Gid) != d.groups[primary].gid {
		t.Fatalf("authorized_keys mode %v owner %d:%d", fi.Mode(), st.Uid, st.Gid)
	}
	if len(entries(t, filepath.Join(home, ".ssh"))) != 1 {
		t.Fatalf("~/.ssh holds %v, want only authorized_keys (no temporary file left)", entries(t, filepath.Join(home, ".ssh")))
	}

	// The second run: nothing planned, nothing written.
	before := stamps(t, kf)
	for _, r := range []*reconciler.Resource{gp, ge} {
		if p := plan(t, groups, r); p.HasChanges() || p.Apply != nil {
			t.Fatalf("%s: second plan has changes %+v", r.ID, p.Changes)
		}
	}
	p = plan(t, users, ur)
	if p.HasChanges() || p.Apply != nil {
		t.Fatalf("user: second plan has changes %+v", p.Changes)
	}
	if p.Observed["groups"] != extra || p.Observed["group"] != primary || !strings.HasPrefix(p.Observed["authorizedKeys"], "2 keys") {
		t.Fatalf("observed %v", p.Observed)
	}
	if after := stamps(t, kf); !mapsEqual(before, after) {
		t.Fatalf("second run wrote: %v -> %v", before, after)
	}
}

// TestUser_Plan_drift changes a user behind fsgit's back and checks that
// the plan names each field, applies in one call, and is quiet after.
func TestUser_Plan_drift(t *testing.T) {
	needRoot(t)
	user, other := uniqueName(t), uniqueName(t)
	t.Cleanup(func() {
		_ = exec.Command("userdel", "-r", user).Run()
		_ = exec.Command("groupdel", other).Run()
		_ = exec.Command("groupdel", user).Run()
	})
	users := NewUser()
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDriftDriftDriftDriftDriftDriftDriftDrift drift@test"
	ur := resource(t, UserKindName, user, map[string]any{"groups": []string{}, "authorizedKeys": []string{key}})
	apply(t, plan(t, users, ur))
	if p := plan(t, users, ur); p.HasChanges() {
		t.Fatalf("after create: %+v", p.Changes)
	}

	// Drift: another shell, an extra group, a key file that is world
	// readable and holds another key.
	if out, err := exec.Command("groupadd", other).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v: %s", err, out)
	}
	if out, err := exec.Command("usermod", "-s", "/bin/sh", "-G", other, user).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
	kf := filepath.Join("/home", user, ".ssh", "authorized_keys")
	if err := os.WriteFile(kf, []byte("ssh-rsa AAAA intruder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}

	p := plan(t, users, ur)
	if p.Action != reconciler.ActionUpdate || !slices.Equal(fields(p), []string{"groups", "shell", "authorizedKeys"}) {
		t.Fatalf("drift plan %q %v, want update of groups, shell, authorizedKeys", p.Action, fields(p))
	}
	for _, c := range p.Changes {
		if c.Field == "authorizedKeys" && (!strings.Contains(c.Before, "mode 0644") || !strings.Contains(c.Before, "1 keys")) {
			t.Errorf("authorizedKeys before = %q, want the mode and the content named", c.Before)
		}
	}
	apply(t, p)
	if p := plan(t, users, ur); p.HasChanges() {
		t.Fatalf("after correcting drift: %+v", p.Changes)
	}
	if b, _ := os.ReadFile(kf); string(b) != key+"\n" {
		t.Fatalf("authorized_keys = %q", b)
	}

	// Emptying the key list empties the file.
	ur = resource(t, UserKindName, user, map[string]any{"groups": []string{}, "authorizedKeys": []string{}})
	apply(t, plan(t, users, ur))
	if b, err := os.ReadFile(kf); err != nil || len(b) != 0 {
		t.Fatalf("authorized_keys after emptying the list = %q, %v", b, err)
	}
	if p := plan(t, users, ur); p.HasChanges() {
		t.Fatalf("after emptying the keys: %+v", p.Changes)
	}
}

// TestAccounts_remove checks that removing accounts is destructive and
// converges, through ensure absent and through pruning.
func TestAccounts_remove(t *testing.T) {
	needRoot(t)
	user, group := uniqueName(t), uniqueName(t)
	t.Cleanup(func() {
		_ = exec.Command("userdel", "-r", user).Run()
		_ = exec.Command("groupdel", user).Run()
		_ = exec.Command("groupdel", group).Run()
	})
	users, groups := NewUser(), NewGroup()
	ur := resource(t, UserKindName, user, map[string]any{"manageHome": false})
	gr := resource(t, GroupKindName, group, map[string]any{"gid": 64123})
	apply(t, plan(t, users, ur))
	apply(t, plan(t, groups, gr))

	// A gid change is disruptive.
	moved := resource(t, GroupKindName, group, map[string]any{"gid": 64124})
	p := plan(t, groups, moved)
	if p.Action != reconciler.ActionUpdate || p.MaxClass() != reconciler.Disruptive {
		t.Fatalf("gid change: %q class %s, want a disruptive update", p.Action, p.MaxClass())
	}
	apply(t, p)
	if p := plan(t, groups, moved); p.HasChanges() {
		t.Fatalf("after gid change: %+v", p.Changes)
	}

	absent := resource(t, UserKindName, user, map[string]any{"ensure": "absent"})
	p = plan(t, users, absent)
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("user absent: %q class %s, want a destructive delete", p.Action, p.MaxClass())
	}
	apply(t, p)
	if p := plan(t, users, absent); p.HasChanges() {
		t.Fatalf("after userdel: %+v", p.Changes)
	}

	p, err := groups.PlanDelete(context.Background(), newEnv(), moved)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("group prune: %q class %s, want a destructive delete", p.Action, p.MaxClass())
	}
	apply(t, p)
	if p, err := groups.PlanDelete(context.Background(), newEnv(), moved); err != nil || p.HasChanges() {
		t.Fatalf("after groupdel: %+v, %v", p, err)
	}
	d, _ := hostFiles.read()
	if _, ok := d.users[user]; ok {
		t.Fatalf("user %s still in /etc/passwd", user)
	}
	if _, ok := d.groups[group]; ok {
		t.Fatalf("group %s still in /etc/group", group)
	}
}

func TestUser_Plan_missingPrimaryGroup(t *testing.T) {
	needRoot(t)
	user := uniqueName(t)
	t.Cleanup(func() { _ = exec.Command("userdel", "-r", user).Run() })
	p := plan(t, NewUser(), resource(t, UserKindName, user, map[string]any{"group": uniqueName(t)}))
	err := p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "require its group resource") {
		t.Fatalf("Apply = %v, want an error saying the primary group is missing", err)
	}
}

func entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestKinds_Preview(t *testing.T) {
	u := func(spec map[string]any) *reconciler.Resource { return resource(t, UserKindName, "deploy", spec) }
	g := func(spec map[string]any) *reconciler.Resource { return resource(t, GroupKindName, "deploy", spec) }
	cases := []struct {
		name     string
		kind     reconciler.Previewer
		old, new *reconciler.Resource
		class    reconciler.Class
	}{
		{"new user", NewUser(), nil, u(map[string]any{}), reconciler.Safe},
		{"shell change", NewUser(), u(map[string]any{"shell": "/bin/sh"}), u(map[string]any{}), reconciler.Safe},
		{"uid change", NewUser(), u(map[string]any{"uid": 1000}), u(map[string]any{"uid": 1001}), reconciler.Disruptive},
		{"user absent", NewUser(), u(map[string]any{}), u(map[string]any{"ensure": "absent"}), reconciler.Destructive},
		{"still absent", NewUser(), u(map[string]any{"ensure": "absent", "shell": "/bin/sh"}), u(map[string]any{"ensure": "absent"}), reconciler.Safe},
		{"user pruned", NewUser(), u(map[string]any{}), nil, reconciler.Destructive},
		{"gid change", NewGroup(), g(map[string]any{"gid": 10}), g(map[string]any{"gid": 11}), reconciler.Disruptive},
		{"group absent", NewGroup(), g(map[string]any{}), g(map[string]any{"ensure": "absent"}), reconciler.Destructive},
		{"group pruned", NewGroup(), g(map[string]any{}), nil, reconciler.Destructive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := c.kind.Preview(c.old, c.new); got != c.class {
				t.Fatalf("Preview = %s, want %s", got, c.class)
			}
		})
	}
}
