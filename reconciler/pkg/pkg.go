// Package pkg implements the "package" resource kind: a Debian package that
// is installed (at any version or at a pinned one), removed, or purged,
// through dpkg and apt.
//
// Observation reads the whole dpkg database once per run (one dpkg-query
// for every package resource of the run, shared through the run's cache).
// Changes go through apt-get with DEBIAN_FRONTEND=noninteractive, one apt
// command at a time (dpkg has one lock).
//
// A package cannot be installed into a --root: under a root every package
// resource is skipped, never faked.
//
// A package resource that leaves the catalog is left installed: the kind
// does not implement [reconciler.Pruner]. Removing software because a line
// disappeared from a catalog is rarely what was meant; say ensure "absent".
package pkg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// KindName is the kind's name in resource IDs: "package:tree".
const KindName = "package"

const (
	ensureInstalled = "installed"
	ensureAbsent    = "absent"
	ensurePurged    = "purged"
)

// cacheKey names the run's snapshot of the dpkg database in env.Cache.
const cacheKey = "package/dpkg-query"

// dpkgFormat is the dpkg-query output format: one package per line.
const dpkgFormat = "${Package}\t${Architecture}\t${Status}\t${Version}\n"

// versionRE matches a Debian version, [epoch:]upstream[-revision]: an
// ensure that pins one.
var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`) })

// Spec is the package resource's spec, as written in CUE.
type Spec struct {
	// Name is the package name; empty means the resource's name.
	Name string `json:"name,omitempty"`
	// Ensure is "installed", "absent" (apt-get remove: configuration files
	// stay), "purged" (apt-get purge) or a version to pin ("1:10.11.6-0+deb12u1").
	Ensure string `json:"ensure,omitempty"`
}

// Kind is the package kind. Its zero value is not usable; call New.
type Kind struct {
	dpkgQuery string
	aptGet    string
	// mu serializes apt-get: dpkg has one lock for the whole host.
	mu sync.Mutex
}

var (
	_ reconciler.KindOf[Spec]        = (*Kind)(nil)
	_ reconciler.SpecTimeouter[Spec] = (*Kind)(nil)
)

// aptTimeout bounds one package's handling: apt may download and configure
// a large package (a database server) or wait for dpkg's lock.
const aptTimeout = 20 * time.Minute

// Timeout returns aptTimeout: installing a package can take minutes.
func (k *Kind) Timeout(*Spec) time.Duration { return aptTimeout }

// New returns the package kind, using dpkg-query and apt-get from PATH.
func New() *reconciler.Typed[Spec] {
	return reconciler.NewTyped(&Kind{dpkgQuery: "dpkg-query", aptGet: "apt-get"})
}

// Kind returns "package".
func (k *Kind) Kind() string { return KindName }

// Check takes the package name from the ID when the spec has none. The
// name and ensure are the schema's (#PackageName, #Package).
func (k *Kind) Check(r *reconciler.Resource, s *Spec) error {
	if s.Name == "" {
		s.Name = r.Name()
	}
	return nil
}

// entry is one package as dpkg knows it.
type entry struct {
	// status is the third word of dpkg's status: installed, config-files,
	// not-installed, half-installed, unpacked, ...
	status  string
	version string
}

// present reports whether the package's files are on the system (fully or
// partly installed), as opposed to gone or only its configuration left.
func (e entry) present() bool {
	return e.status != "" && e.status != "not-installed" && e.status != "config-files"
}

// db is one snapshot of the dpkg database, keyed by name and by name:arch.
type db map[string]entry

// parseDpkg parses dpkgFormat output. A name present for more than one
// architecture is indexed under name by its installed instance.
func parseDpkg(out []byte) (db, error) {
	d := db{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("parse dpkg-query line %q: want 4 fields, got %d", line, len(f))
		}
		words := strings.Fields(f[2])
		if len(words) != 3 {
			return nil, fmt.Errorf("parse dpkg-query status %q of %s", f[2], f[0])
		}
		e := entry{status: words[2], version: f[3]}
		if !e.present() {
			e.version = ""
		}
		d[f[0]+":"+f[1]] = e
		if old, ok := d[f[0]]; !ok || !old.present() {
			d[f[0]] = e
		}
	}
	return d, nil
}

// observe returns the run's snapshot of the dpkg database.
func (k *Kind) observe(ctx context.Context, env *reconciler.Env) (db, error) {
	v, err := env.Cache.Once(cacheKey, func() (any, error) {
		cmd := exec.CommandContext(ctx, k.dpkgQuery, "-W", "-f="+dpkgFormat)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("list packages with dpkg-query: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return parseDpkg(out)
	})
	if err != nil {
		return nil, err
	}
	return v.(db), nil
}

// sameVersion compares two Debian versions as strings, ignoring an explicit
// zero epoch ("0:1.2" is "1.2").
func sameVersion(a, b string) bool {
	return strings.TrimPrefix(a, "0:") == strings.TrimPrefix(b, "0:")
}

// Plan compares the package with the run's dpkg snapshot.
func (k *Kind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *Spec) (*reconciler.Plan, error) {
	if env.Root != "" {
		return nil, reconciler.Skip(fmt.Sprintf("packages cannot be installed under --root %s: apt and dpkg act on the host", env.Root))
	}
	d, err := k.observe(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("observe %s: %w", r.ID, err)
	}
	e := d[s.Name]
	p := &reconciler.Plan{Observed: observed(e)}
	was := describe(e)

	var args []string
	switch s.Ensure {
	case ensureInstalled:
		if e.present() && e.status == "installed" {
			return p, nil
		}
		args = installArgs(s.Name)
		p.Changes = []reconciler.Change{{Field: "ensure", Before: was, After: ensureInstalled, Class: reconciler.Safe}}
	case ensureAbsent:
		if !e.present() {
			return p, nil
		}
		args = []string{"remove", "-y", s.Name}
		p.Changes = []reconciler.Change{{Field: "ensure", Before: was, After: ensureAbsent, Class: reconciler.Disruptive}}
	case ensurePurged:
		if e.status == "" || e.status == "not-installed" {
			return p, nil
		}
		args = []string{"purge", "-y", s.Name}
		p.Changes = []reconciler.Change{{Field: "ensure", Before: was, After: ensurePurged, Class: reconciler.Destructive}}
	default: // a pinned version
		if e.status == "installed" && sameVersion(e.version, s.Ensure) {
			return p, nil
		}
		args = append(installArgs(s.Name+"="+s.Ensure), "--allow-downgrades")
		c := reconciler.Change{Field: "version", Before: e.version, After: s.Ensure, Class: reconciler.Safe}
		if e.present() {
			// Replacing a running program's version interrupts it.
			c.Class = reconciler.Disruptive
		}
		p.Changes = []reconciler.Change{c}
	}

	switch {
	case !e.present() && (s.Ensure == ensureInstalled || versionRE().MatchString(s.Ensure)):
		p.Action = reconciler.ActionCreate
	case s.Ensure == ensureAbsent || s.Ensure == ensurePurged:
		p.Action = reconciler.ActionDelete
	default:
		p.Action = reconciler.ActionUpdate
	}
	p.Apply = func(ctx context.Context) error {
		defer env.Cache.Forget(cacheKey)
		progress := env.StartProgress(r.ID, "apt-get "+args[0]+" "+s.Name)
		defer progress.Finish()
		if err := k.apt(ctx, progress, args); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return p, nil
}

func installArgs(target string) []string {
	return []string{"install", "-y", "--no-install-recommends",
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
		target}
}

// describe renders a dpkg entry for a Change's Before.
func describe(e entry) string {
	switch {
	case e.status == "" || e.status == "not-installed":
		return "absent"
	case e.status == "installed":
		return "installed " + e.version
	default:
		return e.status
	}
}

func observed(e entry) map[string]string {
	m := map[string]string{"status": e.status}
	if e.status == "" {
		m["status"] = "not-installed"
	}
	if e.version != "" {
		m["version"] = e.version
	}
	return m
}

// maxOutput bounds how much of apt's output goes into an error.
const maxOutput = 2048

// apt runs apt-get with args, one at a time, and returns an error carrying
// the tail of its output when it fails. apt-get's machine-readable status
// (APT::Status-Fd: "dlstatus:" while it downloads, "pmstatus:" while dpkg
// unpacks and configures) goes to progress as it comes.
func (k *Kind) apt(ctx context.Context, progress *reconciler.Progress, args []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	status, statusW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("run apt-get %s: status pipe: %w", strings.Join(args, " "), err)
	}
	defer status.Close()
	full := append([]string{"-q", "-o", "DPkg::Lock::Timeout=120", "-o", "APT::Status-Fd=3"}, args...)
	cmd := exec.CommandContext(ctx, k.aptGet, full...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none")
	cmd.ExtraFiles = []*os.File{statusW}
	read := make(chan struct{})
	go func() {
		defer close(read)
		readAptStatus(status, progress)
	}()
	out, err := cmd.CombinedOutput()
	_ = statusW.Close()
	select {
	case <-read:
	case <-time.After(2 * time.Second):
		// A daemon a package script started holds the status pipe open:
		// stop reading it.
		_ = status.Close()
		<-read
	}
	if err != nil {
		return fmt.Errorf("run apt-get %s: %w: %s", strings.Join(args, " "), err, tail(out, maxOutput))
	}
	return nil
}

// readAptStatus reports apt-get's status lines ("pmstatus:mariadb-server:
// 42.8571:Unpacking mariadb-server (arm64)") until r ends.
func readAptStatus(r io.Reader, progress *reconciler.Progress) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (kind != "dlstatus" && kind != "pmstatus") {
			continue
		}
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 {
			continue
		}
		pct, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			continue
		}
		progress.Update(int64(pct), 100, reconciler.UnitPercent, parts[2])
	}
}

// tail returns the last n bytes of b, trimmed, marked when cut.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}

var _ reconciler.Previewer = (*Kind)(nil)

// Preview classes a catalog change without observing: removing a package
// interrupts what runs from it, purging also loses its configuration, and
// moving a pinned version replaces a running program. A package that leaves
// the catalog is not pruned, so that is safe.
func (k *Kind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Safe, "leave installed (packages are not pruned)"
	}
	s, err := reconciler.DecodeAs(k, new)
	if err != nil {
		return reconciler.Safe, ""
	}
	var was string
	if old != nil {
		if o, err := reconciler.DecodeAs(k, old); err == nil {
			was = o.Ensure
		}
	}
	switch {
	case s.Ensure == ensurePurged && was != ensurePurged:
		return reconciler.Destructive, "purge package"
	case s.Ensure == ensureAbsent && was != ensureAbsent:
		return reconciler.Disruptive, "remove package"
	case versionRE().MatchString(s.Ensure) && was != s.Ensure && was != "":
		return reconciler.Disruptive, "install version " + s.Ensure
	case old == nil || was != s.Ensure:
		return reconciler.Safe, "install package"
	}
	return reconciler.Safe, ""
}
