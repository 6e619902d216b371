package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
	"github.com/fsgit/fsgit/schema"
)

// This file runs real agents (internal/agent, the file kind, bbolt state,
// a git cache, publishing to the status branch over git http-backend)
// against a site of JSON catalogs, to give the browser test a status
// branch written the way a fleet writes it.

// catalogLoader reads a node's catalog from <site>/nodes/<node>.json; the
// role is the node name up to its first "-".
func catalogLoader(_ context.Context, fsys fs.FS, siteDir, rev, node string) (*reconciler.Catalog, error) {
	name := path.Join(siteDir, "nodes", node+".json")
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("node %s is not in the site: %w", node, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c reconciler.Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: offset %d: %w", name, dec.InputOffset(), err)
	}
	role, _, _ := strings.Cut(node, "-")
	c.Site, c.Node, c.Role, c.Revision = "example", node, role, rev
	c.Sort()
	return &c, nil
}

// fileRes is a file resource of a catalog; secret, if set, names the
// secret its content's {{secret:pw}} stands for.
func fileRes(p, content, secret string) reconciler.Resource {
	spec := map[string]any{"path": p, "content": content, "owner": "root", "group": "root", "mode": "0600", "ensure": "present"}
	if secret != "" {
		spec["secrets"] = map[string]reconciler.SecretRef{"pw": {Secret: secret}}
	}
	b, _ := json.Marshal(spec)
	return reconciler.Resource{ID: reconciler.ID("file:" + p), Spec: b}
}

// canary is the value of the secret db_password: it is written into a
// file on online-1, and must show on no page.
const canary = "CANARY-5b1e0d-db-password"

// secretsDir makes the agents' secrets directory, holding db_password.
func secretsDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db_password"), []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func catalogJSON(tb testing.TB, rs ...reconciler.Resource) string {
	tb.Helper()
	b, err := json.MarshalIndent(reconciler.Catalog{Resources: rs}, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// lockedBuffer is a log sink written by an agent and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs an agent named name following url until the test ends.
func startAgent(t *testing.T, name, url, secretsDir string) {
	t.Helper()
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "fsgw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	cfgFile := filepath.Join(dir, "agent.cue")
	cfg := fmt.Sprintf(`node: %q
source: {
	url: %q
	site: "sites/example"
	pollInterval: "500ms"
	jitter: "100ms"
	maxBackoff: "400ms"
}
root: %q
stateFile: %q
cacheDir: %q
socket: %q
`, name, url, filepath.Join(dir, "root"), filepath.Join(dir, "state.db"), filepath.Join(dir, "cache"), filepath.Join(sockDir, "fsgit.sock"))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := agent.LoadConfig(schema.Files(), cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	a, err := agent.New(agent.Options{Config: c, ConfigFile: cfgFile, SchemaFS: schema.Files(),
		Registry: reconciler.NewRegistry(file.Kinds()...), Load: catalogLoader,
		Secrets: func(agent.SecretsConfig, fs.FS) (reconciler.SecretResolver, error) {
			return secrets.NewFiles(secretsDir), nil
		},
		Log: slog.New(slog.NewTextHandler(logs, nil)), Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		a.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop", name)
		}
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, logs.String())
		}
	})
}

// agentFleet is a status branch written by four real agents through three
// commits of the site, and by a hostile node.
type agentFleet struct {
	url        string
	c1, c2, c3 string
}

// newAgentFleet runs the agents until the branch shows: online-1 and
// online-2 converged on c3; offline-1 failing (its file's owner does not
// exist); offline-2 on c3 but holding a destroy (a file where its
// directory is); vector-1 converged on c2, having refused c3 (its catalog
// does not decode). The hostile node's document, published as an agent
// would, names the node and its error with markup.
func newAgentFleet(t *testing.T) *agentFleet {
	t.Helper()
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	f := &agentFleet{url: gs.URL("site.git")}
	work := gittest.NewWork(t, f.url)
	good := []string{"online-1", "online-2", "vector-1"}
	catalogs := func(v string, broken bool) map[string]string {
		m := map[string]string{}
		for _, n := range good {
			m["sites/example/nodes/"+n+".json"] = catalogJSON(t, fileRes("/etc/fsgit-demo/node.conf", n+" "+v+"\n", ""),
				fileRes("/etc/fsgit-demo/role.conf", "version "+v+"\n", ""))
		}
		m["sites/example/nodes/online-1.json"] = catalogJSON(t, fileRes("/etc/fsgit-demo/node.conf", "online-1 "+v+"\n", ""),
			fileRes("/etc/fsgit-demo/role.conf", "version "+v+"\n", ""), fileRes("/etc/fsgit-demo/db.conf", "password={{secret:pw}}\n", "db_password"))
		m["sites/example/nodes/offline-1.json"] = catalogJSON(t, fileRes("/etc/fsgit-demo/node.conf", "offline-1 "+v+"\n", ""),
			fileRes("/etc/fsgit-demo/db.conf", "password={{secret:pw}}\n", "no_such_secret"))
		// The file where a directory is comes after the file that makes
		// the directory (an edge: the engine runs independent resources in
		// parallel, and the other order fails node.conf instead of holding
		// a destroy).
		conflict := fileRes("/etc/fsgit-demo", "a file where a directory is\n", "")
		conflict.Require = []reconciler.ID{"file:/etc/fsgit-demo/node.conf"}
		m["sites/example/nodes/offline-2.json"] = catalogJSON(t, fileRes("/etc/fsgit-demo/node.conf", "offline-2 "+v+"\n", ""), conflict)
		if broken {
			m["sites/example/nodes/vector-1.json"] = `{"resources": [ {"id": "file:/etc/x", "sepc": {}} ]}`
		}
		return m
	}
	f.c1 = work.CommitAndPush("v1", catalogs("v1", false))
	sdir := secretsDir(t)
	for _, n := range append(good, "offline-1", "offline-2") {
		startAgent(t, n, f.url, sdir)
	}
	converged := func(rev string, nodes ...string) func(map[string]status.Node) bool {
		return func(docs map[string]status.Node) bool {
			for _, n := range nodes {
				if d, ok := docs[n]; !ok || !d.Converged || d.AppliedRevision != rev {
					return false
				}
			}
			return true
		}
	}
	others := func(rev string) func(map[string]status.Node) bool {
		return func(docs map[string]status.Node) bool {
			o1, o2 := docs["offline-1"], docs["offline-2"]
			return len(o1.Failed) > 0 && o1.DesiredRevision == rev && len(o2.PendingDestroy) > 0 && o2.AppliedRevision == rev
		}
	}
	wait(t, f.url, "the agents converged on v1", func(d map[string]status.Node) bool { return converged(f.c1, good...)(d) && others(f.c1)(d) })
	f.c2 = work.CommitAndPush("v2", catalogs("v2", false))
	wait(t, f.url, "the agents converged on v2", func(d map[string]status.Node) bool { return converged(f.c2, good...)(d) && others(f.c2)(d) })
	f.c3 = work.CommitAndPush("v3", catalogs("v3", true))
	wait(t, f.url, "v3 applied, and refused by vector-1", func(d map[string]status.Node) bool {
		v := d["vector-1"]
		return converged(f.c3, "online-1", "online-2")(d) && len(v.Refused) > 0 && v.Refused[0].Commit == f.c3 && others(f.c3)(d)
	})
	now := time.Now().UTC()
	publish(t, f.url, &status.Node{Node: hostileName, Site: "example", Role: "online", DesiredRevision: f.c3, AppliedRevision: f.c1,
		Since: now, Updated: now, LastRun: &status.Run{Revision: f.c3, Started: now, Trigger: "poll", Counts: map[reconciler.Outcome]int{reconciler.Failed: 1}, ExitCode: 4},
		Failed: []status.Item{{ID: "file:/etc/x", Reason: hostileError}}, Source: status.Source{Reachable: true}})
	return f
}

// wait reads the status branch every 200ms until cond holds of its
// documents (by node), or fails after a minute.
func wait(t *testing.T, url, what string, cond func(map[string]status.Node) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		nodes, _, _ := status.ReadFleet(context.Background(), url, "", nil)
		docs := map[string]status.Node{}
		for _, n := range nodes {
			docs[n.Node] = n
		}
		if cond(docs) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(nodes, "", "  ")
			t.Fatalf("timed out waiting for %s; the branch holds:\n%s", what, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
