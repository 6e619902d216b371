package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/reconciler"
)

// pollEvent is what the source loop hands the apply loop. Events that
// pile up while a run is in flight are merged (see merge).
type pollEvent struct {
	// seq numbers the poll (from 1); 0 is the resumed commit at start.
	seq uint64
	at  time.Time
	tip string
	// tipWhen is tip's commit time, when it can be trusted (its signature
	// verified, or no keys are configured); zero otherwise.
	tipWhen time.Time
	// err is set when the poll failed (the remote is unreachable).
	err error
	// prepared is a newly accepted catalog; signer the key that signed
	// its commit. resumed marks the catalog of the last applied commit,
	// read from the cache at start.
	prepared *reconciler.Prepared
	secrets  reconciler.SecretResolver
	signer   string
	resumed  bool
	// refused lists the commits refused since the last event, oldest
	// first; the last refusedAfter of them came after prepared (the
	// others before it, and no longer matter once it is accepted).
	refused      []*RefusedError
	refusedAfter int
}

// merge folds an older pending event into e: refusals accumulate, and a
// catalog accepted earlier is kept unless e brings a newer one.
func (e *pollEvent) merge(old *pollEvent) {
	if old == nil {
		return
	}
	e.seq = max(e.seq, old.seq)
	if e.prepared == nil && old.prepared != nil {
		e.prepared, e.secrets, e.signer, e.resumed = old.prepared, old.secrets, old.signer, old.resumed
		e.refusedAfter = old.refusedAfter + len(e.refused)
	}
	e.refused = append(old.refused, e.refused...)
}

// refusedSinceAccepted returns the refusals that came after the catalog
// the event accepts, or all of them when it accepts none.
func (e *pollEvent) refusedSinceAccepted() []*RefusedError {
	if e.prepared == nil {
		return e.refused
	}
	return e.refused[len(e.refused)-e.refusedAfter:]
}

func (a *Agent) sendPoll(ev *pollEvent) {
	a.mu.Lock()
	ev.merge(a.pending)
	a.pending = ev
	a.mu.Unlock()
	select {
	case a.pollReady <- struct{}{}:
	default:
	}
}

func (a *Agent) takePoll() *pollEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.pending
	a.pending = nil
	return ev
}

// takeReset reports (once) that the configuration changed and the source
// loop must forget what it knows of the branch.
func (a *Agent) takeReset() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.resetPoll
	a.resetPoll = false
	return r
}

// sourceLoop polls the repository: immediately, then every interval plus
// jitter, or with capped exponential backoff while the remote fails. A new
// tip is verified, loaded and prepared here, so that the run in flight is
// cancelled only for a catalog that is ready to replace it.
func (a *Agent) sourceLoop(ctx context.Context, resume string) {
	var known knownTip
	if resume != "" {
		ev := &pollEvent{at: time.Now(), tip: resume, resumed: true}
		refused, err := a.loadCommit(ctx, resume, ev)
		switch {
		case ev.prepared != nil:
			known = knownTip{resume, ev.tipWhen}
			a.sendPoll(ev)
		case refused != nil:
			ev.refused = []*RefusedError{refused}
			known = knownTip{resume, ev.tipWhen}
			a.sendPoll(ev)
		default:
			// Not in the cache: the first poll fetches what there is.
			a.log.Debug("last applied commit not in the git cache", "commit", resume, "err", err)
		}
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-a.pollPoke:
		}
		if a.takeReset() {
			known = knownTip{}
		}
		cfg := a.config()
		a.mu.Lock()
		a.pollsStarted++
		seq := a.pollsStarted
		a.mu.Unlock()
		ev := a.pollOnce(ctx, cfg, &known)
		ev.seq = seq
		if ctx.Err() != nil {
			return
		}
		a.sendPoll(ev)
		if ev.err != nil {
			failures++
		} else {
			failures = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(nextPoll(cfg.Source, failures))
	}
}

// knownTip is the tip the source loop handled last, and its commit time
// when it can be trusted: every poll that finds it again reports it.
type knownTip struct {
	hash string
	when time.Time
}

// pollOnce polls, and loads a new tip. known is the tip last handled.
func (a *Agent) pollOnce(ctx context.Context, cfg *Config, known *knownTip) *pollEvent {
	pctx, cancel := context.WithTimeout(ctx, max(30*time.Second, cfg.Source.PollInterval.D()))
	defer cancel()
	tip, changed, err := a.source().Poll(pctx, known.hash)
	ev := &pollEvent{at: time.Now(), tip: tip, err: err}
	if err != nil {
		return ev
	}
	if !changed {
		ev.tipWhen = known.when
		return ev
	}
	refused, err := a.loadCommit(ctx, tip, ev)
	switch {
	case ev.prepared != nil:
		*known = knownTip{tip, ev.tipWhen}
		a.cancelRunUnless(tip)
	case refused != nil:
		ev.refused = []*RefusedError{refused}
		*known = knownTip{tip, ev.tipWhen}
	default:
		// Reading the cache failed: not the commit's fault. Try again on
		// the next poll.
		ev.err = err
	}
	return ev
}

// nextPoll is the wait before the next poll: the interval plus up to the
// jitter, doubled for each failure in a row up to maxBackoff (the doubling
// and its cap are cenkalti/backoff's ExponentialBackOff, without its own
// randomization: the configured jitter is added on top).
func nextPoll(s SourceConfig, failures int) time.Duration {
	d := s.PollInterval.D()
	if failures > 0 {
		b := &backoff.ExponentialBackOff{InitialInterval: 2 * d, Multiplier: 2, MaxInterval: s.MaxBackoff.D()}
		for range min(failures, 20) {
			d = b.NextBackOff()
		}
		d = min(d, s.MaxBackoff.D())
	}
	if j := s.Jitter.D(); j > 0 {
		d += rand.N(j)
	}
	return d
}

// loadCommit reads rev from the cache, checks its signature, builds and
// prepares its catalog and its secret resolver, and sets them in ev. A
// commit at fault is refused; err is for a failure that is not the
// commit's (the cache, a cancelled context).
func (a *Agent) loadCommit(ctx context.Context, rev string, ev *pollEvent) (refused *RefusedError, err error) {
	cfg := a.config()
	c, err := a.source().Commit(rev)
	var se *gitsource.SignatureError
	if errors.As(err, &se) {
		return &RefusedError{Commit: rev, Err: err}, nil
	}
	if err != nil {
		return nil, err
	}
	// Read, and its signature verified: its time can be trusted, whether
	// the commit is accepted or not.
	ev.tipWhen = c.When
	if err := a.checkNotOlder(cfg, c); err != nil {
		return &RefusedError{Commit: rev, Err: err}, nil
	}
	cat, err := a.opts.Load(ctx, c.FS, cfg.Source.Site, rev, cfg.Node)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return &RefusedError{Commit: rev, Err: fmt.Errorf("load site %s: %w", cfg.Source.Site, err)}, nil
	}
	if cat.Revision == "" {
		cat.Revision = rev
	}
	p, err := a.engine.Prepare(cat)
	if err != nil {
		return &RefusedError{Commit: rev, Err: err}, nil
	}
	var resolver reconciler.SecretResolver
	if a.opts.Secrets != nil {
		// The tree is read from the cache, which a later fetch may
		// compact: the secrets the catalog needs are kept in memory.
		snap, err := snapshotDir(c.FS, path.Join(cfg.Source.Site, "secrets"))
		if err != nil {
			return nil, err
		}
		if resolver, err = a.opts.Secrets(cfg.Secrets, snap); err != nil {
			return &RefusedError{Commit: rev, Err: fmt.Errorf("make secret provider: %w", err)}, nil
		}
	}
	ev.prepared, ev.secrets, ev.signer = p, resolver, c.Signer
	a.acceptedWhen = c.When
	return nil, nil
}

// checkNotOlder refuses, where commits must be signed, a commit made
// before the one the node accepted last (or, after a restart, the one it
// applied): signatures let a node poll a mirror it does not trust, and a
// mirror could still serve an older signed commit and so roll the node
// back. Going back on purpose is `fsgit rollback`, or a new commit that
// reverts. Without trusted keys anyone who can push can do worse, and a
// branch moved back by force is followed.
func (a *Agent) checkNotOlder(cfg *Config, c *gitsource.Commit) error {
	if len(cfg.Source.TrustedKeys) == 0 {
		return nil
	}
	last := a.acceptedWhen
	if last.IsZero() {
		a.mu.Lock()
		applied := a.node.AppliedRevision
		a.mu.Unlock()
		if applied == "" || applied == c.Hash {
			return nil
		}
		prev, err := a.source().Commit(applied)
		if err != nil {
			// Not in the cache (compacted, or a new cache): nothing to
			// compare with.
			return nil
		}
		last = prev.When
	}
	if c.When.Before(last) {
		return fmt.Errorf("it was committed at %s, before the commit this node accepted last (committed at %s): "+
			"a mirror serving an older signed commit would roll the node back; to go back on purpose, "+
			"use fsgit rollback or push a new commit that reverts",
			c.When.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
	}
	return nil
}

// openSource opens the git source the configuration describes.
func openSource(cfg *Config, log *slog.Logger) (*gitsource.Source, error) {
	auth, err := cfg.Source.Credentials.gitCredentials().AuthMethod(cfg.Source.URL)
	if err != nil {
		return nil, err
	}
	var v *gitsource.Verifier
	if len(cfg.Source.TrustedKeys) > 0 {
		if v, err = gitsource.LoadVerifier(cfg.Source.TrustedKeys...); err != nil {
			return nil, err
		}
	}
	return gitsource.Open(gitsource.Config{
		URL:           cfg.Source.URL,
		Branch:        cfg.Source.Branch,
		Auth:          auth,
		CacheDir:      gitCacheDir(cfg.CacheDir, log),
		CacheMaxBytes: cfg.Source.CacheMaxBytes,
		Verifier:      v,
		Log:           log,
	})
}
