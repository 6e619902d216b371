package pkg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/kindtest"
	"github.com/fsgit/fsgit/reconciler"
)

// resource returns a package resource with spec, its ensure defaulted as
// the schema does.
func resource(t testing.TB, name string, spec map[string]any) *reconciler.Resource {
	t.Helper()
	return kindtest.Resource(t, KindName, name, spec, map[string]any{"ensure": ensureInstalled})
}

func newEnv() *reconciler.Env { return &reconciler.Env{Cache: reconciler.NewCache()} }

func TestKind_Validate(t *testing.T) {
	k := New()
	cases := []struct {
		name string
		id   string
		spec map[string]any
		ok   bool
	}{
		{"installed", "tree", map[string]any{"ensure": "installed"}, true},
		{"default ensure", "tree", map[string]any{}, true},
		{"name from spec", "x", map[string]any{"name": "libc6:amd64"}, true},
		{"pinned", "mariadb-server", map[string]any{"ensure": "1:10.11.6-0+deb12u1"}, true},
		{"absent", "tree", map[string]any{"ensure": "absent"}, true},
		{"purged", "tree", map[string]any{"ensure": "purged"}, true},
		// A bad ensure or name is the schema's to refuse (internal/desired
		// TestVet_KindConstraints).
		{"unknown field", "tree", map[string]any{"provider": "yum"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := k.Validate(resource(t, c.id, c.spec))
			if (err == nil) != c.ok {
				t.Fatalf("Validate: err = %v, want ok = %v", err, c.ok)
			}
		})
	}
}

func TestParseDpkg(t *testing.T) {
	out := "libc6\tamd64\tinstall ok installed\t2.36-9\n" +
		"libc6\ti386\tdeinstall ok config-files\t2.36-8\n" +
		"old\tall\tdeinstall ok config-files\t1.0\n" +
		"half\tamd64\tinstall reinstreq half-installed\t3\n"
	d, err := parseDpkg([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key, status, version string
		present              bool
	}{
		{"libc6", "installed", "2.36-9", true},
		{"libc6:amd64", "installed", "2.36-9", true},
		{"libc6:i386", "config-files", "", false},
		{"old", "config-files", "", false},
		{"half", "half-installed", "3", true},
		{"nothere", "", "", false},
	}
	for _, c := range cases {
		e := d[c.key]
		if e.status != c.status || e.version != c.version || e.present() != c.present {
			t.Errorf("%s: got %+v present=%v, want %s %q present=%v", c.key, e, e.present(), c.status, c.version, c.present)
		}
	}
	if _, err := parseDpkg([]byte("broken line\n")); err == nil {
		t.Error("parseDpkg accepted a line with one field")
	}
}

// TestKind_Plan_realDpkg observes this machine's real dpkg database.
func TestKind_Plan_realDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query on this machine")
	}
	ver, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "coreutils").Output()
	if err != nil {
		t.Fatalf("dpkg-query coreutils: %v", err)
	}
	k := New()
	env := newEnv()
	cases := []struct {
		name   string
		id     string
		spec   map[string]any
		action reconciler.Action
		class  reconciler.Class
	}{
		{"installed is unchanged", "coreutils", map[string]any{"ensure": "installed"}, reconciler.ActionNone, reconciler.Safe},
		{"dpkg is unchanged", "dpkg", map[string]any{}, reconciler.ActionNone, reconciler.Safe},
		{"pinned at its version is unchanged", "coreutils", map[string]any{"ensure": string(ver)}, reconciler.ActionNone, reconciler.Safe},
		{"pinned elsewhere is a disruptive update", "coreutils", map[string]any{"ensure": "0.1-1"}, reconciler.ActionUpdate, reconciler.Disruptive},
		{"unknown package is created", "fsgt-no-such-package", map[string]any{}, reconciler.ActionCreate, reconciler.Safe},
		{"unknown package absent is unchanged", "fsgt-no-such-package", map[string]any{"ensure": "absent"}, reconciler.ActionNone, reconciler.Safe},
		{"removing coreutils is disruptive", "coreutils", map[string]any{"ensure": "absent"}, reconciler.ActionDelete, reconciler.Disruptive},
		{"purging coreutils is destructive", "coreutils", map[string]any{"ensure": "purged"}, reconciler.ActionDelete, reconciler.Destructive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := k.Plan(context.Background(), env, resource(t, c.id, c.spec))
			if err != nil {
				t.Fatal(err)
			}
			if p.Action != c.action || p.MaxClass() != c.class {
				t.Fatalf("plan = %s %+v (class %s), want %q class %s", p.Action, p.Changes, p.MaxClass(), c.action, c.class)
			}
			if (p.Apply != nil) != p.HasChanges() {
				t.Fatalf("Apply set = %v, HasChanges = %v", p.Apply != nil, p.HasChanges())
			}
		})
	}
	// Every plan above shared one dpkg-query: the cache holds it.
	if _, err := env.Cache.Once(cacheKey, func() (any, error) {
		t.Fatal("dpkg database was not cached across plans")
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestKind_Plan_underRootIsSkipped(t *testing.T) {
	env := newEnv()
	env.Root = t.TempDir()
	_, err := New().Plan(context.Background(), env, resource(t, "tree", map[string]any{}))
	if !reconciler.IsSkip(err) {
		t.Fatalf("Plan under a root: err = %v, want a skip", err)
	}
}

// dpkgStamp identifies the state of the dpkg database: a run that writes
// nothing leaves the status file's inode and mtime alone.
func dpkgStamp(t testing.TB) string {
	t.Helper()
	fi, err := os.Stat("/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s inode %d", fi.ModTime(), fi.Sys().(*syscall.Stat_t).Ino)
}

// TestKind_ApplyTwice installs a small real package from Debian, applies
// again (nothing to do, dpkg's database untouched), then removes it. It
// needs root and a reachable Debian mirror; it skips, saying why, without.
func TestKind_ApplyTwice(t *testing.T) {
	const name = "sl"
	if testing.Short() {
		t.Skip("installs a package from Debian; not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a package needs root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get on this machine")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", name).Output(); err == nil && strings.HasSuffix(string(out), " installed") {
		t.Skipf("%s is already installed on this machine; the test would remove it", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k := New()
	present := resource(t, name, map[string]any{"ensure": "installed"})

	env := newEnv()
	p, err := k.Plan(ctx, env, present)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionCreate {
		t.Fatalf("first plan: action %q, want create", p.Action)
	}
	t.Cleanup(func() {
		_ = exec.Command("apt-get", "purge", "-y", "-q", name).Run()
	})
	if err := p.Apply(ctx); err != nil {
		if unreachable(err) {
			t.Skipf("Debian's mirror cannot be reached from here: %v", err)
		}
		t.Fatal(err)
	}

	stamp := dpkgStamp(t)
	env = newEnv()
	p, err = k.Plan(ctx, env, present)
	if err != nil {
		t.Fatal(err)
	}
	if p.HasChanges() || p.Apply != nil {
		t.Fatalf("second plan after install has changes: %+v", p.Changes)
	}
	if p.Observed["status"] != "installed" || p.Observed["version"] == "" {
		t.Fatalf("observed %v, want installed with a version", p.Observed)
	}
	pinned := resource(t, name, map[string]any{"ensure": p.Observed["version"]})
	if p, err := k.Plan(ctx, env, pinned); err != nil || p.HasChanges() {
		t.Fatalf("pinned at the installed version: plan %+v, err %v; want no change", p, err)
	}
	if got := dpkgStamp(t); got != stamp {
		t.Fatalf("second run touched the dpkg database: %s -> %s", stamp, got)
	}

	absent := resource(t, name, map[string]any{"ensure": "absent"})
	p, err = k.Plan(ctx, newEnv(), absent)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Disruptive {
		t.Fatalf("remove plan: %s class %s, want delete disruptive", p.Action, p.MaxClass())
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := k.Plan(ctx, newEnv(), absent); err != nil || p.HasChanges() {
		t.Fatalf("after remove: plan %+v, err %v; want no change", p, err)
	}
}

// unreachable reports whether an apt failure came from the network.
func unreachable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"Failed to fetch", "Could not resolve", "Temporary failure", "Unable to fetch", "Unable to locate package", "Connection failed", "Network is unreachable"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func TestKind_Preview(t *testing.T) {
	r := func(ensure string) *reconciler.Resource {
		return resource(t, "tree", map[string]any{"ensure": ensure})
	}
	cases := []struct {
		name     string
		old, new *reconciler.Resource
		class    reconciler.Class
	}{
		{"new", nil, r("installed"), reconciler.Safe},
		{"new pinned", nil, r("2.1.0-1"), reconciler.Safe},
		{"remove", r("installed"), r("absent"), reconciler.Disruptive},
		{"purge", r("absent"), r("purged"), reconciler.Destructive},
		{"repin", r("2.1.0-1"), r("2.1.1-1"), reconciler.Disruptive},
		{"reinstall", r("absent"), r("installed"), reconciler.Safe},
		{"left the catalog", r("installed"), nil, reconciler.Safe},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := New().Preview(c.old, c.new); got != c.class {
				t.Fatalf("Preview = %s, want %s", got, c.class)
			}
		})
	}
}
