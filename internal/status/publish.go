package status

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/fsgit/fsgit/internal/gitsource"
)

// DefaultBranch is the status branch's default name.
const DefaultBranch = "fsgit/status"

// The layouts of status in a repository.
const (
	// LayoutBranch keeps every node's document on one branch,
	// nodes/<node>.json: one ref to read, but the nodes' pushes race for
	// it (measured: 50 nodes at once need 2.4 pushes each, 100 need 22).
	// The default: right for small fleets, and it can live in the polled
	// repository.
	LayoutBranch = "branch"
	// LayoutRefs gives each node its own ref, refs/<branch>/<node>
	// (refs/fsgit/status/db1), whose commit holds nodes/<node>.json: a
	// node is the only writer of its ref, so one push lands it whatever
	// the fleet does. Every ref is advertised to every client of the
	// repository, so it belongs in a status repository of its own, never
	// the polled one.
	LayoutRefs = "refs"
)

// NodeRef is the ref of node's document in the refs layout.
func NodeRef(branch, node string) plumbing.ReferenceName {
	if branch == "" {
		branch = DefaultBranch
	}
	return plumbing.ReferenceName("refs/" + branch + "/" + node)
}

// dir is the status branch's directory of node documents.
const dir = "nodes"

// Publisher commits node documents to a status branch. Each node touches
// only its own file, so a push that lost a race is redone by rebuilding
// the commit on the branch's new tip (a rebase without conflicts) and
// pushing again, after a jittered, exponentially growing wait. In the refs
// layout it remembers the commit it pushed last and pushes the next
// document on top of it without fetching first (two requests instead of
// four), fetching only when that push is refused. A Publisher is not to be
// copied once used.
type Publisher struct {
	// URL is the repository; Branch the status branch (DefaultBranch if
	// empty).
	URL    string
	Branch string
	// Layout is LayoutBranch (when empty) or LayoutRefs. In the refs
	// layout, a node's first commit continues the status branch's
	// history (its parent is the branch's tip, when the branch exists),
	// so moving a fleet from one layout to the other loses nothing:
	// [ReadFleet] reads a node from the branch until its ref exists.
	Layout string
	// Auth authenticates to the remote; nil for none.
	Auth transport.AuthMethod
	// Name and Email sign the commits ("fsgit agent", "fsgit@<node>").
	Name, Email string
	// MaxAttempts bounds the attempts of one Publish (default 30);
	// BaseDelay and MaxDelay shape the wait between attempts (default
	// 250 ms and 8 s): a random wait up to min(MaxDelay, BaseDelay·2^n).
	// A small base makes the losers of a crowded moment collide again;
	// measured with 50 publishers at once, 250 ms lands them sooner than
	// 100 ms.
	MaxAttempts         int
	BaseDelay, MaxDelay time.Duration
	// Log receives one line per publish and per failed attempt.
	Log *slog.Logger

	// In the refs layout, the commit pushed last (see attempt).
	mu   sync.Mutex
	last *lastPush
}

// ErrPublishGaveUp is wrapped when every attempt failed.
var ErrPublishGaveUp = errors.New("status not published")

// Publish commits n as nodes/<n.Node>.json on the status branch (or the
// node's ref, in the refs layout) and pushes it. It returns when the push landed, the document was already there, ctx
// ended, or the attempts ran out (an error wrapping ErrPublishGaveUp and
// the last attempt's error).
func (p *Publisher) Publish(ctx context.Context, n *Node) error {
	if err := checkNodeName(n.Node); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	if p.Layout != "" && p.Layout != LayoutBranch && p.Layout != LayoutRefs {
		return fmt.Errorf("publish status of %s: unknown layout %q: want %q or %q", n.Node, p.Layout, LayoutBranch, LayoutRefs)
	}
	doc, err := n.Marshal()
	if err != nil {
		return err
	}
	attempts := p.MaxAttempts
	if attempts <= 0 {
		attempts = 30
	}
	base, maxDelay := p.BaseDelay, p.MaxDelay
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 8 * time.Second
	}
	log := p.logger()
	bo := publishBackOff(base, maxDelay)
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("publish status of %s: %w", n.Node, errors.Join(ctx.Err(), last))
			case <-time.After(bo.NextBackOff()):
			}
		}
		commit, err := p.attempt(ctx, n.Node, doc)
		if err == nil {
			log.Debug("status published", "node", n.Node, "commit", commit, "attempts", i+1)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish status of %s: %w", n.Node, errors.Join(ctx.Err(), err))
		}
		last = err
		log.Debug("status push lost a race or failed; retrying", "node", n.Node, "attempt", i+1, "err", err)
	}
	return fmt.Errorf("publish status of %s after %d attempts: %w: %w", n.Node, attempts, ErrPublishGaveUp, last)
}

// checkNodeName refuses a name that cannot be a file name or a ref's last
// part.
func checkNodeName(node string) error {
	if node == "" || strings.ContainsAny(node, "/\\:~^?*[ \t\n") || strings.HasPrefix(node, ".") ||
		strings.HasSuffix(node, ".lock") || strings.Contains(node, "..") || strings.Contains(node, "@{") {
		return fmt.Errorf("bad node name %q", node)
	}
	return nil
}

func (p *Publisher) branch() string {
	if p.Branch == "" {
		return DefaultBranch
	}
	return p.Branch
}

// attempt publishes doc once. In the refs layout, a publisher that
// remembers the commit it pushed last to the node's ref builds on it and
// pushes without fetching first (a node is the only writer of its ref):
// two requests, a ref listing and the push. If that push is refused (the
// ref moved, or went, behind the publisher's back) or fails, or the
// document is the remembered one, the attempt does what it does with
// nothing remembered: fetch the tip (shallow, into memory), commit doc on
// top of it, push. It returns the pushed commit, or the tip when doc was
// already there.
func (p *Publisher) attempt(ctx context.Context, node string, doc []byte) (string, error) {
	target := plumbing.NewBranchReferenceName(p.branch())
	if p.Layout == LayoutRefs {
		target = NodeRef(p.branch(), node)
		if last := p.remembered(target); last != nil {
			h, err := p.commitAndPush(ctx, last.repo, last.tip, nil, target, node, doc)
			switch {
			case err == nil && !h.IsZero():
				p.remember(last.repo, h, target)
				return h.String(), nil
			case ctx.Err() != nil:
				return "", err
			}
			p.forget()
			if err != nil {
				p.logger().Debug("status push on the last commit refused or failed; fetching the ref", "node", node, "err", err)
			}
		}
	}
	repo, tip, err := fetchRef(ctx, p.URL, target, p.Auth)
	if err != nil {
		return "", err
	}
	var parent *object.Commit
	if tip == nil && p.Layout == LayoutRefs {
		// The node's first document in this layout: continue the
		// branch's history, if there is one.
		if repo, parent, err = fetchRef(ctx, p.URL, plumbing.NewBranchReferenceName(p.branch()), p.Auth); err != nil {
			return "", err
		}
	}
	h, err := p.commitAndPush(ctx, repo, tip, parent, target, node, doc)
	if err != nil {
		return "", err
	}
	if h.IsZero() {
		// Already there: the tip is the node's document.
		h = tip.Hash
	}
	if p.Layout == LayoutRefs {
		p.remember(repo, h, target)
	}
	return h.String(), nil
}

// commitAndPush commits doc as nodes/<node>.json in repo, on top of tip
// (or, when tip is nil, of parent, whose history it continues: "Continues
// <branch> at <parent>"), points target at it and pushes target. It
// returns the zero hash, and pushes nothing, when tip already holds doc.
func (p *Publisher) commitAndPush(ctx context.Context, repo *git.Repository, tip, parent *object.Commit,
	target plumbing.ReferenceName, node string, doc []byte) (plumbing.Hash, error) {
	var root *object.Tree
	var err error
	if tip != nil {
		if root, err = tip.Tree(); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read status tree: %w", err)
		}
	}
	s := repo.Storer
	blob, err := putBlob(s, doc)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	name := node + ".json"
	var nodes *object.Tree
	if root != nil {
		if nodes, err = root.Tree(dir); err != nil && !errors.Is(err, object.ErrDirectoryNotFound) {
			return plumbing.ZeroHash, fmt.Errorf("read status tree: %w", err)
		}
		if nodes != nil {
			if e, err := nodes.FindEntry(name); err == nil && e.Hash == blob {
				return plumbing.ZeroHash, nil
			}
		}
	}
	nodesHash, err := putTree(s, nodes, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	rootHash, err := putTree(s, root, object.TreeEntry{Name: dir, Mode: filemode.Dir, Hash: nodesHash})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	now := time.Now()
	sig := object.Signature{Name: p.Name, Email: p.Email, When: now}
	if sig.Name == "" {
		sig.Name = "fsgit agent"
	}
	if sig.Email == "" {
		sig.Email = "fsgit@" + node
	}
	c := &object.Commit{
		Author:    sig,
		Committer: sig,
		Message:   "status: " + node + "\n",
		TreeHash:  rootHash,
	}
	switch {
	case tip != nil:
		c.ParentHashes = []plumbing.Hash{tip.Hash}
	case parent != nil:
		c.ParentHashes = []plumbing.Hash{parent.Hash}
		c.Message += "\nContinues " + p.branch() + " at " + parent.Hash.String() + ".\n"
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode status commit: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store status commit: %w", err)
	}
	if err := s.SetReference(plumbing.NewHashReference(target, h)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("set status ref: %w", err)
	}
	// Not forced: the server takes the push only if target is still
	// where the fetch (or the last push) left it, and go-git refuses
	// before sending anything if the listing shows it moved.
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(target + ":" + target)},
		Auth:       p.Auth,
	})
	if err != nil {
		return plumbing.ZeroHash, gitsource.RedactError(p.URL, fmt.Errorf("push status: %w", err))
	}
	return h, nil
}

// lastPush is the commit a publisher pushed last (or found already there)
// on a node's ref, kept in a memory repository of its own with its tree,
// so that the next document can be committed on top of it without a
// fetch.
type lastPush struct {
	url    string
	target plumbing.ReferenceName
	repo   *git.Repository
	tip    *object.Commit
}

// remembered returns the last push to target at the publisher's URL, or
// nil.
func (p *Publisher) remembered(target plumbing.ReferenceName) *lastPush {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || p.last.url != p.URL || p.last.target != target {
		return nil
	}
	return p.last
}

// remember keeps commit h of src (and its tree) as the last push to target;
// if it cannot, nothing is remembered and the next publish fetches.
func (p *Publisher) remember(src *git.Repository, h plumbing.Hash, target plumbing.ReferenceName) {
	last, err := carry(src.Storer, h, p.URL)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = nil
	if err != nil {
		p.logger().Debug("status: cannot remember the last push; the next publish fetches first", "err", err)
		return
	}
	last.target = target
	p.last = last
}

// forget drops the remembered push: the next attempt fetches.
func (p *Publisher) forget() {
	p.mu.Lock()
	p.last = nil
	p.mu.Unlock()
}

func (p *Publisher) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// carry copies commit h and every object of its tree from src into a new
// memory repository whose origin is url: only what building on h needs,
// so that what a publisher remembers does not grow with each publish.
func carry(src storer.EncodedObjectStorer, h plumbing.Hash, url string) (*lastPush, error) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, fmt.Errorf("remember status commit: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, fmt.Errorf("remember status commit: %w", err)
	}
	put := func(t plumbing.ObjectType, h plumbing.Hash) error {
		o, err := src.EncodedObject(t, h)
		if err != nil {
			return fmt.Errorf("remember status commit: %w", err)
		}
		if _, err := repo.Storer.SetEncodedObject(o); err != nil {
			return fmt.Errorf("remember status commit: %w", err)
		}
		return nil
	}
	var putTree func(h plumbing.Hash) error
	putTree = func(h plumbing.Hash) error {
		if err := put(plumbing.TreeObject, h); err != nil {
			return err
		}
		t, err := object.GetTree(src, h)
		if err != nil {
			return fmt.Errorf("remember status commit: %w", err)
		}
		for _, e := range t.Entries {
			switch {
			case e.Mode == filemode.Dir:
				err = putTree(e.Hash)
			case e.Mode.IsFile():
				err = put(plumbing.BlobObject, e.Hash)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := put(plumbing.CommitObject, h); err != nil {
		return nil, err
	}
	c, err := object.GetCommit(repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("remember status commit: %w", err)
	}
	if err := putTree(c.TreeHash); err != nil {
		return nil, err
	}
	return &lastPush{url: url, repo: repo, tip: c}, nil
}

// fetchRef fetches ref from url, shallow, into a memory repository. The
// tip is nil when the ref does not exist yet.
func fetchRef(ctx context.Context, url string, ref plumbing.ReferenceName, auth transport.AuthMethod) (*git.Repository, *object.Commit, error) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("make status repository: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, nil, fmt.Errorf("make status remote: %w", err)
	}
	branch := ref.String()
	tracking := plumbing.ReferenceName("refs/remotes/origin/" + strings.TrimPrefix(branch, "refs/"))
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + ref + ":" + tracking)},
		Depth:    1,
		Tags:     git.NoTags,
		Auth:     auth,
	})
	var noMatch git.NoMatchingRefSpecError
	switch {
	case errors.As(err, &noMatch), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return repo, nil, nil
	case err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil, nil, gitsource.RedactError(url, fmt.Errorf("fetch %s from %s: %w", branch, gitsource.RedactURL(url), err))
	}
	fetched, err := repo.Reference(tracking, true)
	if err != nil {
		return nil, nil, fmt.Errorf("read fetched %s: %w", branch, err)
	}
	tip, err := repo.CommitObject(fetched.Hash())
	if err != nil {
		return nil, nil, fmt.Errorf("read %s tip: %w", branch, err)
	}
	return repo, tip, nil
}

func putBlob(s storer.EncodedObjectStorer, b []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store status blob: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store status blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store status blob: %w", err)
	}
	return s.SetEncodedObject(obj)
}

// putTree stores a copy of base (nil for empty) with e added or replaced,
// and returns its hash.
func putTree(s storer.EncodedObjectStorer, base *object.Tree, e object.TreeEntry) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if base != nil {
		for _, old := range base.Entries {
			if old.Name != e.Name {
				entries = append(entries, old)
			}
		}
	}
	entries = append(entries, e)
	// Git orders tree entries by name, a directory's name as if it ended
	// in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode status tree: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store status tree: %w", err)
	}
	return h, nil
}

// ReadFleetFS reads every node document of a status branch's tree, as
// [ReadFleet] does from the remote: sorted by node name, an unreadable
// document kept with Unreadable set and named in the error returned. A tree
// without a nodes directory gives no nodes and no error.
func ReadFleetFS(fsys fs.FS) ([]Node, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read status tree: %w", err)
	}
	var out []Node
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || path.Ext(e.Name()) != ".json" {
			continue
		}
		n, err := ReadNodeFS(fsys, strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			errs = append(errs, err)
			n = &Node{Node: strings.TrimSuffix(e.Name(), ".json"), Unreadable: err.Error()}
		}
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, errors.Join(errs...)
}

// ReadNodeFS reads the document nodes/<node>.json of a status branch's
// tree.
func ReadNodeFS(fsys fs.FS, node string) (*Node, error) {
	name := node + ".json"
	b, err := fs.ReadFile(fsys, path.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	n, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return n, nil
}

// publishBackOff is the wait between attempts, with full jitter: the n-th
// wait is drawn from [0, min(maxDelay, base·2^n)] (cenkalti/backoff's
// ExponentialBackOff centred on half of that bound).
func publishBackOff(base, maxDelay time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: base / 2, RandomizationFactor: 1, Multiplier: 2, MaxInterval: maxDelay / 2}
}
