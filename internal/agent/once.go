package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// Once is fsgit run without a running agent: from the agent's
// configuration, it polls the branch once, verifies and loads the tip
// (or, with git unreachable, the last applied commit from the git cache),
// runs its catalog, records the run (unless noop) and returns the report.
// It takes the state file's lock like the agent: it fails with
// state.ErrLocked while an agent runs.
//
// With req.Resource set it is fsgit diff: that resource alone, observed,
// nothing changed and nothing recorded.
func (a *Agent) Once(ctx context.Context, req RunRequest) (*reconciler.Report, error) {
	noop := req.Noop || req.Resource != ""
	cfg := a.config()
	meta, err := a.openState(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if a.store != nil {
			_ = a.store.Close()
			a.store = nil
		}
	}()
	src, err := openSource(cfg, a.log)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.src = src
	a.mu.Unlock()
	a.loadHolds()
	a.noRecord = noop
	if req.Now {
		if req.Reason == "" {
			return nil, errors.New("--now needs a reason (--reason): it is recorded")
		}
		a.override = req.Reason
		a.log.Warn("maintenance window overridden: disruptive changes run now", "reason", req.Reason)
	}
	a.mu.Lock()
	a.node.AppliedRevision = meta.AppliedRevision
	a.mu.Unlock()
	a.loadPin()
	if rb := req.Rollback; rb != nil {
		if err := rb.check(); err != nil {
			return nil, err
		}
		if !rb.Release {
			// Git is not needed: the catalog is in the state file.
			cat, err := rollbackTarget(a.store, rb, meta.AppliedRevision)
			if err == nil {
				err = a.pinTo(cat, rb, time.Now())
			}
			if err != nil {
				return nil, err
			}
			return a.onceRun(ctx, "rollback", false)
		}
		if err := a.unpin(rb.By); err != nil {
			return nil, err
		}
	}
	if a.pinned != nil && req.Resource != "" {
		return a.diff(ctx, req.Resource)
	}
	if a.pinned != nil {
		a.log.Warn("the node is pinned by a rollback: running that catalog, not the branch's (fsgit rollback --release follows it again)",
			"revision", a.pinned.pin.Revision, "by", a.pinned.pin.By, "reason", a.pinned.pin.Reason)
		return a.onceRun(ctx, "once", noop)
	}

	var known knownTip
	ev := a.pollOnce(ctx, cfg, &known)
	if ev.prepared == nil && meta.AppliedRevision != "" {
		// Git unreachable, or the tip refused: the last applied commit,
		// from the cache.
		why := "the tip was refused"
		if ev.err != nil {
			why = "git is unreachable: " + ev.err.Error()
		}
		a.log.Warn("running the last applied commit", "commit", meta.AppliedRevision, "because", why)
		back := &pollEvent{}
		if _, lerr := a.loadCommit(ctx, meta.AppliedRevision, back); back.prepared != nil {
			ev.prepared, ev.secrets = back.prepared, back.secrets
		} else if lerr != nil {
			a.log.Warn("the last applied commit is not in the git cache", "commit", meta.AppliedRevision, "err", lerr)
		}
	}
	if ev.prepared == nil {
		var errs []error
		if ev.err != nil {
			errs = append(errs, ev.err)
		}
		for _, r := range ev.refused {
			errs = append(errs, r)
		}
		return nil, fmt.Errorf("no catalog to run: %w", errors.Join(errs...))
	}
	for _, r := range ev.refused {
		a.log.Warn("commit refused: running the last good commit", "commit", r.Commit, "err", r.Err)
	}
	a.prepared, a.secrets = ev.prepared, ev.secrets
	a.mu.Lock()
	a.current = ev.prepared.Catalog
	a.node.Accept(ev.prepared.Catalog.Revision)
	a.mu.Unlock()
	if req.Resource != "" {
		return a.diff(ctx, req.Resource)
	}
	if !noop {
		a.expireHolds(time.Now())
	}
	return a.onceRun(ctx, "once", noop)
}

// onceRun runs the catalog in hand for Once.
func (a *Agent) onceRun(ctx context.Context, trigger string, noop bool) (*reconciler.Report, error) {
	rep := a.run(ctx, trigger, nil, noop)
	if rep == nil {
		return nil, errors.New("the run could not start (see the log)")
	}
	a.afterRun(rep)
	return rep, nil
}
