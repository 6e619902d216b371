package fleetsim

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
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
	"github.com/fsgit/fsgit/schema"
)

// Fleet configures one simulation of agents.
type Fleet struct {
	// Nodes is how many agents run.
	Nodes int
	// Interval and Jitter are the agents' poll settings.
	Interval, Jitter time.Duration
	// Idle is how long the idle load is measured.
	Idle time.Duration
	// Layout is the status layout: status.LayoutBranch publishes to the
	// polled repository's status branch (the old default),
	// status.LayoutRefs to per-node refs in a status repository of its
	// own.
	Layout string
	// Timeout bounds the wait for convergence and status.
	Timeout time.Duration
	// Dir holds everything (a temporary directory when empty).
	Dir string
	// Log receives progress lines.
	Log *slog.Logger
}

// FleetResult is what one simulation measured.
type FleetResult struct {
	Nodes            int
	Layout           string
	Interval, Jitter time.Duration
	// IdleRequestsPerSecond and IdleBytesPerPoll are the polled
	// repository's load while nothing changes; the formula's figure is
	// Nodes / (Interval + Jitter/2).
	IdleRequestsPerSecond, IdleBytesPerRequest, FormulaRequestsPerSecond float64
	// Converged are the times from the commit until 50, 90, 99 and 100 %
	// of the nodes ran it; Landed until every node's status said so.
	Converged [4]time.Duration
	Landed    time.Duration
	// Pushes per node and the servers' bytes after the commit (site and
	// status repository together).
	PushesPerNode float64
	ServerBytes   int64
	// SiteRequestsPerNode and StatusRequestsPerNode split the requests
	// made after the commit, per node, between the polled repository and
	// the status repository. In the branch layout status lives in the
	// polled repository: StatusRequestsPerNode is then 0 and
	// SiteRequestsPerNode counts both.
	SiteRequestsPerNode, StatusRequestsPerNode float64
	// GitCPU is the CPU time (user and system) of the git processes the
	// servers ran from the commit until every status landed (git
	// http-backend and what it starts); AgentCPU is this process's own
	// over the same time (the agents, the Go HTTP servers, the watch).
	// Unlike the times, they hardly depend on what else the machine runs.
	GitCPU, AgentCPU time.Duration
	// FleetRead is how long status.ReadFleet took over HTTP for every
	// node.
	FleetRead time.Duration
	// Note says what went short (a timeout), if anything.
	Note string
}

// RunFleet runs the simulation: the agents start on a first commit and
// converge; the idle load is measured; a second commit changes every node,
// and the times until convergence and status are measured; then the fleet
// is read back. It stops every agent before returning.
func RunFleet(ctx context.Context, f Fleet) (*FleetResult, error) {
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
	if f.Dir == "" {
		d, err := os.MkdirTemp("", "fleetsim")
		if err != nil {
			return nil, fmt.Errorf("fleet simulation: %w", err)
		}
		defer os.RemoveAll(d)
		f.Dir = d
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	root := filepath.Join(f.Dir, "srv")
	srv, err := startServer(ctx, root)
	if err != nil {
		return nil, err
	}
	// The status repository of the refs layout has a server of its own,
	// so that its requests are counted apart from the polled one's.
	statusRoot := filepath.Join(f.Dir, "statussrv")
	statusSrv, err := startServer(ctx, statusRoot)
	if err != nil {
		return nil, err
	}
	if err := newBare(filepath.Join(root, "site.git")); err != nil {
		return nil, err
	}
	if err := newBare(filepath.Join(statusRoot, "status.git")); err != nil {
		return nil, err
	}
	site := &siteRepo{dir: filepath.Join(f.Dir, "work"), remote: filepath.Join(root, "site.git")}
	names := make([]string, f.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node%04d", i)
	}
	c1, err := site.commit(names, "v1")
	if err != nil {
		return nil, err
	}
	statusURL, statusRepo := srv.URL("site.git"), filepath.Join(root, "site.git")
	if f.Layout == status.LayoutRefs {
		statusURL, statusRepo = statusSrv.URL("status.git"), filepath.Join(statusRoot, "status.git")
	}
	sockDir, err := os.MkdirTemp("", "fsim")
	if err != nil {
		return nil, fmt.Errorf("fleet simulation: %w", err)
	}
	defer os.RemoveAll(sockDir)

	agents := make([]*agent.Agent, len(names))
	var wg sync.WaitGroup
	defer func() {
		for _, a := range agents {
			if a != nil {
				a.Stop()
			}
		}
		wg.Wait()
	}()
	for i, name := range names {
		dir := filepath.Join(f.Dir, "nodes", name)
		cfgText := fmt.Sprintf(`node: %q
source: {url: %q, site: "sites/sim", pollInterval: %q, jitter: %q, maxBackoff: %q}
status: {url: %q, layout: %q}
root: %q
stateFile: %q
cacheDir: %q
socket: %q
watch: enabled: false
`, name, srv.URL("site.git"), f.Interval.String(), f.Jitter.String(), (4 * f.Interval).String(), statusURL, f.Layout,
			filepath.Join(dir, "root"), filepath.Join(dir, "state.db"), filepath.Join(dir, "cache"), filepath.Join(sockDir, fmt.Sprintf("%d.sock", i)))
		cfg, err := agent.ParseConfig(schema.Files(), name+".cue", []byte(cfgText))
		if err != nil {
			return nil, err
		}
		a, err := agent.New(agent.Options{
			Config:   cfg,
			Registry: reconciler.NewRegistry(file.Kinds()...),
			Load:     loadJSON,
			Notify:   func(string) {},
		})
		if err != nil {
			return nil, err
		}
		agents[i] = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx); err != nil {
				f.Log.Warn("agent stopped", "node", name, "err", err)
			}
		}()
	}
	res := &FleetResult{Nodes: f.Nodes, Layout: f.Layout, Interval: f.Interval, Jitter: f.Jitter,
		FormulaRequestsPerSecond: float64(f.Nodes) / (f.Interval + f.Jitter/2).Seconds()}
	start := time.Now()
	if _, err := waitConverged(ctx, agents, c1, start, f.Timeout); err != nil {
		return nil, fmt.Errorf("first commit: %w", err)
	}
	if _, err := waitLanded(ctx, statusRepo, names, c1, start, f.Timeout); err != nil {
		return nil, fmt.Errorf("first commit's status: %w", err)
	}
	f.Log.Info("fleet up", "nodes", f.Nodes, "after", time.Since(start).Round(time.Second))

	// Idle: a whole poll cycle first, so that the first commit's
	// fetches are over, then the window.
	sleep(ctx, f.Interval+f.Jitter)
	srv.ResetStats()
	idleStart := time.Now()
	sleep(ctx, f.Idle)
	c := srv.Stats()
	res.IdleRequestsPerSecond = float64(c.Requests) / time.Since(idleStart).Seconds()
	if c.Requests > 0 {
		res.IdleBytesPerRequest = float64(c.BytesSent) / float64(c.Requests)
	}
	f.Log.Info("idle measured", "requests/s", res.IdleRequestsPerSecond)

	srv.ResetStats()
	statusSrv.ResetStats()
	self0, kids0 := cpuTimes()
	c2, err := site.commit(names, "v2")
	if err != nil {
		return nil, err
	}
	start = time.Now()
	conv, err := waitConverged(ctx, agents, c2, start, f.Timeout)
	res.Converged = conv
	var notes []string
	if err != nil {
		notes = append(notes, err.Error())
	}
	landed, err := waitLanded(ctx, statusRepo, names, c2, start, f.Timeout)
	res.Landed = landed
	if err != nil {
		notes = append(notes, err.Error())
	}
	res.Note = strings.Join(notes, "; ")
	self1, kids1 := cpuTimes()
	res.AgentCPU, res.GitCPU = self1-self0, kids1-kids0
	c, cs := srv.Stats(), statusSrv.Stats()
	res.PushesPerNode = float64(c.ReceivePacks+cs.ReceivePacks) / float64(f.Nodes)
	res.ServerBytes = c.BytesSent + cs.BytesSent
	res.SiteRequestsPerNode = float64(c.Requests) / float64(f.Nodes)
	res.StatusRequestsPerNode = float64(cs.Requests) / float64(f.Nodes)
	readStart := time.Now()
	docs, _, err := status.ReadFleet(ctx, statusURL, "", nil)
	res.FleetRead = time.Since(readStart)
	if err != nil || len(docs) != f.Nodes {
		return res, fmt.Errorf("read the fleet: %d documents of %d: %w", len(docs), f.Nodes, err)
	}
	return res, nil
}

// cpuTimes returns the CPU time (user and system) of this process and of
// its children waited for.
func cpuTimes() (self, children time.Duration) {
	var s, c syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	sum := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return sum(s), sum(c)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitConverged waits until every agent ran rev, and returns when 50, 90,
// 99 and 100 % had, counted from start.
func waitConverged(ctx context.Context, agents []*agent.Agent, rev string, start time.Time, timeout time.Duration) ([4]time.Duration, error) {
	var out [4]time.Duration
	done := make([]time.Duration, 0, len(agents))
	seen := make([]bool, len(agents))
	for len(done) < len(agents) {
		for i, a := range agents {
			if !seen[i] {
				if st := a.Status(); st.Converged && st.AppliedRevision == rev {
					seen[i] = true
					done = append(done, time.Since(start))
				}
			}
		}
		if len(done) == len(agents) {
			break
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			fillQuantiles(&out, done, len(agents))
			return out, fmt.Errorf("%d of %d nodes converged on %.7s within %v", len(done), len(agents), rev, timeout)
		}
		sleep(ctx, 100*time.Millisecond)
	}
	fillQuantiles(&out, done, len(agents))
	return out, nil
}

func fillQuantiles(out *[4]time.Duration, done []time.Duration, n int) {
	sort.Slice(done, func(i, j int) bool { return done[i] < done[j] })
	for i, q := range []float64{0.5, 0.9, 0.99, 1} {
		k := int(q*float64(n)+0.999999) - 1
		if k < len(done) && k >= 0 {
			out[i] = done[k]
		}
	}
}

// waitLanded reads the status repository until every node's document
// says rev. It reads the repository's directory (statusDir, a bare
// repository) with go-git, and only the refs that moved since the last
// look: watching the fleet costs no git process, no pack and no request to
// the counted servers, whose CPU it would otherwise take (a read over
// file:// runs git upload-pack and packs every node's document each time).
func waitLanded(ctx context.Context, statusDir string, names []string, rev string, start time.Time, timeout time.Duration) (time.Duration, error) {
	w := &statusWatch{dir: statusDir, seen: map[plumbing.ReferenceName]plumbing.Hash{},
		fromRef: map[string]*status.Node{}, fromBranch: map[string]*status.Node{}}
	for {
		ok := 0
		if err := w.read(); err == nil {
			for _, n := range names {
				if d := w.doc(n); d != nil && d.Converged && d.AppliedRevision == rev {
					ok++
				}
			}
		}
		if ok == len(names) {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			return 0, fmt.Errorf("%d of %d statuses landed on %.7s within %v", ok, len(names), rev, timeout)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// statusWatch reads node documents from a bare status repository on disk,
// in either layout, re-reading only the refs that moved.
type statusWatch struct {
	dir        string
	seen       map[plumbing.ReferenceName]plumbing.Hash
	fromRef    map[string]*status.Node
	fromBranch map[string]*status.Node
}

// doc is node's newest document: its own ref's, else the branch's.
func (w *statusWatch) doc(node string) *status.Node {
	if d := w.fromRef[node]; d != nil {
		return d
	}
	return w.fromBranch[node]
}

func (w *statusWatch) read() error {
	// Opened again each time: a push may have added a pack since.
	repo, err := gogit.PlainOpen(w.dir)
	if err != nil {
		return fmt.Errorf("watch status: %w", err)
	}
	refs, err := repo.References()
	if err != nil {
		return fmt.Errorf("watch status: %w", err)
	}
	branch := plumbing.NewBranchReferenceName(status.DefaultBranch)
	prefix := status.NodeRef("", "").String()
	return refs.ForEach(func(r *plumbing.Reference) error {
		name := r.Name()
		if r.Type() != plumbing.HashReference || w.seen[name] == r.Hash() {
			return nil
		}
		switch {
		case name == branch:
			docs, err := readDocs(repo, r.Hash(), "")
			if err != nil {
				return nil // mid-push: read again next time
			}
			w.fromBranch = docs
		case strings.HasPrefix(name.String(), prefix):
			node := strings.TrimPrefix(name.String(), prefix)
			docs, err := readDocs(repo, r.Hash(), node)
			if err != nil || docs[node] == nil {
				return nil
			}
			w.fromRef[node] = docs[node]
		default:
			return nil
		}
		w.seen[name] = r.Hash()
		return nil
	})
}

// readDocs reads the documents under nodes/ of commit h: every one, or
// only node's when node is not empty.
func readDocs(repo *gogit.Repository, h plumbing.Hash, node string) (map[string]*status.Node, error) {
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("read status commit: %w", err)
	}
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read status tree: %w", err)
	}
	nodes, err := root.Tree("nodes")
	if err != nil {
		return nil, fmt.Errorf("read status tree: %w", err)
	}
	out := map[string]*status.Node{}
	for _, e := range nodes.Entries {
		name, ok := strings.CutSuffix(e.Name, ".json")
		if !ok || (node != "" && name != node) {
			continue
		}
		f, err := nodes.TreeEntryFile(&e)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name, err)
		}
		text, err := f.Contents()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name, err)
		}
		d, err := status.Decode([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name, err)
		}
		out[name] = d
	}
	return out, nil
}

// siteRepo is the working tree the site's commits are pushed from.
type siteRepo struct {
	dir, remote string
	ready       bool
}

// commit writes every node's catalog (one managed file saying version)
// and pushes.
func (s *siteRepo) commit(names []string, version string) (string, error) {
	if !s.ready {
		if _, err := git("", "init", "--quiet", "--initial-branch=main", s.dir); err != nil {
			return "", err
		}
		s.ready = true
	}
	d := filepath.Join(s.dir, "sites", "sim", "nodes")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("write the site: %w", err)
	}
	for _, n := range names {
		b, err := json.Marshal(siteCatalog(n, version))
		if err != nil {
			return "", fmt.Errorf("write the site: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d, n+".json"), b, 0o644); err != nil {
			return "", fmt.Errorf("write the site: %w", err)
		}
	}
	if _, err := git(s.dir, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := git(s.dir, "commit", "--quiet", "-m", "site "+version); err != nil {
		return "", err
	}
	if _, err := git(s.dir, "push", "--quiet", s.remote, "HEAD:main"); err != nil {
		return "", err
	}
	return git(s.dir, "rev-parse", "HEAD")
}

// siteCatalog is node's catalog: one file saying version.
func siteCatalog(node, version string) reconciler.Catalog {
	spec, _ := json.Marshal(map[string]string{"path": "/etc/fsgit-sim.conf", "content": node + " " + version + "\n",
		"owner": "root", "group": "root", "mode": "0644", "ensure": "present"})
	return reconciler.Catalog{Resources: []reconciler.Resource{{ID: "file:/etc/fsgit-sim.conf", Spec: spec}}}
}

// loadJSON reads node's catalog from <site>/nodes/<node>.json: only its
// own node's file, so one node's cost does not grow with the fleet.
func loadJSON(_ context.Context, fsys fs.FS, siteDir, rev, node string) (*reconciler.Catalog, error) {
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
	c.Site, c.Node, c.Role, c.Revision = "sim", node, "sim", rev
	c.Sort()
	return &c, nil
}
