// Package pass is one reconcile pass of a node, the same for fsgit apply
// --once, fsgit run and the agent: its steps run in order (load the
// catalog, prepare it, open the node's memory, run the engine; the memory
// opens beside the preparation once the catalog is known to run), and the
// record and the status are written in a defer, in the manner of Flux's
// reconcilers, so that every way out of the pass reports how it ended.
//
// Local is the pass of fsgit apply --once, from a site directory; the
// agent (and fsgit run, which runs the agent's work once) builds its own
// Pass around the commit it accepted. The package holds what those share
// besides: the compiled catalog cache, the node's secret chain, the
// last-run summary and the two-stage signal handling.
package pass

import (
	"context"
	"os"

	"github.com/fsgit/fsgit/reconciler"
)

// Pass is one reconcile pass. Engine is required; every other step is
// optional.
type Pass struct {
	// Engine prepares and runs the catalog.
	Engine *reconciler.Engine
	// Load builds the catalog (step 1); unused when Prepared is set.
	Load func(ctx context.Context) (*reconciler.Catalog, error)
	// Secrets makes the run's secret resolver (step 2, before the catalog
	// is prepared).
	Secrets func() (reconciler.SecretResolver, error)
	// Prepared is a catalog prepared already: the agent prepares a commit
	// when it accepts it.
	Prepared *reconciler.Prepared
	// State opens the node's memory (step 3): the run's prior. When the
	// pass prepares the catalog itself, State runs on a goroutine of its
	// own beside the specs' checks, once the catalog's edges are found
	// sound (reconciler.Engine.PrepareBeside): it still runs only for a
	// catalog that prepares, and the pass goes on once both are done.
	State func() (*reconciler.Memory, error)
	// Options are the engine's run options; the steps fill in Secrets
	// and Prior when they have them.
	Options reconciler.RunOptions
	// Held, when set, says what the run must not change (fsgit hold),
	// asked after State, of the prepared catalog: it fills Options' Held
	// and NoPrune. The agent's holds are in its memory, Local's in the
	// state file; both expand them with state.HeldFor.
	Held func(*reconciler.Catalog) (held map[reconciler.ID]string, noPrune bool)
	// Interrupt, when set, is called on the first SIGINT or SIGTERM during
	// the run, which then lets the resources in hand finish; a second
	// signal cancels them.
	Interrupt func()
	// Record keeps a run that happened (step 5: the state, the summary).
	// It runs in the defer, before Finish.
	Record func(*reconciler.Report) error
	// Finish sees how the pass ended, whichever step ended it (step 6:
	// the status, metrics, logs). It runs in the defer.
	Finish func(*Result)
}

// Result is how a pass ended.
type Result struct {
	// Prepared is the catalog the pass prepared or was given.
	Prepared *reconciler.Prepared
	// Report is the run's report; nil when the run did not happen.
	Report *reconciler.Report
	// Step names the step that failed ("load", "secrets", "prepare",
	// "state", "run"; Local's "root" before them), and Err says why; both
	// empty when the run happened.
	Step string
	Err  error
	// RecordErr is why a run that happened is not recorded.
	RecordErr error
}

// Run runs the steps in order and stops at the first that fails. Record
// and Finish run in a defer, whatever ended the pass.
func (p *Pass) Run(ctx context.Context) (res *Result) {
	res = &Result{Prepared: p.Prepared}
	release := func() {}
	defer func() {
		// Signals are caught until the record is written.
		defer release()
		if res.Report != nil && p.Record != nil {
			res.RecordErr = p.Record(res.Report)
		}
		if p.Finish != nil {
			p.Finish(res)
		}
	}()
	opts := p.Options
	var cat *reconciler.Catalog
	// stateDone says that the state step ran already, beside Prepare, and
	// stateErr is how it ended.
	var stateDone bool
	var stateErr error
	steps := []struct {
		name string
		do   func() error
	}{
		{"load", func() (err error) {
			if res.Prepared == nil && p.Load != nil {
				cat, err = p.Load(ctx)
			}
			return err
		}},
		{"secrets", func() (err error) {
			if p.Secrets != nil {
				opts.Secrets, err = p.Secrets()
			}
			return err
		}},
		{"prepare", func() (err error) {
			if res.Prepared != nil || p.State == nil {
				if res.Prepared == nil {
					res.Prepared, err = p.Engine.Prepare(cat)
				}
				return err
			}
			// The state opens beside the specs' checks, once the catalog
			// is known to run: as it would after them.
			opened := false
			res.Prepared, err = p.Engine.PrepareBeside(cat, func() {
				opened = true
				opts.Prior, stateErr = p.State()
			})
			stateDone = opened
			return err
		}},
		{"state", func() (err error) {
			if p.State != nil && !stateDone {
				opts.Prior, stateErr = p.State()
			}
			return stateErr
		}},
		{"run", func() (err error) {
			if p.Held != nil {
				opts.Held, opts.NoPrune = p.Held(res.Prepared.Catalog)
			}
			runCtx := ctx
			if p.Interrupt != nil {
				runCtx, opts.Stop, release = Interrupted(ctx, func(os.Signal) { p.Interrupt() })
			}
			res.Report, err = p.Engine.Run(runCtx, res.Prepared, opts)
			return err
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			res.Step, res.Err = s.name, err
			return res
		}
	}
	return res
}
