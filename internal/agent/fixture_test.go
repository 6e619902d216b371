package agent

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

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
	"github.com/fsgit/fsgit/schema"
)

// jsonLoader reads a node's catalog from <site>/nodes/<node>.json, a
// reconciler.Catalog as JSON. It stands in for the CUE loader in the tests
// of the agent's loop, which are about git, runs and status, not CUE.
func jsonLoader(_ context.Context, fsys fs.FS, siteDir, rev, node string) (*reconciler.Catalog, error) {
	b, err := fs.ReadFile(fsys, path.Join(siteDir, "nodes", node+".json"))
	if err != nil {
		return nil, fmt.Errorf("node %s is not in the site: %w", node, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c reconciler.Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode catalog of %s: %w", node, err)
	}
	c.Site, c.Node, c.Role, c.Revision = "test", node, "testrole", rev
	c.Sort()
	return &c, nil
}

// fileRes is a file resource of a test catalog.
func fileRes(p, content string, edges ...func(*reconciler.Resource)) reconciler.Resource {
	spec, _ := json.Marshal(map[string]string{"path": p, "content": content, "owner": "root", "group": "root", "mode": "0644", "ensure": "present"})
	r := reconciler.Resource{ID: reconciler.ID("file:" + p), Spec: spec}
	for _, e := range edges {
		e(&r)
	}
	return r
}

func detect(r *reconciler.Resource) { r.Mode = reconciler.ModeDetect }

func catalogJSON(tb testing.TB, rs ...reconciler.Resource) string {
	tb.Helper()
	b, err := json.MarshalIndent(reconciler.Catalog{Resources: rs}, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// syncBuffer is a log sink that tests read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// node is one agent under test, with its own state, cache, socket and
// sandbox root.
type node struct {
	tb       testing.TB
	name     string
	interval string
	root     string
	dir      string
	stateDir string // where the state file goes (default dir)
	cacheDir string // the git cache (default dir/cache)
	cfgFile  string
	sock     string
	logs     *syncBuffer
	agent    *Agent
	done     chan error
	kinds    []reconciler.Kind
	load     CatalogLoader
	notify   func(string)
	secrets  SecretsFactory
}

// newNode writes a configuration for an agent named name following url,
// polling every interval; extra is CUE added to the configuration's top
// level.
func newNode(tb testing.TB, name, url, interval, extra string) *node {
	tb.Helper()
	dir := tb.TempDir()
	sockDir, err := os.MkdirTemp("", "fsgs")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	n := &node{
		tb:       tb,
		name:     name,
		interval: interval,
		root:     filepath.Join(dir, "root"),
		dir:      dir,
		stateDir: dir,
		cacheDir: filepath.Join(dir, "cache"),
		cfgFile:  filepath.Join(dir, "agent.cue"),
		sock:     filepath.Join(sockDir, "fsgit.sock"),
		logs:     &syncBuffer{},
		kinds:    file.Kinds(),
		load:     jsonLoader,
		notify:   func(string) {},
	}
	n.writeConfig(url, extra)
	return n
}

func (n *node) writeConfig(url, extra string) {
	n.tb.Helper()
	cfg := fmt.Sprintf(`node: %q
source: {
	url: %q
	site: "sites/test"
	pollInterval: %q
	jitter: "%dms"
	maxBackoff: "400ms"
}
root: %q
stateFile: %q
cacheDir: %q
socket: %q
log: level: "debug"
%s
`, n.name, url, n.interval, jitterMS(n.tb, n.interval), n.root, filepath.Join(n.stateDir, "state.db"), n.cacheDir, n.sock, extra)
	if err := os.WriteFile(n.cfgFile, []byte(cfg), 0o644); err != nil {
		n.tb.Fatal(err)
	}
}

func (n *node) start() {
	n.tb.Helper()
	cfg, err := LoadConfig(schema.Files(), n.cfgFile)
	if err != nil {
		n.tb.Fatal(err)
	}
	a, err := New(Options{
		Config:     cfg,
		ConfigFile: n.cfgFile,
		SchemaFS:   schema.Files(),
		Registry:   reconciler.NewRegistry(n.kinds...),
		Load:       n.load,
		Secrets:    n.secrets,
		Log:        slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Notify:     n.notify,
	})
	if err != nil {
		n.tb.Fatal(err)
	}
	n.agent = a
	n.done = make(chan error, 1)
	go func() { n.done <- a.Run(context.Background()) }()
	n.tb.Cleanup(func() {
		n.stop()
		if n.tb.Failed() {
			n.tb.Logf("logs of %s:\n%s", n.name, n.logs.String())
		}
	})
}

// stop stops the agent and waits for Run to return.
func (n *node) stop() {
	if n.agent == nil {
		return
	}
	n.agent.Stop()
	select {
	case err := <-n.done:
		if err != nil {
			n.tb.Errorf("agent %s: %v", n.name, err)
		}
	case <-time.After(30 * time.Second):
		n.tb.Errorf("agent %s did not stop", n.name)
	}
	n.agent = nil
}

// path returns a managed path under the node's root.
func (n *node) path(p string) string { return filepath.Join(n.root, p) }

func (n *node) read(p string) string {
	b, _ := os.ReadFile(n.path(p))
	return string(b)
}

// jitterMS is a fifth of the interval, in milliseconds.
func jitterMS(tb testing.TB, interval string) int64 {
	d, err := time.ParseDuration(interval)
	if err != nil {
		tb.Fatal(err)
	}
	return d.Milliseconds() / 5
}

// waitFor polls cond every 10ms until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	waitEvery(tb, what, 10*time.Millisecond, cond)
}

// waitEvery polls cond every period until it holds or a minute passes.
func waitEvery(tb testing.TB, what string, period time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(period)
	}
}

// fleetNode reads node name's document from the status branch.
func fleetNode(tb testing.TB, url, name string) *status.Node {
	tb.Helper()
	nodes, _, err := status.ReadFleet(context.Background(), url, "", nil)
	if err != nil {
		tb.Logf("read fleet: %v", err)
		return nil
	}
	for i := range nodes {
		if nodes[i].Node == name {
			return &nodes[i]
		}
	}
	return nil
}

// site is a repository with a working tree to push site changes from.
type site struct {
	srv  *gittest.Server
	work *gittest.Work
	url  string
}

func newSite(tb testing.TB) *site {
	tb.Helper()
	srv := gittest.NewServer(tb)
	srv.NewRepo("site.git")
	return &site{srv: srv, work: gittest.NewWork(tb, srv.URL("site.git")), url: srv.URL("site.git")}
}

// push commits catalogs (node name -> catalog JSON) and pushes.
func (s *site) push(msg string, catalogs map[string]string) string {
	files := map[string]string{}
	for n, c := range catalogs {
		files["sites/test/nodes/"+n+".json"] = c
	}
	return s.work.CommitAndPush(msg, files)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
