//go:build !lean

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/gittest"
)

// planRepo builds a real git repository from sites/example and the
// embedded profiles (so that a commit may change a profile), committed as
// the base, and returns its working tree.
func planRepo(t *testing.T) *gittest.Work {
	t.Helper()
	w := gittest.NewWork(t, "file:///nonexistent")
	dir := w.Dir
	for _, tree := range []string{"../../sites/example", "../../schema/profile", "../../cue.mod"} {
		rel := strings.TrimPrefix(tree, "../../")
		err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, rel, strings.TrimPrefix(p, tree))
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Git("add", "-A")
	w.Git("commit", "-q", "-m", "example site")
	return w
}

// edit replaces old by new in a file of the repository, failing when old is
// not there (so a changed example cannot make a scenario silently empty).
func edit(t *testing.T, dir, file, old, new string) {
	t.Helper()
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPlan_Golden plans one commit per scenario against the example site
// and compares the markdown with testdata/golden/plan-<scenario>.md
// (go test -run TestPlan_Golden -update to rewrite them).
func TestPlan_Golden(t *testing.T) {
	type change struct{ file, old, new string }
	cases := []struct {
		name     string
		changes  []change
		reverse  bool // plan head -> base: the change taken back
		nodes    []string
		wantCode int
		want     []string // phrases the plan must hold, beyond the golden file
	}{
		{
			name:     "weaviate-bump",
			changes:  []change{{"sites/example/roles.cue", `version: "1.23.7"`, `version: "1.24.1"`}},
			wantCode: 2,
			want:     []string{"vector-1", "docker.container:weaviate", "semitechnologies/weaviate:1.24.1"},
		},
		{
			name:     "buffer-pool",
			changes:  []change{{"sites/example/roles.cue", `innodbBufferPoolSize: "2G"`, `innodbBufferPoolSize: "4G"`}},
			wantCode: 2,
			want:     []string{"online-1", "innodb_buffer_pool_size", "service:mariadb", "restart (notified by file:/etc/mysql/"},
		},
		{
			name: "add-grant",
			changes: []change{{"sites/example/roles.cue", `privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"]
				}]`, `privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"]
				}, {
					database: "iceberg_catalog_db"
					privileges: ["SELECT"]
				}]`}},
			wantCode: 2,
			want:     []string{"mariadb.grant:", "iceberg_catalog_db", "\n+    privileges:\n+      - SELECT\n"},
		},
		{
			name:     "remove-database",
			changes:  []change{{"sites/example/roles.cue", `databases: feature_store_online: {}`, "databases: feature_store_online: {}\n\t\t\tdatabases: scratch: {}"}},
			reverse:  true,
			wantCode: 2,
			want:     []string{"mariadb.database:scratch", "pending destroy"},
		},
		{
			name: "secret-reference",
			// The new secret is provided too: a reference nothing provides
			// is a broken invariant (see catalog-user-narrowed).
			changes: []change{
				{"sites/example/roles.cue", `password: {secret: "mariadb/fs_user"}`, `password: {secret: "mariadb/fs_user_2026"}`},
				{"sites/example/site.cue", `"monitoring/mysqld_exporter"]`, `"monitoring/mysqld_exporter", "mariadb/fs_user_2026"]`},
			},
			wantCode: 2,
			want:     []string{"\n-    password: secret mariadb/fs_user\n+    password: secret mariadb/fs_user_2026\n", "<details open>"},
		},
		{
			// A change on one node that breaks another: online-1 narrows
			// the catalog user's host, offline-1's catalog loses access.
			// Both nodes show it, and the plan exits 1.
			name:     "catalog-user-narrowed",
			changes:  []change{{"sites/example/site.cue", `user:     "iceberg_catalog_user"`, "user:     \"iceberg_catalog_user\"\n\t\t\tclientHost: \"localhost\""}},
			wantCode: 1,
			want: []string{"2 invariants BROKEN across nodes", "<b>offline-1</b> (feature_store_offline): unchanged",
				"BROKEN catalog-user: online-1 drops mariadb.user:iceberg_catalog_user@%: node offline-1 "},
		},
		{
			name: "add-node",
			changes: []change{{"sites/example/nodes.cue", `"online-1": {`, `"online-2": {
		role: "feature_store_online"
		fqdn: "feature-store-online-2.internal"
	}
	"online-1": {`}},
			nodes:    nil,
			wantCode: 2,
			// monitoring-1's scrape configuration gains online-2's
			// exporters and agent: it is generated from the site.
			want: []string{"online-2", "added", "monitoring-1", "\n+                - feature-store-online-2.internal:9104\n"},
		},
		{
			name: "profile-all-nodes",
			changes: []change{{"schema/profile/base.cue", `"MaxAuthTries \(S.maxAuthTries)",`, `"MaxAuthTries \(S.maxAuthTries)",
					"LoginGraceTime 30",`}},
			wantCode: 2,
			want:     []string{"4 nodes change", "online-1", "offline-1", "vector-1", "monitoring-1", "\n+      LoginGraceTime 30\n"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := planRepo(t)
			dir := w.Dir
			for _, c := range tc.changes {
				edit(t, dir, c.file, c.old, c.new)
			}
			w.Git("commit", "-q", "-am", tc.name)
			base, head := "HEAD~1", "HEAD"
			if tc.reverse {
				base, head = head, base
			}
			args := []string{"plan", "--repo", dir, "--base", base, "--head", head, "-o", "markdown"}
			code, out, stderr := fsgit(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("plan lacks %q:\n%s", w, out)
				}
			}
			golden := filepath.Join("testdata", "golden", "plan-"+tc.name+".md")
			// Hashes differ per repository; the golden file holds them masked.
			masked := maskHashes(out)
			if *update {
				if err := os.WriteFile(golden, []byte(masked), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			checkDiffColumns(t, out)
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if masked != string(want) {
				t.Errorf("plan differs from %s (run with -update after a deliberate change):\n%s", golden, firstDiff(masked, string(want)))
			}
			// Same inputs, same text.
			_, again, _ := fsgit(t, args...)
			if again != out {
				t.Error("plan output is not stable across runs")
			}
		})
	}
}

// TestPlan_InvalidHead: a head revision that does not validate makes the
// plan fail with the position of the error.
func TestPlan_InvalidHead(t *testing.T) {
	w := planRepo(t)
	dir := w.Dir
	edit(t, dir, "sites/example/roles.cue", "maxConnections:       500", `maxConnections:       "many"`)
	w.Git("commit", "-q", "-am", "break")
	code, out, stderr := fsgit(t, "plan", "--repo", dir, "--base", "HEAD~1", "--head", "HEAD")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "sites/example/roles.cue:") || !strings.Contains(stderr, "does not validate") {
		t.Errorf("error lacks the position in roles.cue:\n%s", stderr)
	}
}

// TestPlan_NoChange: the same revision on both sides is exit 0.
func TestPlan_NoChange(t *testing.T) {
	w := planRepo(t)
	dir := w.Dir
	code, out, stderr := fsgit(t, "plan", "--repo", dir, "--base", "HEAD", "--head", "HEAD", "-o", "json")
	if code != 0 || !strings.Contains(out, `"nodes": 0`) {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

func maskHashes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && strings.IndexByte("0123456789abcdef", s[j]) >= 0 {
			j++
		}
		if j-i == 12 || j-i == 40 {
			b.WriteString("<rev>")
			i = j
			continue
		}
		if j > i {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// TestPlan_Observed: with the status branch in the repository, the plan
// says which revision each changed node runs now and what is drifted,
// failing or pending destroy there.
func TestPlan_Observed(t *testing.T) {
	w := planRepo(t)
	dir := w.Dir
	base := w.Git("rev-parse", "HEAD")
	edit(t, dir, "sites/example/roles.cue", `innodbBufferPoolSize: "2G"`, `innodbBufferPoolSize: "4G"`)
	w.Git("commit", "-q", "-am", "bigger pool")
	head := w.Git("rev-parse", "HEAD")

	// The status branch as agents write it: an orphan branch of
	// nodes/<node>.json documents.
	w.Git("checkout", "-q", "--orphan", "fsgit/status")
	w.Git("rm", "-q", "-rf", ".")
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	online := `{"node": "online-1", "appliedRevision": "` + base + `", "converged": false,
		"drifted": [{"id": "mariadb.grant:fs_user@localhost/feature_store_online.*"}],
		"pendingDestroy": [{"id": "mariadb.database:old_db"}]}`
	if err := os.WriteFile(filepath.Join(dir, "nodes/online-1.json"), []byte(online), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Git("add", "nodes")
	w.Git("commit", "-q", "-m", "status")
	w.Git("checkout", "-q", "main")

	code, out, stderr := fsgit(t, "plan", "--repo", dir, "--base", base, "--head", head)
	if code != 2 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	for _, w := range []string{
		"node runs " + base[:12] + " now",
		"drifted there now: mariadb.grant:fs_user@localhost/feature_store_online.*",
		"pending destroy there now: mariadb.database:old_db",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}

	// Once the node reports the head revision, the plan says it has it.
	w.Git("checkout", "-q", "fsgit/status")
	done := `{"node": "online-1", "appliedRevision": "` + head + `", "converged": true}`
	if err := os.WriteFile(filepath.Join(dir, "nodes/online-1.json"), []byte(done), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Git("commit", "-q", "-am", "status")
	w.Git("checkout", "-q", "main")
	_, out, _ = fsgit(t, "plan", "--repo", dir, "--base", base, "--head", head)
	if !strings.Contains(out, "node already runs "+head[:12]) {
		t.Errorf("plan does not say the node has the head:\n%s", out)
	}

	// A held destroy's changes carry their class: the document is read
	// (it once was not, and the plan silently lost what the node has).
	// A document that cannot be read is said to be so.
	for doc, want := range map[string]string{
		`{"node": "online-1", "appliedRevision": "` + base + `", "pendingDestroy": [{"id": "mariadb.grant:x@%/db",
			"changes": [{"field": "privileges", "before": "SELECT", "class": "destructive"}]}]}`: "pending destroy there now: mariadb.grant:x@%/db",
		`{"node": "online-1", "since": 3}`: "node status unreadable: read nodes/online-1.json on fsgit/status: ",
	} {
		w.Git("checkout", "-q", "fsgit/status")
		if err := os.WriteFile(filepath.Join(dir, "nodes/online-1.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		w.Git("commit", "-q", "-am", "status")
		w.Git("checkout", "-q", "main")
		_, out, _ = fsgit(t, "plan", "--repo", dir, "--base", base, "--head", head)
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

// checkDiffColumns fails when a line inside a ```diff block of a markdown
// plan does not start with its mark in column 0 ("+", "-", " " or an "@@"
// header): GitHub colours a line only by its first character, and a plan
// whose "+" lines were indented once rendered all grey.
func checkDiffColumns(t *testing.T, md string) {
	t.Helper()
	in, marks := false, 0
	for i, line := range strings.Split(md, "\n") {
		switch {
		case line == "```diff":
			in = true
			continue
		case in && line == "```":
			in = false
			continue
		case !in:
			continue
		}
		switch {
		case strings.HasPrefix(line, "+"), strings.HasPrefix(line, "-"):
			marks++
		case strings.HasPrefix(line, "@@ "), strings.HasPrefix(line, " "):
		default:
			t.Errorf("line %d of the plan, in a diff block, has no mark in column 0: %q", i+1, line)
		}
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "@@")) && strings.TrimSpace(line) != "" && strings.HasPrefix(strings.TrimSpace(line), "+ ") {
			t.Errorf("line %d of the plan has its + mark indented: %q", i+1, line)
		}
	}
	if strings.Contains(md, "```diff") && marks == 0 {
		t.Errorf("the plan's diff blocks have no + or - line:\n%s", md)
	}
}
