package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// applyFlags are the flags of fsgit apply.
type applyFlags struct {
	once        bool
	site        string
	node        string
	noop        bool
	root        string
	statePath   string
	summaryPath string
	secretsDir  string
	ageIdentity string
	parallel    int
	timeout     time.Duration
	lockTimeout time.Duration
	output      string
	verbose     bool
	noPrune     bool
	noCache     bool
	limits      desired.Limits
}

func newApplyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply --once --site DIR --node NAME [--noop] [--root DIR]",
		Short: "Evaluate the site for a node and converge the node once",
		Long: `apply evaluates the CUE site in DIR for one node, observes the node, applies what
differs in dependency order, restarts what the changes notify, and prints a report.

With --noop nothing is changed and nothing is written (not even the state): the
report says what would change and what would restart. With --root every managed path
is placed under DIR, so that a site can be applied in a sandbox; kinds that cannot
honour a root (packages, services, accounts) are reported as skipped.

The node's compiled catalog is cached next to the state file
(catalog-<node>.json), keyed by a hash of every file the site is evaluated from
and by the fsgit build: while neither changes, the next run reads it instead of
evaluating CUE. Noop reads the cache but never writes it; --no-cache neither
reads nor writes it. With -v the log says where the catalog came from.

Exit codes (Puppet's detailed codes): 0 nothing changed, 2 changes (or, in noop,
changes found), 4 failures, 6 changes and failures, 1 the run could not start.`,
		Example: `  # what would change on this host, in a sandbox, changing nothing
  fsgit apply --once --site sites/prod --root /tmp/sandbox --noop
  # converge node online-1 now, with the report as JSON
  fsgit apply --once --node online-1 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApply(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.once, "once", false, "run once and exit (the daemon is fsgit agent)")
	siteFlag(cmd, &f.site, "the site's directory (sites/<name> of the repository)")
	nodeFlag(cmd, &f.node, "the node to converge (default: the host name)")
	fl.BoolVar(&f.noop, "noop", false, "change nothing; report what would change and restart")
	fl.StringVar(&f.root, "root", "", "prefix every managed path with this directory (a sandbox)")
	fl.StringVar(&f.statePath, "state", "", "the state file (default "+state.DefaultPath+", under --root if set)")
	fl.StringVar(&f.summaryPath, "summary", "", "the last-run summary file (default "+state.DefaultSummaryPath+", under --root if set)")
	fl.StringVar(&f.secretsDir, "secrets-dir", secrets.DefaultDir, "directory of secret files (root only)")
	fl.StringVar(&f.ageIdentity, "age-identity", "", "the node's age identity, to decrypt <site>/secrets/<name>.age")
	fl.IntVar(&f.parallel, "parallel", reconciler.DefaultParallel, "how many independent resources to handle at once")
	fl.DurationVar(&f.timeout, "timeout", reconciler.DefaultTimeout, "time limit for one resource")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", state.DefaultTimeout, "how long to wait for the state file's lock")
	addOutputFlag(cmd, &f.output, outText)
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list unchanged resources and log each resource")
	fl.BoolVar(&f.noPrune, "no-prune", false, "do not remove resources that left the catalog")
	fl.BoolVar(&f.noCache, "no-cache", false, "evaluate the site even if the compiled catalog is cached, and do not cache it")
	addLimitFlags(cmd, &f.limits)
	return cmd
}

// couldNotRun wraps an error that kept the run from starting: exit code 1.
func couldNotRun(err error) error { return &exitError{code: 1, err: err} }

func runApply(ctx context.Context, stdout, stderr io.Writer, f applyFlags) error {
	if !f.once {
		return couldNotRun(errors.New("apply runs once and needs --once; the daemon is fsgit agent"))
	}
	site, err := resolveSite(f.site)
	if err != nil {
		return couldNotRun(err)
	}
	f.site = site
	if err := checkParallel(f.parallel); err != nil {
		return couldNotRun(err)
	}
	if f.node == "" {
		h, err := os.Hostname()
		if err != nil {
			return couldNotRun(fmt.Errorf("find the node's name: %w (pass --node)", err))
		}
		f.node = h
	}
	if ctx == nil {
		ctx = context.Background()
	}
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	root, err := sandboxRoot(f.root, f.noop)
	if err != nil {
		return couldNotRun(err)
	}
	// fsgit's own files go through the same confinement as every managed
	// path: under --root, the defaults are in the root's filesystem, which
	// no symlink leads out of.
	rootFS := rootfs.New(root)
	defer rootFS.Close()
	statePath := underRoot(rootFS, f.statePath, state.DefaultPath)
	summaryPath := underRoot(rootFS, f.summaryPath, state.DefaultSummaryPath)

	cache := catalogCache{file: ownFile{statePath.fsys, catalogCachePath(filepath.Dir(statePath.name), f.node)}, node: f.node}
	cat, fresh, err := nodeCatalog(ctx, log, f, &cache)
	if err != nil {
		return couldNotRun(err)
	}

	resolver, err := secretResolver(f)
	if err != nil {
		return couldNotRun(err)
	}
	reg := newRegistry()
	defer reg.Close() // its kinds' clients: Docker Engine API, MariaDB pools
	eng := reconciler.NewEngine(reconciler.Config{
		Registry: reg,
		Log:      log,
		Parallel: f.parallel,
		Timeout:  f.timeout,
	})
	prepared, err := eng.Prepare(cat)
	if err != nil {
		return couldNotRun(err)
	}

	// Noop writes nothing: the state is opened read-only (a node that has
	// none yet starts from an empty memory) and never recorded.
	// A corrupt state file is moved aside and replaced (logged here); a
	// noop run leaves it in place and starts from the inventory copy.
	st, err := state.Open(statePath.name, state.Options{ReadOnly: f.noop, Timeout: f.lockTimeout, FS: statePath.fsys, OnRecover: func(r state.Recovery) {
		log.Error("state file corrupt: moved aside; carrying on from observation", "detail", r.String())
	}})
	var prior *reconciler.Memory
	switch {
	case err == nil:
		defer st.Close()
		if prior, err = st.Memory(); err != nil {
			return couldNotRun(err)
		}
	case f.noop && state.IsNotExist(err):
		st = nil
	case f.noop && state.IsCorrupt(err):
		log.Error("state file corrupt: this noop run starts from the inventory copy; the next apply moves the file aside", "err", err)
		c, _ := state.ReadInventory(statePath.String())
		st, prior = nil, c.Memory()
	case errors.Is(err, state.ErrLocked):
		return couldNotRun(fmt.Errorf("%w\nthe agent runs on this node: fsgit run asks it to converge now", err))
	default:
		return couldNotRun(err)
	}
	// The cache is written once the state is open: its directory exists
	// and the state's lock keeps another apply of this node from writing
	// at the same time. Noop writes nothing.
	if fresh != "" && !f.noop && !f.noCache {
		if err := cache.write(fresh, cat); err != nil {
			log.Warn("the compiled catalog is not cached", "err", err)
		}
	}

	// The first SIGINT or SIGTERM lets the resources in hand finish; the
	// second cancels them.
	stop := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "fsgit: stopping after the resources in hand (signal again to cancel them)")
			close(stop)
		case <-ctx.Done():
			return
		}
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	progress := newProgress(stderr)
	rep, err := eng.Run(ctx, prepared, reconciler.RunOptions{
		Noop:     f.noop,
		Root:     root,
		Secrets:  resolver,
		Progress: progress.update,
		Prior:    prior,
		NoPrune:  f.noPrune,
		Stop:     stop,
	})
	progress.done()
	if err != nil {
		return couldNotRun(err)
	}

	var recordErr error
	if !f.noop {
		if _, err := st.Record(rep); err != nil {
			recordErr = err
		}
		if err := writeSummary(summaryPath, rep); err != nil {
			recordErr = errors.Join(recordErr, err)
		}
	}

	if structured(f.output) {
		if err := writeDoc(stdout, f.output, rep); err != nil {
			return couldNotRun(fmt.Errorf("write report: %w", err))
		}
	} else if err := rep.WriteText(stdout, reconciler.TextOptions{Verbose: f.verbose, Times: true}); err != nil {
		return couldNotRun(fmt.Errorf("write report: %w", err))
	}

	code := rep.ExitCode()
	if recordErr != nil {
		// The node changed but its memory did not: say so, and count it as
		// a failure.
		return &exitError{code: code | 4, err: fmt.Errorf("the run is not recorded: %w", recordErr)}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// sandboxRoot returns the absolute --root ("" for none), creating it unless
// in noop, where a missing root is left missing. A root that is not a
// directory is refused before anything runs.
func sandboxRoot(root string, noop bool) (string, error) {
	if root == "" {
		return "", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve --root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist) && noop:
		// Nothing under it exists yet: every path is observed as absent.
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", fmt.Errorf("create --root: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("use --root: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("--root %s is a %s, not a directory", root, fileType(fi))
	}
	return abs, nil
}

// fileType names what fi is, for a message.
func fileType(fi os.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "regular file"
	case m&os.ModeDevice != 0:
		return "device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "non-directory"
}

// ownFile is one of fsgit's own files (the state, the run summary, the
// catalog cache): a name in the filesystem it is written through.
type ownFile struct {
	fsys *rootfs.FS
	name string
}

// String returns the file's host path.
func (o ownFile) String() string { return o.fsys.HostPath(o.name) }

// underRoot returns where one of fsgit's own files goes: the flag's value,
// a host path, if set; else def in the root's filesystem (the host's
// without --root), confined to it like every managed path.
func underRoot(root *rootfs.FS, flag, def string) ownFile {
	if flag != "" {
		return ownFile{rootfs.New(""), flag}
	}
	return ownFile{root, def}
}

// secretResolver builds the node's secret providers: age files in the site
// first when an identity is given, then the secrets directory.
func secretResolver(f applyFlags) (reconciler.SecretResolver, error) {
	files := secrets.NewFiles(f.secretsDir)
	if f.ageIdentity == "" {
		return secrets.Chain{files}, nil
	}
	ids, err := secrets.LoadIdentities(f.ageIdentity)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(f.site, "secrets")
	return secrets.Chain{secrets.NewAge(os.DirFS(dir), dir, ids...), files}, nil
}

// runSummary is the last-run summary file, after Puppet's
// last_run_summary.yaml: what ran, when, how long, and counts per outcome.
type runSummary struct {
	Version struct {
		Fsgit  string `json:"fsgit"`
		Config string `json:"config"`
	} `json:"version"`
	Site string `json:"site,omitempty"`
	Node string `json:"node"`
	Role string `json:"role,omitempty"`
	// Time says when the run started and finished (RFC 3339) and how long
	// it took (seconds).
	Time struct {
		Started  time.Time       `json:"started,omitzero"`
		Finished time.Time       `json:"finished,omitzero"`
		Duration jsondoc.Seconds `json:"duration,omitzero"`
	} `json:"time"`
	Resources reconciler.Summary `json:"resources"`
	Noop      bool               `json:"noop"`
	Stopped   string             `json:"stopped,omitempty"`
	ExitCode  int                `json:"exitCode"`
}

// writeSummary writes the last-run summary atomically: a temporary file in
// the same directory, synced, renamed over the old one, and the directory
// synced.
func writeSummary(path ownFile, rep *reconciler.Report) error {
	var s runSummary
	s.Version.Fsgit = fsgitVersion()
	s.Version.Config = rep.Revision
	s.Site, s.Node, s.Role = rep.Site, rep.Node, rep.Role
	s.Time.Started = rep.Started.UTC()
	s.Time.Finished = rep.Started.Add(rep.Duration.D()).UTC()
	s.Time.Duration = rep.Duration
	s.Resources = rep.Summary()
	s.Noop, s.Stopped, s.ExitCode = rep.Noop, rep.Stopped, rep.ExitCode()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run summary: %w", err)
	}
	if err := path.fsys.MkdirAll(filepath.Dir(path.name), 0o755); err != nil {
		return fmt.Errorf("write run summary: %w", err)
	}
	if err := atomicfile.WriteFile(path.fsys, path.name, append(b, '\n'), atomicfile.Options{UID: -1, GID: -1, Mode: 0o644}); err != nil {
		return fmt.Errorf("write run summary %s: %w", path, err)
	}
	return nil
}

// fsgitVersion returns the module version the binary was built from.
func fsgitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// progress shows the progress of long steps (downloads, package installs,
// image pulls, migrations) on a terminal, one line rewritten in place;
// elsewhere it shows nothing, so that pipes stay clean (the log has the
// steps every few seconds).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// update is a reconciler.RunOptions Progress function.
func (p *progress) update(u reconciler.ProgressUpdate) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	finished := u.Finished
	if !finished && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s", progressLine(u))
	p.shown = !finished
	if finished {
		fmt.Fprintln(p.w)
	}
}

// done clears a progress line left unfinished.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// progressLine is one update as a terminal shows it: "pkg:mariadb-server:
// apt-get install: 42% Unpacking mariadb-server".
func progressLine(u reconciler.ProgressUpdate) string {
	line := fmt.Sprintf("%s: %s", u.ID, u.Step)
	switch {
	case u.Unit == reconciler.UnitBytes:
		line += ": " + byteSize(u.Done)
		if u.Total > 0 {
			line += fmt.Sprintf(" / %s (%d%%)", byteSize(u.Total), u.Done*100/u.Total)
		}
	case u.Unit == reconciler.UnitPercent:
		line += fmt.Sprintf(": %d%%", u.Done)
	case u.Total > 0:
		line += fmt.Sprintf(": %d/%d", u.Done, u.Total)
	}
	if u.Message != "" {
		line += " " + u.Message
	}
	if u.Finished {
		line += fmt.Sprintf(" (%.1fs)", u.Elapsed.Seconds())
	}
	return line
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// nodeCatalog returns the node's catalog: read from the cache when the
// cache holds it for the site's current content and this fsgit build,
// evaluated from the CUE site otherwise. fresh is the site's content key
// when the catalog was evaluated (what to cache it under), "" when it came
// from the cache.
func nodeCatalog(ctx context.Context, log *slog.Logger, f applyFlags, cache *catalogCache) (cat *reconciler.Catalog, fresh string, err error) {
	start := time.Now()
	if f.noCache {
		log.Info("catalog cache not used", "node", f.node, "reason", "--no-cache")
	} else if key, err := desired.KeyDir(f.site); err != nil {
		// LoadDir fails alike and says it better.
		log.Info("catalog cache not used", "node", f.node, "reason", err)
	} else if cat, why := cache.read(key); cat != nil {
		log.Info("catalog from cache", "node", f.node, "file", cache.file.String(), "key", key,
			"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
		return cat, "", nil
	} else {
		log.Info("catalog cache not used", "node", f.node, "file", cache.file.String(), "reason", why)
	}

	site, err := desired.LoadDirLimits(ctx, f.site, f.limits)
	if err != nil {
		return nil, "", fmt.Errorf("load site %s:\n%w", f.site, err)
	}
	cat, err = site.Catalog(f.node)
	if err != nil {
		return nil, "", fmt.Errorf("build the catalog of node %s:\n%w", f.node, err)
	}
	if cat.Revision == "" {
		cat.Revision = site.Revision()
	}
	log.Info("catalog evaluated", "node", f.node, "key", site.Key(),
		"resources", len(cat.Resources), "took", time.Since(start).Round(time.Microsecond))
	return cat, site.Key(), nil
}

// catalogCacheFormat is the layout of the cache file; a file of another
// layout is not read.
const catalogCacheFormat = 1

// catalogCache is one node's compiled catalog, cached in a file of the
// state directory. The catalog holds secret references, never values.
type catalogCache struct {
	file ownFile
	node string
}

// catalogCacheFile is the cache file's content.
type catalogCacheFile struct {
	Format int `json:"format"`
	// Key is the site's content key (desired.Key) the catalog was
	// compiled from.
	Key string `json:"key"`
	// Build identifies the fsgit build that compiled it: another build may
	// compile the same site differently.
	Build   string              `json:"build"`
	Node    string              `json:"node"`
	Catalog *reconciler.Catalog `json:"catalog"`
}

// catalogCachePath is the cache file of a node in the state directory. A
// node name that is not a plain file name is hashed.
func catalogCachePath(stateDir, node string) string {
	name := node
	if !plainFileName(node) {
		sum := sha256.Sum256([]byte(node))
		name = hex.EncodeToString(sum[:12])
	}
	return filepath.Join(stateDir, "catalog-"+name+".json")
}

func plainFileName(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// read returns the cached catalog if the file holds one for key, this
// node and this build; otherwise nil and why not. A file that anyone but
// its owner (this user) could have written is not trusted.
func (c *catalogCache) read(key string) (*reconciler.Catalog, string) {
	fh, err := c.file.fsys.Open(c.file.name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "no cache file"
	}
	if err != nil {
		return nil, err.Error()
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err.Error()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 ||
		(ok && int(st.Uid) != os.Geteuid()) {
		return nil, fmt.Sprintf("not trusted (mode %s, not a private file of this user)", fi.Mode())
	}
	var cf catalogCacheFile
	if err := json.NewDecoder(fh).Decode(&cf); err != nil {
		return nil, fmt.Sprintf("unreadable: %v", err)
	}
	switch build, ok := buildIdentity(); {
	case cf.Format != catalogCacheFormat:
		return nil, fmt.Sprintf("format %d, want %d", cf.Format, catalogCacheFormat)
	case !ok:
		return nil, "this fsgit build cannot be identified"
	case cf.Build != build:
		return nil, "compiled by another fsgit build"
	case cf.Key != key:
		return nil, "the site changed"
	case cf.Node != c.node || cf.Catalog == nil || cf.Catalog.Node != c.node:
		return nil, "not this node's catalog"
	}
	return cf.Catalog, ""
}

// write caches the catalog under key, atomically, readable by the owner
// only. It does nothing when the build cannot be identified.
func (c *catalogCache) write(key string, cat *reconciler.Catalog) error {
	build, ok := buildIdentity()
	if !ok {
		return errors.New("this fsgit build cannot be identified")
	}
	var buf bytes.Buffer
	// Compact and without HTML escapes: the specs' raw JSON is kept byte
	// for byte, as the evaluation produced it.
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(catalogCacheFile{Format: catalogCacheFormat, Key: key, Build: build, Node: c.node, Catalog: cat}); err != nil {
		return fmt.Errorf("encode the catalog: %w", err)
	}
	if err := atomicfile.WriteFile(c.file.fsys, c.file.name, buf.Bytes(), atomicfile.Options{UID: -1, GID: -1, Mode: 0o600}); err != nil {
		return fmt.Errorf("write %s: %w", c.file, err)
	}
	return nil
}

// buildIdentity identifies the running fsgit build: the module's version
// and VCS revision, and the Go build ID of the executable, which changes
// with any change of the code (a dirty tree at the same revision too). ok
// is false when nothing reliable identifies it.
func buildIdentity() (id string, ok bool) {
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(&b, "%s@%s", bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(&b, " %s=%s", s.Key, s.Value)
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	if bid, err := goBuildID(exe); err == nil {
		fmt.Fprintf(&b, " buildid=%s", bid)
		return b.String(), true
	}
	// No build ID (not ELF): the executable file itself, by size and
	// modification time.
	fi, err := os.Stat(exe)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(&b, " exe=%s size=%d mtime=%d", exe, fi.Size(), fi.ModTime().UnixNano())
	return b.String(), true
}

// goBuildID reads the Go build ID from an ELF executable's
// .note.go.buildid section (the note the go command's own buildid reads).
func goBuildID(exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return "", errors.New("no .note.go.buildid section")
	}
	note, err := sec.Data()
	if err != nil {
		return "", err
	}
	// An ELF note: namesz, descsz, type (4 bytes each), the name "Go\x00"
	// padded to 4 bytes, then the build ID.
	if len(note) < 16 {
		return "", errors.New("short .note.go.buildid")
	}
	bo := f.ByteOrder
	namesz, descsz := bo.Uint32(note[0:]), bo.Uint32(note[4:])
	off := 12 + (uint64(namesz)+3)&^3
	if namesz != 4 || string(note[12:15]) != "Go\x00" || off+uint64(descsz) > uint64(len(note)) || descsz == 0 {
		return "", errors.New("malformed .note.go.buildid")
	}
	return string(note[off : off+uint64(descsz)]), nil
}
