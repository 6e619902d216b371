package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/fsgit/fsgit/internal/gitsource"
)

// commitPrefix starts the subject of every commit a Publisher makes:
// "status: <node>" says whose document the commit carries.
const commitPrefix = "status: "

// The local refs a Reader fetches the remote's status refs into.
const (
	branchTracking = plumbing.ReferenceName("refs/remotes/origin/branch")
	nodesTracking  = "refs/remotes/origin/nodes/"
)

// Refs are the status refs a repository advertises: a listing of them is
// all a reader needs to tell whether anything moved.
type Refs struct {
	// Branch is the status branch's tip, empty when there is no branch.
	Branch string
	// Nodes maps every node with a ref of its own (the refs layout) to
	// the ref's tip.
	Nodes map[string]string
}

// Empty reports whether the repository holds no status at all.
func (r Refs) Empty() bool { return r.Branch == "" && len(r.Nodes) == 0 }

// Fingerprint digests the refs: two listings with the same fingerprint
// name the same commits.
func (r Refs) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "branch %s\n", r.Branch)
	for _, node := range slices.Sorted(maps.Keys(r.Nodes)) {
		fmt.Fprintf(h, "node %s %s\n", node, r.Nodes[node])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Version is one document of a node, as the commit that published it
// holds it.
type Version struct {
	// Commit is the commit's hash, When its committer's time.
	Commit string
	When   time.Time
	// Node is the document.
	Node *Node
}

// Fleet is one read of a status repository.
type Fleet struct {
	// Nodes are every node's current document, sorted by node name, as
	// [ReadFleet] returns them: a node's ref wins over its document on the
	// branch, and an unreadable document comes with Unreadable set.
	Nodes []Node
	// Tip is the status branch's tip, empty when there is no branch.
	Tip string
	// Refs are the refs read (their Fingerprint tells a later listing
	// whether anything moved since).
	Refs Refs
	// History holds each node's documents, newest first: from the node's
	// ref, or from the branch for a node without one, up to
	// ReaderConfig.History commits each walk, as far as the fetch reached.
	History map[string][]Version
	// Commits counts the commits walked for the histories.
	Commits int
	// Unreadable names the documents that could not be read, nil when all
	// could.
	Unreadable error
}

// ReaderConfig says where a status repository is and how much of it to
// read.
type ReaderConfig struct {
	// URL is the repository, Branch the status branch (DefaultBranch if
	// empty), Auth how to reach it (nil for no authentication).
	URL    string
	Branch string
	Auth   transport.AuthMethod
	// History is how many commits of the branch, and of each node's ref,
	// are fetched and walked for the nodes' histories; zero reads the
	// current documents only.
	History int
	// CacheDir is a bare cache kept between reads, so that a read fetches
	// only what is new; empty keeps the objects in memory (for a reader
	// used once). CacheMaxBytes bounds the cache (default
	// gitsource.DefaultCacheMaxBytes): past it, the cache is made again
	// from a fresh fetch.
	CacheDir      string
	CacheMaxBytes int64
}

// Reader reads a status repository, in either layout, again and again: its
// List costs one round trip and fetches nothing, its Read fetches what the
// listing names and reads the documents and their histories. It is safe
// for concurrent use; its reads are serialized.
type Reader struct {
	cfg ReaderConfig

	mu        sync.Mutex
	repo      *git.Repository
	store     *filesystem.Storage // the cache's, nil in memory
	compactAt int64
}

// NewReader makes a reader of cfg's repository, opening (or making) its
// cache.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = gitsource.DefaultCacheMaxBytes
	}
	r := &Reader{cfg: cfg}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// open opens the cache, or makes a memory repository.
func (r *Reader) open() error {
	if r.cfg.CacheDir != "" {
		if _, err := gitsource.OpenCache(r.cfg.CacheDir, r.cfg.URL); err != nil {
			return fmt.Errorf("open status cache: %w", err)
		}
		// Open again keeping the packs open: a read looks up thousands of
		// objects, and go-git otherwise opens the pack for each.
		r.store = filesystem.NewStorageWithOptions(osfs.New(r.cfg.CacheDir), cache.NewObjectLRUDefault(),
			filesystem.Options{KeepDescriptors: true})
		repo, err := git.Open(r.store, nil)
		if err != nil {
			return fmt.Errorf("open status cache: %w", err)
		}
		r.repo = repo
		return nil
	}
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return fmt.Errorf("make status repository: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.cfg.URL}}); err != nil {
		return fmt.Errorf("make status remote: %w", err)
	}
	r.repo = repo
	return nil
}

// Close closes the cache's files; the reader is not to be used after.
func (r *Reader) Close() error {
	if r.store == nil {
		return nil
	}
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("close status cache: %w", err)
	}
	return nil
}

// fail wraps an error of reading the remote, its URL's password redacted.
func (r *Reader) fail(err error) error {
	return gitsource.RedactError(r.cfg.URL, fmt.Errorf("read status from %s: %w", gitsource.RedactURL(r.cfg.URL), err))
}

// List lists the status refs the repository advertises: one round trip,
// no objects. An empty repository has none, and is no error.
func (r *Reader) List(ctx context.Context) (Refs, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	remote, err := r.repo.Remote("origin")
	if err != nil {
		return Refs{}, r.fail(err)
	}
	advertised, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.cfg.Auth})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return Refs{}, nil
	}
	if err != nil {
		return Refs{}, r.fail(err)
	}
	branch := plumbing.NewBranchReferenceName(r.cfg.Branch)
	prefix := NodeRef(r.cfg.Branch, "").String()
	var refs Refs
	for _, ref := range advertised {
		if ref.Type() != plumbing.HashReference {
			continue
		}
		if ref.Name() == branch {
			refs.Branch = ref.Hash().String()
			continue
		}
		if node, ok := strings.CutPrefix(ref.Name().String(), prefix); ok && checkNodeName(node) == nil {
			if refs.Nodes == nil {
				refs.Nodes = map[string]string{}
			}
			refs.Nodes[node] = ref.Hash().String()
		}
	}
	return refs, nil
}

// Read fetches the refs listed (shallow: ReaderConfig.History commits,
// one at least) and reads every node's document and history. It fails only
// when the repository cannot be read: an unreadable document is reported
// in Fleet.Unreadable. Listed refs that are gone by the time of the fetch
// are left out.
func (r *Reader) Read(ctx context.Context, listed Refs) (*Fleet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := &Fleet{}
	if listed.Empty() {
		return f, nil
	}
	if err := r.fetch(ctx, listed); err != nil {
		return nil, err
	}
	byNode := map[string]Node{}
	var errs []error
	if listed.Branch != "" {
		ref, err := r.repo.Reference(branchTracking, true)
		if err != nil {
			return nil, r.fail(err)
		}
		f.Tip, f.Refs.Branch = ref.Hash().String(), ref.Hash().String()
		nodes, err := nodesTree(r.repo, ref.Hash())
		if err != nil {
			return nil, err
		}
		for _, e := range treeEntries(nodes) {
			node := strings.TrimSuffix(e.Name, ".json")
			n, err := readNode(nodes, &e)
			if err != nil {
				errs = append(errs, err)
				n = Node{Node: node, Unreadable: err.Error()}
			}
			byNode[node] = n
		}
	}
	for node := range listed.Nodes {
		ref, err := r.repo.Reference(plumbing.ReferenceName(nodesTracking+node), true)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue // deleted between the listing and the fetch
		}
		if err != nil {
			return nil, r.fail(err)
		}
		if f.Refs.Nodes == nil {
			f.Refs.Nodes = map[string]string{}
		}
		f.Refs.Nodes[node] = ref.Hash().String()
		n, err := readRefNode(r.repo, ref.Hash(), node)
		if err != nil {
			errs = append(errs, err)
			n = Node{Node: node, Unreadable: err.Error()}
		}
		byNode[node] = n
	}
	f.Nodes = make([]Node, 0, len(byNode))
	for _, n := range byNode {
		f.Nodes = append(f.Nodes, n)
	}
	sort.Slice(f.Nodes, func(i, j int) bool { return f.Nodes[i].Node < f.Nodes[j].Node })
	f.Unreadable = errors.Join(errs...)
	if r.cfg.History > 0 {
		r.readHistory(f)
	}
	return f, nil
}

// fetch fetches the listed refs, shallow, into the repository, and makes
// the cache again when it has grown past its bound.
func (r *Reader) fetch(ctx context.Context, listed Refs) error {
	var specs []config.RefSpec
	if listed.Branch != "" {
		specs = append(specs, config.RefSpec("+"+plumbing.NewBranchReferenceName(r.cfg.Branch)+":"+branchTracking))
	}
	if len(listed.Nodes) > 0 {
		specs = append(specs, config.RefSpec("+"+NodeRef(r.cfg.Branch, "")+"*:"+nodesTracking+"*"))
	}
	fetch := func() error {
		err := r.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs,
			Depth: max(1, r.cfg.History), Tags: git.NoTags, Force: true, Auth: r.cfg.Auth})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return r.fail(err)
		}
		return nil
	}
	if err := fetch(); err != nil || r.cfg.CacheDir == "" {
		return err
	}
	size, err := gitsource.CacheSize(r.cfg.CacheDir)
	if err != nil {
		return fmt.Errorf("measure status cache: %w", err)
	}
	if size <= max(r.cfg.CacheMaxBytes, r.compactAt) {
		return nil
	}
	// Every fetch adds the new commits and keeps the old ones: start
	// again from what the refs need now.
	if err := r.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(r.cfg.CacheDir); err != nil {
		return fmt.Errorf("clear status cache: %w", err)
	}
	if err := r.open(); err != nil {
		return err
	}
	if err := fetch(); err != nil {
		return err
	}
	// A fleet whose history alone is near the bound would otherwise start
	// again after every fetch.
	after, _ := gitsource.CacheSize(r.cfg.CacheDir)
	r.compactAt = 2 * after
	return nil
}

// readHistory walks the branch and every node ref for f's histories: a
// node with a ref of its own has its history there (continuing into the
// branch's, when it moved from one layout to the other), the others on the
// branch.
func (r *Reader) readHistory(f *Fleet) {
	f.History = map[string][]Version{}
	if f.Refs.Branch != "" {
		f.Commits += r.walk(plumbing.NewHash(f.Refs.Branch), "", func(node string, v Version) {
			if _, own := f.Refs.Nodes[node]; !own {
				f.History[node] = append(f.History[node], v)
			}
		})
	}
	for node, tip := range f.Refs.Nodes {
		f.Commits += r.walk(plumbing.NewHash(tip), node, func(_ string, v Version) {
			f.History[node] = append(f.History[node], v)
		})
	}
}

// walk follows first parents from h for up to ReaderConfig.History
// commits, as far as the repository holds them, and hands add the
// document each commit published (the one its subject names: only node's,
// unless node is empty). It returns the commits walked.
func (r *Reader) walk(h plumbing.Hash, node string, add func(node string, v Version)) int {
	walked := 0
	for walked < r.cfg.History {
		c, err := r.repo.CommitObject(h)
		if err != nil {
			break // beyond the shallow fetch
		}
		walked++
		subject, _, _ := strings.Cut(c.Message, "\n")
		if name, ok := strings.CutPrefix(strings.TrimSpace(subject), commitPrefix); ok && (node == "" || name == node) && docName(name) {
			if n, err := readRefNode(r.repo, c.Hash, name); err == nil && n.Node == name {
				add(name, Version{Commit: c.Hash.String(), When: c.Committer.When, Node: &n})
			}
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return walked
}

// docName reports whether name can name a document of the nodes directory.
func docName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\\n") && !strings.HasPrefix(name, ".")
}

// ReadFleet reads every node document of the status repository, in either
// layout, sorted by node name, and the status branch's tip (empty when
// there is no branch). A node's own ref (the refs layout) wins over its
// document on the branch, which is read for the nodes that have no ref
// yet: a fleet moving from one layout to the other is read whole. Nothing
// there yet gives no nodes and no error. A document that cannot be read is
// not left out: its node comes with Unreadable set, and the error returned
// names it too. It is a [Reader]'s List and Read, without history.
func ReadFleet(ctx context.Context, url, branch string, auth transport.AuthMethod) ([]Node, string, error) {
	r, err := NewReader(ReaderConfig{URL: url, Branch: branch, Auth: auth})
	if err != nil {
		return nil, "", err
	}
	refs, err := r.List(ctx)
	if err != nil {
		return nil, "", err
	}
	f, err := r.Read(ctx, refs)
	if err != nil {
		return nil, "", err
	}
	return f.Nodes, f.Tip, f.Unreadable
}

// nodesTree returns the nodes directory of commit h's tree, nil when there
// is none.
func nodesTree(repo *git.Repository, h plumbing.Hash) (*object.Tree, error) {
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("read status commit %s: %w", h, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read status tree of %s: %w", h, err)
	}
	nodes, err := tree.Tree(dir)
	if errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read status tree of %s: %w", h, err)
	}
	return nodes, nil
}

// treeEntries lists the node documents of a nodes directory (nil: none).
func treeEntries(nodes *object.Tree) []object.TreeEntry {
	if nodes == nil {
		return nil
	}
	var out []object.TreeEntry
	for _, e := range nodes.Entries {
		if e.Mode == filemode.Regular && path.Ext(e.Name) == ".json" {
			out = append(out, e)
		}
	}
	return out
}

// readRefNode reads node's document from the commit h of its own ref.
func readRefNode(repo *git.Repository, h plumbing.Hash, node string) (Node, error) {
	nodes, err := nodesTree(repo, h)
	if err != nil {
		return Node{}, fmt.Errorf("ref of %s: %w", node, err)
	}
	for _, e := range treeEntries(nodes) {
		if e.Name == node+".json" {
			return readNode(nodes, &e)
		}
	}
	return Node{}, fmt.Errorf("ref of %s: no %s/%s.json in commit %s", node, dir, node, h)
}

// readNode reads one node document of the status branch.
func readNode(nodes *object.Tree, e *object.TreeEntry) (Node, error) {
	var n Node
	f, err := nodes.TreeEntryFile(e)
	if err != nil {
		return n, fmt.Errorf("read %s: %w", e.Name, err)
	}
	content, err := f.Contents()
	if err != nil {
		return n, fmt.Errorf("read %s: %w", e.Name, err)
	}
	d, err := Decode([]byte(content))
	if err != nil {
		return n, fmt.Errorf("decode %s: %w", e.Name, err)
	}
	return *d, nil
}
