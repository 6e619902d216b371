package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
	var sum runSummary
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
