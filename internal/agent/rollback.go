package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing/fstest"
	"time"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// RollbackRequest asks the node to re-apply a catalog it applied before,
// from its state file (git is not needed), and to stay on it; or, with
// Release, to follow the branch again.
type RollbackRequest struct {
	// To is the revision (or its first 7+ characters) of a kept catalog;
	// Previous picks the one applied before the current one.
	To       string `json:"to,omitempty"`
	Previous bool   `json:"previous,omitempty"`
	Release  bool   `json:"release,omitempty"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by"`
}

// check says what is wrong with the request.
func (r *RollbackRequest) check() error {
	switch {
	case r.Release && (r.To != "" || r.Previous):
		return errors.New("rollback --release takes neither --to nor --previous")
	case r.Release:
		return nil
	case (r.To == "") == !r.Previous:
		return errors.New("rollback needs --to REV or --previous (one of them)")
	case r.Reason == "":
		return errors.New("a rollback needs a reason (--reason)")
	case r.By == "":
		return errors.New("a rollback needs who asks for it")
	}
	return nil
}

// pinned is the catalog the node is pinned to, prepared.
type pinned struct {
	pin      state.Pin
	prepared *reconciler.Prepared
}

// rollbackTarget picks the kept catalog the request names.
func rollbackTarget(st *state.Store, req *RollbackRequest, applied string) (*reconciler.Catalog, error) {
	if st == nil {
		return nil, errors.New("the state file is not open: no catalog kept to roll back to")
	}
	if req.To != "" {
		return st.KeptCatalog(req.To)
	}
	kept, err := st.KeptCatalogs()
	if err != nil {
		return nil, err
	}
	for _, k := range kept {
		if k.Revision != applied {
			return st.KeptCatalog(k.Revision)
		}
	}
	return nil, fmt.Errorf("%w: no catalog applied before %s", state.ErrNotKept, short(applied))
}

// rollbackSecrets is the secret resolver of a rolled-back catalog: the
// one in force when there is one (git may be unreachable), else the
// node's secret files alone.
func (a *Agent) rollbackSecrets() (reconciler.SecretResolver, error) {
	if a.secrets != nil || a.opts.Secrets == nil {
		return a.secrets, nil
	}
	return a.opts.Secrets(a.config().Secrets, fstest.MapFS{})
}

// pinTo prepares cat and pins the node to it (in the state file too).
func (a *Agent) pinTo(cat *reconciler.Catalog, req *RollbackRequest, now time.Time) error {
	p, err := a.engine.Prepare(cat)
	if err != nil {
		return fmt.Errorf("prepare catalog %s: %w", short(cat.Revision), err)
	}
	res, err := a.rollbackSecrets()
	if err != nil {
		return fmt.Errorf("secrets for catalog %s: %w", short(cat.Revision), err)
	}
	pin := state.Pin{Revision: cat.Revision, By: req.By, Reason: req.Reason, Since: now.UTC()}
	if a.store == nil {
		return errors.New("the state file is not open: a pin would not survive a restart")
	}
	if err := a.store.SetPin(&pin); err != nil {
		return err
	}
	if a.pinned == nil && a.prepared != nil && a.prepared.Catalog.Revision != cat.Revision {
		a.latest, a.latestSecrets = a.prepared, a.secrets
	}
	a.pinned = &pinned{pin: pin, prepared: p}
	a.prepared, a.secrets = p, res
	a.mu.Lock()
	a.current = cat
	a.node.Pinned = &status.Pin{Revision: pin.Revision, By: pin.By, Reason: pin.Reason, Since: pin.Since}
	a.mu.Unlock()
	a.log.Warn("rolled back by hand: the node stays on this catalog until fsgit rollback --release",
		"revision", cat.Revision, "by", req.By, "reason", req.Reason)
	return nil
}

// unpin returns the node to the branch: the newest accepted catalog, or
// the next poll's.
func (a *Agent) unpin(by string) error {
	if a.pinned == nil {
		return errors.New("the node is not pinned")
	}
	if a.store != nil {
		if err := a.store.SetPin(nil); err != nil {
			return err
		}
	}
	a.log.Info("rollback released: following the branch again", "was", a.pinned.pin.Revision, "by", by)
	a.pinned = nil
	a.mu.Lock()
	a.node.Pinned = nil
	a.mu.Unlock()
	if a.latest != nil {
		a.prepared, a.secrets = a.latest, a.latestSecrets
		a.mu.Lock()
		a.current = a.latest.Catalog
		a.mu.Unlock()
	}
	a.latest, a.latestSecrets = nil, nil
	return nil
}

// loadPin restores a pin kept in the state file at start.
func (a *Agent) loadPin() {
	if a.store == nil {
		return
	}
	pin, err := a.store.Pin()
	if err != nil || pin == nil {
		if err != nil {
			a.log.Error("read pin: following the branch", "err", err)
		}
		return
	}
	cat, err := a.store.KeptCatalog(pin.Revision)
	if err == nil {
		err = a.pinTo(cat, &RollbackRequest{By: pin.By, Reason: pin.Reason}, pin.Since)
	}
	if err != nil {
		a.log.Error("the node was pinned, but the catalog cannot be restored: following the branch", "revision", pin.Revision, "err", err)
		return
	}
	// pinTo wrote the pin anew with Since now: keep the original.
	a.pinned.pin.Since = pin.Since
	_ = a.store.SetPin(pin)
	a.mu.Lock()
	a.node.Pinned.Since = pin.Since
	a.mu.Unlock()
}

// takeRollback handles fsgit rollback in the apply loop: pin (or
// release) and run, streaming to w.
func (a *Agent) takeRollback(ctx context.Context, w *runWaiter) {
	req := w.req.Rollback
	if err := req.check(); err != nil {
		w.finish(RunEvent{Error: err.Error()})
		return
	}
	if req.Release {
		if err := a.unpin(req.By); err != nil {
			w.finish(RunEvent{Error: err.Error()})
			return
		}
		if a.prepared == nil {
			w.finish(RunEvent{Error: "released; no catalog from the branch yet: the next poll brings one"})
			return
		}
		w.send(RunEvent{Note: "following the branch again at " + short(a.prepared.Catalog.Revision)})
	} else {
		a.mu.Lock()
		applied := a.node.AppliedRevision
		a.mu.Unlock()
		cat, err := rollbackTarget(a.store, req, applied)
		if err == nil {
			err = a.pinTo(cat, req, time.Now())
		}
		if err != nil {
			w.finish(RunEvent{Error: err.Error()})
			return
		}
		w.send(RunEvent{Note: fmt.Sprintf("rolled back by hand to %s because %s: the node stays there until fsgit rollback --release", short(cat.Revision), req.Reason)})
	}
	a.listeners = []*runWaiter{w}
	rep := a.run(ctx, "rollback", nil, false)
	a.listeners = nil
	a.afterRun(rep)
	a.finishRun(w, rep)
	a.afterChange()
}

// afterRun keeps what a full run without failure leaves: its commit in
// the git cache, its catalog for rollback.
func (a *Agent) afterRun(rep *reconciler.Report) {
	if rep == nil || len(rep.Only) > 0 || rep.Stopped != "" || rep.Noop || rep.Count(reconciler.Failed) > 0 {
		return
	}
	if src := a.source(); src != nil && rep.Revision != a.kept && a.pinned == nil {
		if err := src.Keep(rep.Revision); err != nil {
			a.log.Warn("pin applied commit in the git cache", "err", err)
		} else {
			a.kept = rep.Revision
		}
	}
	// Kept once per revision applied: a quiet poll writes nothing.
	if a.store != nil && a.prepared != nil && a.prepared.Catalog.Revision == rep.Revision && rep.Revision != a.keptCatalog {
		if err := a.store.KeepCatalog(a.prepared.Catalog, time.Now(), 0); err != nil {
			a.log.Warn("keep the applied catalog for rollback", "err", err)
		} else {
			a.keptCatalog = rep.Revision
		}
	}
}

// KeptPath lists the catalogs kept for rollback (GET): a [KeptAnswer].
const KeptPath = "/v1/rollback"

// KeptAnswer is what the node keeps for rollback, and its pin.
type KeptAnswer struct {
	Kept []state.KeptCatalog `json:"kept"`
	Pin  *state.Pin          `json:"pin,omitempty"`
}

// Kept reads the catalogs kept for rollback and the pin from st.
func Kept(st *state.Store) (KeptAnswer, error) {
	kept, err := st.KeptCatalogs()
	if err != nil {
		return KeptAnswer{}, err
	}
	pin, err := st.Pin()
	if err != nil {
		return KeptAnswer{}, err
	}
	if kept == nil {
		kept = []state.KeptCatalog{}
	}
	return KeptAnswer{Kept: kept, Pin: pin}, nil
}

func (a *Agent) serveKept(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	st := a.store
	a.mu.Unlock()
	if st == nil {
		http.Error(w, "the state file is not open (see the status)", http.StatusServiceUnavailable)
		return
	}
	ans, err := Kept(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSONAnswer(w, ans)
}
