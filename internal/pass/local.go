package pass

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// Local is a pass from a site directory on the node itself (fsgit apply
// --once), its own files under an optional sandbox root.
type Local struct {
	// Site is the site's directory, Node the node to converge.
	Site, Node string
	// Noop changes nothing and writes nothing, not even the state.
	Noop bool
	// Root prefixes every managed path (a sandbox); "" for none.
	Root string
	// StatePath and SummaryPath are host paths of the state and the
	// last-run summary; empty: the defaults, under Root.
	StatePath, SummaryPath string
	// SecretsDir holds secret files; AgeIdentity, when set, decrypts
	// <site>/secrets/<name>.age.
	SecretsDir, AgeIdentity string
	// NoCache neither reads nor writes the compiled catalog cache.
	NoCache bool
	// Compiler computes the site's key and evaluates the site (see
	// [Compiler]).
	Compiler Compiler
	// LockTimeout bounds the wait for the state file's lock.
	LockTimeout time.Duration
	// Engine runs the catalog; Options are its run options (Root,
	// Secrets and Prior are filled in).
	Engine  *reconciler.Engine
	Options reconciler.RunOptions
	// Interrupt is Pass.Interrupt.
	Interrupt func()
	Log       *slog.Logger
}

// Run runs the pass. Noop opens the state read-only (a node that has none
// yet starts from an empty memory) and records nothing; otherwise the run
// is recorded in the state and the last-run summary, and the catalog is
// cached once the state is open (its directory exists, and its lock keeps
// another apply of this node from writing at the same time), beside the
// run: Run returns, and the state's lock is let go, once it is written.
func (l *Local) Run(ctx context.Context) *Result {
	root, err := SandboxRoot(l.Root, l.Noop)
	if err != nil {
		return &Result{Step: "root", Err: err}
	}
	// fsgit's own files go through the same confinement as every managed
	// path: under --root, the defaults are in the root's filesystem, which
	// no symlink leads out of.
	rootFS := rootfs.New(root)
	defer rootFS.Close()
	statePath := UnderRoot(rootFS, l.StatePath, state.DefaultPath)
	summaryPath := UnderRoot(rootFS, l.SummaryPath, state.DefaultSummaryPath)
	site := &SiteCatalog{Dir: l.Site, Node: l.Node, Compiler: l.Compiler, Log: l.Log}
	if !l.NoCache {
		site.Cache = &Cache{File: File{statePath.FS, CachePath(filepath.Dir(statePath.Name), l.Node)}, Node: l.Node, Build: l.Compiler.Build}
	}
	var st *state.Store
	var holds []state.Hold
	// kept is closed once the evaluated catalog is in the cache (or could
	// not be put there): the cache is written beside the run, under the
	// state's lock, which is held until it is.
	var kept chan struct{}
	defer func() {
		if kept != nil {
			<-kept
		}
		if st != nil {
			st.Close()
		}
	}()
	opts := l.Options
	opts.Noop, opts.Root = l.Noop, root
	p := Pass{
		Engine: l.Engine,
		Load:   site.Load,
		Secrets: func() (reconciler.SecretResolver, error) {
			return SiteSecrets(l.Site, l.SecretsDir, l.AgeIdentity)
		},
		State: func() (*reconciler.Memory, error) {
			var prior *reconciler.Memory
			st, prior, err = l.openState(statePath, site.StateReserve())
			if id := l.Compiler.memoryLacks(prior); err == nil && id != "" {
				return nil, &LackingKindError{ID: id}
			}
			if err == nil && !l.Noop {
				kept = make(chan struct{})
				go func() {
					defer close(kept)
					defer crash.Exit()
					site.Keep()
				}()
			}
			if err == nil && st != nil {
				// The holds placed with fsgit hold while no agent ran
				// (or before it stopped) bind this run as the agent's.
				if holds, err = st.Holds(); err != nil {
					return nil, fmt.Errorf("read the holds: %w", err)
				}
				// A rollback's pin too: applying the site would undo
				// it. A noop run only reports, so it goes on.
				pin, err := st.Pin()
				if err != nil {
					return nil, fmt.Errorf("read the pin: %w", err)
				}
				if pin != nil && !l.Noop {
					return nil, fmt.Errorf("the node is pinned to %s by %s since %s (%s): fsgit rollback --release ends the pin, then apply",
						pin.Revision, pin.By, pin.Since.UTC().Format(time.RFC3339), pin.Reason)
				}
			}
			return prior, err
		},
		Held: func(cat *reconciler.Catalog) (map[reconciler.ID]string, bool) {
			return state.HeldFor(holds, cat, time.Now())
		},
		Options:   opts,
		Interrupt: l.Interrupt,
		Record: func(rep *reconciler.Report) error {
			if l.Noop {
				return nil
			}
			_, err := st.Record(rep)
			return errors.Join(err, WriteSummary(summaryPath, rep))
		},
	}
	return p.Run(ctx)
}

// openState opens the state file, with reserve (state.Options.Reserve),
// and reads the node's memory. A corrupt state file is moved aside and
// replaced (logged); a noop run leaves it in place and starts from the
// inventory copy. The store is nil in noop
// when there is no file to read.
func (l *Local) openState(path File, reserve int64) (*state.Store, *reconciler.Memory, error) {
	st, err := state.Open(path.Name, state.Options{ReadOnly: l.Noop, Timeout: l.LockTimeout, FS: path.FS, Reserve: reserve, OnRecover: func(r state.Recovery) {
		l.Log.Error("state file corrupt: moved aside; carrying on from observation", "detail", r.String())
	}})
	switch {
	case err == nil:
		prior, err := st.Memory()
		return st, prior, err
	case l.Noop && state.IsNotExist(err):
		return nil, nil, nil
	case l.Noop && state.IsCorrupt(err):
		l.Log.Error("state file corrupt: this noop run starts from the inventory copy; the next apply moves the file aside", "err", err)
		c, _ := state.ReadInventory(path.String())
		return nil, c.Memory(), nil
	case errors.Is(err, state.ErrLocked):
		return nil, nil, fmt.Errorf("%w\nthe agent runs on this node: fsgit run asks it to converge now", err)
	}
	return nil, nil, err
}
