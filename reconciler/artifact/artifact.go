// Package artifact implements the "artifact" kind: a file downloaded over
// HTTP(S) (or copied from a file:// URL), verified against a mandatory
// sha256 before it reaches its final path.
//
// Downloads land in a content-addressed cache, <cache>/sha256/<hex>, and
// the managed path is a verified copy of a cache entry. Switching back to a
// version used before, or restoring a file changed on disk, needs no
// download and works offline; a URL that changes while the sha256 stays the
// same downloads nothing. A download is capped in size, retried with
// jittered exponential backoff on transient failures (connection errors,
// 5xx, truncated bodies, stalls), and never written to its final path before
// its digest matches.
//
// Observing a large artifact does not re-hash it every run: the cache keeps
// a small verification record per managed path (device, inode, size, mtime,
// ctime and the digest found) under <cache>/verified/, and a file whose stat
// still matches its record is known without reading it.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
)

// DefaultCacheDir is where the cache lives, under the run's root, when
// Options.CacheDir is empty: under /var/cache, per the FHS (what is there
// can be downloaded again); fsgit.service's CacheDirectory= makes it.
const DefaultCacheDir = "/var/cache/fsgit/artifacts"

// LegacyCacheDir is where fsgit kept the default cache before
// DefaultCacheDir. A node that has it and not the new one goes on using
// it, so that no artifact is downloaded again; deleting it moves the cache.
const LegacyCacheDir = "/var/lib/fsgit/artifacts"

// Options configures the artifact kind.
type Options struct {
	// CacheDir holds the content-addressed cache (CacheDir/sha256/<hex>)
	// and the verification records (CacheDir/verified/). Empty means
	// DefaultCacheDir under the run's root.
	CacheDir string
	// Client downloads; nil means a client with connect and header
	// timeouts and the environment's proxy settings.
	Client *http.Client
	// MaxRetries is how many times a failed download is retried: 0 means
	// 3, negative means never.
	MaxRetries int
	// RetryDelay is the first backoff; it doubles per retry up to
	// MaxRetryDelay, with jitter. Zero means 1s and 30s.
	RetryDelay, MaxRetryDelay time.Duration
	// StallTimeout aborts (and retries) a download that receives nothing
	// for this long. Zero means 60s.
	StallTimeout time.Duration
}

// Artifact is the "artifact" kind.
type Artifact struct {
	opts   Options
	client *http.Client
}

var (
	_ reconciler.KindOf[spec]        = (*Artifact)(nil)
	_ reconciler.SpecPruner[spec]    = (*Artifact)(nil)
	_ reconciler.SpecTimeouter[spec] = (*Artifact)(nil)
	_ reconciler.Retainer            = (*Artifact)(nil)
)

// New returns the artifact kind with the given options.
func New(o Options) *reconciler.Typed[spec] { return reconciler.NewTyped(newArtifact(o)) }

func newArtifact(o Options) *Artifact {
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = 30 * time.Second
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = 60 * time.Second
	}
	c := o.Client
	if c == nil {
		c = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	return &Artifact{opts: o, client: c}
}

// spec is the spec of an artifact resource; see docs/kinds.md.
type spec struct {
	Path   string `json:"path"`
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	// MaxSize caps the download, in bytes.
	MaxSize int64             `json:"maxSize,omitempty"`
	Owner   string            `json:"owner"`
	Group   string            `json:"group"`
	Mode    string            `json:"mode"`
	Ensure  reconciler.Ensure `json:"ensure"`
}

// Kind returns "artifact".
func (*Artifact) Kind() string { return "artifact" }

// Check takes the path from the ID when the spec has none, keeps the
// path the ID's and inside the root (as every write does), and refuses a
// file URL without an absolute path, which the schema's #URL lets
// through (file://relative). The digest, the URL's scheme, maxSize and
// mode are the schema's (#Artifact).
func (*Artifact) Check(r *reconciler.Resource, s *spec) error {
	if s.Path == "" {
		s.Path = r.Name()
	}
	if s.Path != r.Name() {
		return fmt.Errorf("validate %s: path %q differs from the ID's name", r.ID, s.Path)
	}
	if _, err := (&reconciler.Env{}).Path(s.Path); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return fmt.Errorf("validate %s: url: %w", r.ID, err)
	}
	if u.Scheme == "file" && !filepath.IsAbs(u.Path) {
		return fmt.Errorf("validate %s: file url %q has no absolute path", r.ID, s.URL)
	}
	return nil
}

// Timeout gives an artifact time for its download: ten minutes plus a
// second per MiB of its size cap.
func (*Artifact) Timeout(s *spec) time.Duration {
	return 10*time.Minute + time.Duration(s.MaxSize>>20)*time.Second
}

// cache is a run's artifact cache: a directory of a filesystem that keeps
// every access inside it (the run's, under its root, for the default
// cache; one rooted at Options.CacheDir otherwise).
type cache struct {
	fsys *rootfs.FS
	dir  string // the cache directory's name in fsys
}

// entry is the name of a digest's cache entry.
func (c cache) entry(sum string) string { return entryPath(c.dir, sum) }

// id names the cache for keys and messages: its host path.
func (c cache) id() string { return c.fsys.HostPath(c.dir) }

// cacheOf returns the cache for a run.
func (k *Artifact) cacheOf(env *reconciler.Env) (cache, error) {
	if dir := k.opts.CacheDir; dir != "" {
		open := func() (any, error) { return rootfs.New(dir), nil }
		if env.Cache == nil {
			v, _ := open()
			return cache{fsys: v.(*rootfs.FS), dir: "/"}, nil
		}
		v, _ := env.Cache.Once("artifact.cachefs\x00"+dir, open)
		return cache{fsys: v.(*rootfs.FS), dir: "/"}, nil
	}
	fsys := env.FS()
	dir := DefaultCacheDir
	if _, err := fsys.Stat(DefaultCacheDir); err != nil {
		if fi, err := fsys.Stat(LegacyCacheDir); err == nil && fi.IsDir() {
			dir = LegacyCacheDir
		}
	}
	// Every access to the cache stays in the root anyway; this says so at
	// plan time when the cache directory leads out of it.
	if err := fsys.Resolves(dir); err != nil {
		return cache{}, err
	}
	return cache{fsys: fsys, dir: dir}, nil
}

// entryPath is the cache entry of a digest in the cache directory dir.
func entryPath(dir, sum string) string { return filepath.Join(dir, "sha256", sum) }

// Plan observes the artifact and returns the changes that converge it.
func (k *Artifact) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, s, s.Ensure.Absent())
}

// Retain keeps an artifact (a jar) that left the catalog while the node's
// recent catalogs reference it, so that a rollback finds it in place.
func (*Artifact) Retain(*reconciler.Resource) bool { return true }

// PlanDelete returns the plan that removes an artifact that left the
// catalog: safe when the file is the verified artifact (it can be had
// again), destructive when it holds something else.
func (k *Artifact) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, s, true)
}

func (k *Artifact) plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec, absent bool) (*reconciler.Plan, error) {
	// Every look and write goes through the run's filesystem, which keeps
	// it inside the root.
	fsys, path := env.FS(), s.Path
	c, err := k.cacheOf(env)
	if err != nil {
		return nil, fmt.Errorf("plan %s: cache directory: %w", r.ID, err)
	}
	fi, err := fsys.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		fi = nil
	} else if err != nil {
		return nil, fmt.Errorf("plan %s: stat: %w", r.ID, err)
	}
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": kindOf(fi)}}
	have := ""
	if fi != nil && fi.Mode().IsRegular() {
		if have, err = k.verify(env, r.ID, c, path, fi); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		plan.Observed["sha256"] = have
	}

	if absent {
		if fi == nil {
			return plan, nil
		}
		class := reconciler.Destructive
		if have == s.SHA256 || fi.Mode()&fs.ModeSymlink != 0 {
			class = reconciler.Safe
		}
		plan.Action = reconciler.ActionDelete
		plan.Changes = []reconciler.Change{{Field: "ensure", Before: kindOf(fi), After: "absent", Class: class}}
		plan.Apply = func(ctx context.Context) error {
			if err := file.RemoveAny(fsys, path, fi); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
			return nil
		}
		return plan, nil
	}

	perms, err := file.ResolvePerms(env, s.Owner, s.Group, s.Mode)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	plan.Warning = perms.Warning()
	regular := fi != nil && fi.Mode().IsRegular()
	if regular {
		if err := perms.Observe(env, fi, plan.Observed); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
	}
	if regular && have == s.SHA256 {
		if plan.Changes, err = perms.Diff(env, fi); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		if len(plan.Changes) == 0 {
			return plan, nil
		}
		plan.Action = reconciler.ActionUpdate
		plan.Apply = func(ctx context.Context) error {
			if err := perms.Fix(fsys, path, fi); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
			k.remember(env, c, path, s.SHA256)
			return nil
		}
		return plan, nil
	}

	// The content must change: from the cache, or downloaded into it.
	plan.Action = reconciler.ActionCreate
	if fi != nil {
		plan.Action = reconciler.ActionUpdate
	}
	source := "(download " + redactURL(s.URL) + ")"
	if _, err := c.fsys.Stat(c.entry(s.SHA256)); err == nil {
		source = "(from cache)"
	}
	ch := reconciler.Change{Field: "content", After: "sha256:" + s.SHA256[:12] + " " + source}
	if have != "" {
		ch.Before = "sha256:" + have[:12]
	}
	if fi != nil && !regular {
		ch.Before = kindOf(fi)
		if fi.IsDir() {
			// A directory in the way may hold anything.
			ch.Class = reconciler.Destructive
		}
	}
	plan.Changes = []reconciler.Change{ch}
	base := fi
	if !regular {
		base = nil
	}
	plan.Apply = func(ctx context.Context) error {
		if err := k.install(ctx, env, r.ID, s, c, path, fi, perms.Merge(base)); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}

// install puts the artifact at path: the cache entry (downloaded first
// when missing) copied and verified on the way.
func (k *Artifact) install(ctx context.Context, env *reconciler.Env, id reconciler.ID, s *spec, c cache, path string, fi fs.FileInfo, perms file.Perms) error {
	fsys := env.FS()
	if fi != nil && fi.IsDir() {
		if err := file.RemoveAny(fsys, path, fi); err != nil {
			return err
		}
	}
	if err := file.MkdirParents(fsys, path); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if err := k.fetch(ctx, env, id, s, c); err != nil {
			return err
		}
		err := place(c, s.SHA256, fsys, path, perms)
		var ce *ChecksumError
		if errors.As(err, &ce) && attempt == 0 {
			// The cache entry rotted on disk: drop it and fetch it again.
			logger(env).Warn("artifact cache entry corrupt; fetching again", "id", id, "entry", c.fsys.HostPath(c.entry(s.SHA256)))
			if err := c.fsys.Remove(c.entry(s.SHA256)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove corrupt cache entry: %w", err)
			}
			if env.Cache != nil {
				env.Cache.Forget(fetchKey(c, s.SHA256))
			}
			continue
		}
		if err != nil {
			return err
		}
		k.remember(env, c, path, s.SHA256)
		return nil
	}
}

// kindOf names what fi is, for display.
func kindOf(fi fs.FileInfo) string {
	switch {
	case fi == nil:
		return "absent"
	case fi.Mode().IsRegular():
		return "file"
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

// redactURL drops a URL's user info and query, which may hold tokens.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// sha256Hex returns the hex sha256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// logger returns the run's logger, or one that discards when there is none.
func logger(env *reconciler.Env) *slog.Logger {
	if env.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Log
}
