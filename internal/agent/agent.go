// Package agent is fsgit's daemon: it follows a branch of a git repository,
// converges the node on each new commit, keeps it converged between
// commits, and reports back.
//
// Two loops share the work. The source loop polls the repository (a ref
// listing; a fetch only when the branch moved), verifies a new commit's
// signature, builds the node's catalog from it and prepares it for the
// engine; a commit that fails any of that is refused and the node stays on
// the last good catalog. When a new catalog is ready, the run in flight is
// cancelled: the newest commit wins. The apply loop runs the catalog on
// every poll, whether git moved or not (drift is corrected even while git
// is unreachable), runs the few resources whose files changed on disk
// (fsnotify on their directories, rate limited per resource), records each
// run in the state file, and publishes the node's status to the status
// branch when the outcome changes. A local unix socket serves the status
// and Prometheus metrics.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// CatalogLoader builds the catalog of node from the site at siteDir in a
// commit's files. An error means the commit is invalid and is refused;
// it should carry the CUE positions.
type CatalogLoader func(ctx context.Context, fsys fs.FS, siteDir, revision, node string) (*reconciler.Catalog, error)

// SecretsFactory makes the secret resolver for a commit's catalog, from the
// configuration and the site's secrets/ directory in that commit (for
// secrets kept encrypted in the repository), held in memory.
type SecretsFactory func(cfg SecretsConfig, siteSecrets fs.FS) (reconciler.SecretResolver, error)

// Options are what an agent is made of.
type Options struct {
	// Config is the configuration to start with.
	Config *Config
	// ConfigFile is re-read, against SchemaFS, on Reload; empty disables
	// reloading.
	ConfigFile string
	SchemaFS   fs.FS
	// Registry holds the resource kinds.
	Registry *reconciler.Registry
	// Load builds catalogs; nil evaluates the commit's CUE site under the
	// configured limits (see siteLoader).
	Load CatalogLoader
	// Secrets makes the secret resolver (NodeSecrets is the node's);
	// nil runs without secrets.
	Secrets SecretsFactory
	// Log is the agent's logger; LogLevel, when set, follows log.level.
	Log      *slog.Logger
	LogLevel *slog.LevelVar
	// Notify sends a state to systemd; nil uses sd_notify (a no-op outside
	// systemd).
	Notify func(state string)
	// StateTimeout bounds the wait for the state file's lock (zero: 2s).
	StateTimeout time.Duration
}

// RefusedError is a commit that was not applied: its signature did not
// verify, its CUE did not validate, or its catalog's edges are broken.
type RefusedError struct {
	Commit string
	Err    error
}

// Error describes the refusal.
func (e *RefusedError) Error() string { return fmt.Sprintf("commit %s refused: %v", e.Commit, e.Err) }

// Unwrap returns the reason.
func (e *RefusedError) Unwrap() error { return e.Err }

// Agent is the daemon. Make one with New, then Run it.
type Agent struct {
	// acceptedWhen is the commit time of the commit last accepted (the
	// poll loop's own: see checkNotOlder).
	acceptedWhen time.Time

	opts    Options
	log     *slog.Logger
	engine  *reconciler.Engine
	metrics *metrics
	notify  func(string)
	wd      *watchdog

	stopOnce sync.Once
	stopCh   chan struct{}
	reloadCh chan struct{}

	// Shared between the loops and the API, under mu.
	mu        sync.Mutex
	cfg       *Config
	src       *gitsource.Source
	node      status.Node
	runCancel context.CancelFunc
	runRev    string
	pending   *pollEvent
	pollReady chan struct{}
	pollPoke  chan struct{}
	resetPoll bool
	// pollsStarted counts the polls the source loop started.
	pollsStarted uint64
	// runReqs brings fsgit run's requests to the apply loop.
	runReqs chan *runWaiter
	// holds are the operators' holds (fsgit hold); holdsCh wakes the
	// apply loop when they change. current is the catalog in force, for
	// the API.
	holds   []state.Hold
	holdsCh chan struct{}
	current *reconciler.Catalog

	// Owned by the apply loop.
	store     *state.Store
	prepared  *reconciler.Prepared
	memory    *reconciler.Memory
	view      map[reconciler.ID]reconciler.Result
	secrets   reconciler.SecretResolver
	watch     *watcher
	limiter   *corrections
	limitLogs map[reconciler.ID]bool
	pub       *publisher
	kept      string // the commit last pinned in the git cache
	// waiting are the run requests waiting for a poll; listeners those
	// the run in flight streams its results to.
	waiting   []*runWaiter
	listeners []*runWaiter
	// noRecord keeps runs out of the state (a noop Once).
	noRecord bool
	// lastFull is when a run last observed every resource (see quietOnly).
	lastFull time.Time
	// pinned is set while the node is rolled back by hand; latest is then
	// the newest catalog from the branch, waiting for the release.
	// notifier posts events on transitions (nil: none configured).
	notifier *notifier
	// override is the reason of fsgit run --now while its run runs:
	// disruptive changes do not wait for the window.
	override      string
	keptCatalog   string // the revision last kept for rollback
	pinned        *pinned
	latest        *reconciler.Prepared
	latestSecrets reconciler.SecretResolver

	// repeats keeps lines that would repeat on every run out of the log.
	repeats *repeats
	// tracer exports runs as traces (nil: tracing is off).
	tracer *tracer
	// daemon is set while Run runs; restartErr, under mu, is why the
	// daemon stopped to be started again (see restart).
	daemon     bool
	restartErr error
}

// New checks the options and returns an agent ready to Run.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil || opts.Registry == nil {
		return nil, errors.New("make agent: a configuration and a registry are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.StateTimeout <= 0 {
		opts.StateTimeout = 2 * time.Second
	}
	a := &Agent{
		opts:      opts,
		log:       opts.Log,
		metrics:   newMetrics(),
		notify:    opts.Notify,
		stopCh:    make(chan struct{}),
		reloadCh:  make(chan struct{}, 1),
		pollReady: make(chan struct{}, 1),
		pollPoke:  make(chan struct{}, 1),
		runReqs:   make(chan *runWaiter),
		holdsCh:   make(chan struct{}, 1),
		cfg:       opts.Config,
		view:      map[reconciler.ID]reconciler.Result{},
		limitLogs: map[reconciler.ID]bool{},
		repeats:   newRepeats(opts.Config.Log.Remind.D()),
	}
	if a.notify == nil {
		a.notify = systemdNotifier()
	}
	a.wd = newWatchdog(a.notify)
	if a.opts.Load == nil {
		l := &siteLoader{config: a.config, log: a.log, restart: a.restart}
		a.opts.Load = l.load
	}
	a.engine = reconciler.NewEngine(reconciler.Config{Registry: opts.Registry, Log: opts.Log})
	a.applyLogLevel(opts.Config)
	return a, nil
}

// Stop asks the agent to stop: the resources in hand finish, no other
// starts, and Run returns. Cancelling Run's context stops at once instead.
func (a *Agent) Stop() { a.stopOnce.Do(func() { close(a.stopCh) }) }

// Reload asks the agent to re-read its configuration file.
func (a *Agent) Reload() {
	select {
	case a.reloadCh <- struct{}{}:
	default:
	}
}

// Status returns a copy of the node's current status, its source tip's
// age measured now.
func (a *Agent) Status() status.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.node
	n.Source.CheckTip(time.Now())
	return n
}

// Config returns the configuration in force (it changes on Reload).
func (a *Agent) Config() *Config { return a.config() }

func (a *Agent) config() *Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

func (a *Agent) source() *gitsource.Source {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.src
}

// Run runs the agent until Stop or ctx ends. It returns an error when it
// cannot start (the state file is held by another fsgit, the socket cannot
// be bound, the source cannot be opened), and when it stopped to be
// started again (see restart).
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.daemon = true
	a.mu.Unlock()
	cfg := a.config()
	meta, err := a.openState(cfg)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer func() {
		if a.store == nil {
			return
		}
		if err := a.store.Close(); err != nil {
			a.log.Error("close state", "err", err)
		}
	}()
	src, err := openSource(cfg, a.log)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	a.pub, err = newPublisher(cfg, a.log, a.metrics)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	a.limiter = newCorrections(cfg.Drift.MaxCorrections, cfg.Drift.Window.D())
	if a.tracer, err = newTracer(ctx, cfg.Tracing.Endpoint, cfg.Node); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer func() {
		if err := a.tracer.shutdown(5 * time.Second); err != nil {
			a.log.Warn("tracing", "err", err)
		}
	}()
	now := time.Now()
	a.mu.Lock()
	a.src = src
	a.node = status.Node{
		State:           a.node.State,
		Node:            cfg.Node,
		AppliedRevision: meta.AppliedRevision,
		Site:            meta.Site,
		Since:           now,
		Source:          status.Source{URL: gitsource.RedactURL(cfg.Source.URL), Branch: cfg.Source.Branch},
	}
	a.mu.Unlock()
	a.loadHolds()
	a.expireHolds(now)
	a.loadPin()

	if cfg.Watch.Enabled {
		if a.watch, err = newWatcher(a.log, cfg.Watch.MaxWatches, cfg.Watch.Debounce.D()); err != nil {
			return fmt.Errorf("start agent: %w", err)
		}
		defer func() { _ = a.watch.close() }()
	}
	srv, err := startServer(a.log, cfg.Socket, cfg.Metrics.Listen, func() any { return a.Status() }, map[string]http.HandlerFunc{
		"POST " + RunPath:     a.serveRun,
		"GET " + HistoryPath:  a.serveHistory,
		"POST " + HoldPath:    a.serveHold,
		"POST " + ReleasePath: a.serveRelease,
		"GET " + KeptPath:     a.serveKept,
	}, a.metrics)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.close(sctx); err != nil {
			a.log.Warn("close local API", "err", err)
		}
	}()

	if cfg.Webhook != nil {
		hook, err := a.startWebhook(cfg.Webhook)
		if err != nil {
			return fmt.Errorf("start agent: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = hook.close(sctx)
		}()
	}

	loopCtx, stopLoops := context.WithCancel(ctx)
	if len(cfg.Notify.Endpoints) > 0 {
		a.notifier = newNotifier(cfg.Notify, a.log, a.metrics)
		a.notifier.start(loopCtx)
		defer a.notifier.wait()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer crash.Exit(); defer wg.Done(); a.sourceLoop(loopCtx, meta.DesiredRevision) }()
	go func() { defer crash.Exit(); defer wg.Done(); a.pub.loop(loopCtx) }()

	a.log.Info("agent started", "node", cfg.Node, "url", gitsource.RedactURL(cfg.Source.URL), "branch", cfg.Source.Branch,
		"site", cfg.Source.Site, "interval", cfg.Source.PollInterval.D(), "root", cfg.Root, "signed", len(cfg.Source.TrustedKeys) > 0)
	a.notify(daemon.SdNotifyReady)
	a.notify("STATUS=waiting for the first poll")

	a.applyLoop(ctx)

	a.notify(daemon.SdNotifyStopping)
	a.log.Info("agent stopping")
	// Let the last status reach the branch, within reason.
	a.pub.flush(5 * time.Second)
	stopLoops()
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.restartErr
}

// restart stops the daemon for the service manager to start it again
// (fsgit.service has Restart=on-failure): Run returns err. The first
// reason is kept. Outside Run (Once) it does nothing.
func (a *Agent) restart(err error) {
	a.mu.Lock()
	stop := a.daemon && a.restartErr == nil
	if stop {
		a.restartErr = err
	}
	a.mu.Unlock()
	if stop {
		a.Stop()
	}
}

// applyLoop handles polls, file events and reloads until Stop or ctx.
func (a *Agent) applyLoop(ctx context.Context) {
	var watchReady <-chan struct{}
	if a.watch != nil {
		watchReady = a.watch.ready
	}
	defer a.abandonWaiting()
	for {
		a.wd.ping()
		var holdEnd, windowOpens <-chan time.Time
		if d, ok := a.nextHoldEnd(time.Now()); ok {
			holdEnd = time.After(d)
		}
		if d, ok := a.nextWindow(time.Now()); ok {
			windowOpens = time.After(d)
		}
		select {
		case <-a.wd.due():
		case <-windowOpens:
			a.log.Info("maintenance window open: the changes that waited run")
			if a.prepared != nil {
				a.run(ctx, "window", nil, false)
				a.afterChange()
			}
		case <-holdEnd:
			a.handleHolds(ctx, "hold-expired")
		case <-a.holdsCh:
			a.handleHolds(ctx, "hold")
		case <-ctx.Done():
			return
		case <-a.stopCh:
			return
		case w := <-a.runReqs:
			a.takeRunRequest(ctx, w)
		case <-a.pollReady:
			if ev := a.takePoll(); ev != nil {
				a.handlePoll(ctx, ev)
			}
		case <-watchReady:
			a.handleWatch(ctx)
		case <-a.reloadCh:
			a.reload()
		}
	}
}

// handlePoll records what the source loop found and runs the catalog:
// a new one if a commit was accepted, the current one otherwise.
func (a *Agent) handlePoll(ctx context.Context, ev *pollEvent) {
	now := time.Now()
	froze, thawed := a.recordSource(ev, now)
	a.notifyFrozen(froze, thawed)
	for _, r := range ev.refused {
		a.log.Warn("commit refused: staying on the last good commit", "commit", r.Commit, "err", r.Err)
		a.metrics.refused.Inc()
	}
	trigger := "poll"
	if ev.prepared != nil {
		cat := ev.prepared.Catalog
		trigger = "commit"
		if ev.resumed {
			trigger = "start"
		} else {
			a.log.Info("commit accepted", "commit", cat.Revision, "signer", ev.signer, "resources", len(cat.Resources))
		}
		if a.pinned != nil {
			if a.latest == nil || a.latest.Catalog.Revision != cat.Revision {
				a.log.Warn("pinned by a rollback: the new commit waits for fsgit rollback --release",
					"commit", cat.Revision, "pinned", a.pinned.pin.Revision, "reason", a.pinned.pin.Reason)
			}
			a.latest, a.latestSecrets = ev.prepared, ev.secrets
			if trigger == "commit" {
				trigger = "poll"
			}
		} else {
			a.prepared, a.secrets = ev.prepared, ev.secrets
		}
		a.mu.Lock()
		if a.pinned == nil {
			a.current = cat
		}
		// Refusals older than this commit no longer matter.
		a.node.Accept(cat.Revision)
		a.node.Site, a.node.Role = cat.Site, cat.Role
		a.mu.Unlock()
		a.syncWatch()
	}
	a.mu.Lock()
	for _, r := range ev.refusedSinceAccepted() {
		a.node.Refuse(r.Commit, r.Err.Error(), now)
	}
	a.mu.Unlock()
	for _, r := range ev.refused {
		e := a.event(EventRefused, "warning", fmt.Sprintf("commit %s refused: %v", short(r.Commit), r.Err), nil)
		e.Revision = r.Commit
		a.notifier.send(e)
	}
	served := a.servedBy(ev)
	if a.prepared == nil {
		for _, w := range served {
			w.finish(RunEvent{Error: "no commit could be applied yet (see the status)"})
		}
	}
	if a.prepared != nil {
		if len(served) > 0 {
			trigger = "run"
			if ev.prepared != nil && !ev.resumed {
				trigger = "run+commit"
			}
		}
		for _, w := range served {
			if ev.err != nil {
				w.send(RunEvent{Note: "git unreachable: running the last good commit " + short(a.prepared.Catalog.Revision) + ": " + ev.err.Error()})
			}
			for _, r := range ev.refusedSinceAccepted() {
				w.send(RunEvent{Note: r.Error()})
			}
		}
		a.listeners = served
		for _, w := range served {
			if w.req.Now {
				a.override = w.req.Reason
				a.log.Warn("maintenance window overridden: disruptive changes run now", "reason", w.req.Reason)
			}
		}
		only, skip := a.quietOnly(trigger, served)
		var rep *reconciler.Report
		if skip {
			a.checked(now)
		} else {
			rep = a.run(ctx, trigger, only, false)
		}
		a.listeners, a.override = nil, ""
		for _, w := range served {
			a.finishRun(w, rep)
		}
		a.afterRun(rep)
		// A run creates directories that could not be watched before.
		a.syncWatch()
	}
	a.afterChange()
}

// recordSource updates the source's health and its tip, and says whether
// the source started or stopped looking frozen; it logs transitions only.
func (a *Agent) recordSource(ev *pollEvent, now time.Time) (froze, thawed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.node.Source
	cfg := a.cfg
	s.URL, s.Branch = gitsource.RedactURL(cfg.Source.URL), cfg.Source.Branch
	switch {
	case ev.err != nil:
		a.metrics.polls.WithLabelValues("error").Inc()
		a.metrics.sourceUp.Set(0)
		if s.Reachable || s.UnreachableSince.IsZero() {
			s.UnreachableSince = ev.at
			a.log.Warn("git source unreachable: keeping the last good commit", "url", s.URL, "err", ev.err)
		}
		s.Reachable = false
		s.Error = ev.err.Error()
	default:
		if (ev.prepared != nil && !ev.resumed) || len(ev.refused) > 0 {
			a.metrics.polls.WithLabelValues("new").Inc()
		} else {
			a.metrics.polls.WithLabelValues("unchanged").Inc()
		}
		a.metrics.sourceUp.Set(1)
		if ev.resumed {
			break
		}
		if !s.UnreachableSince.IsZero() {
			a.log.Info("git source reachable again", "url", s.URL, "down", now.Sub(s.UnreachableSince).Round(time.Second))
		}
		s.Reachable, s.Error, s.UnreachableSince, s.LastSuccess = true, "", time.Time{}, ev.at
		// A tip whose time cannot be trusted (its signature did not
		// verify) leaves the last trusted one, and its age, in place.
		if ev.tip != "" && !ev.tipWhen.IsZero() {
			if ev.tip != s.Tip {
				s.TipSeen = ev.at
			}
			s.Tip, s.TipTime = ev.tip, ev.tipWhen
		}
	}
	// The tip ages whether the source answers or not.
	s.MaxTipAge = jsondoc.Seconds(cfg.Source.MaxTipAge.D())
	was := s.Frozen != ""
	s.CheckTip(now)
	a.metrics.observeTip(s.TipTime, cfg.Source.MaxTipAge.D())
	switch {
	case s.Frozen != "" && !was:
		a.log.Warn("git source looks frozen: its tip is older than maxTipAge", "url", s.URL, "tip", s.Tip,
			"committed", s.TipTime, "age", s.TipAge.D(), "maxTipAge", s.MaxTipAge.D())
		return true, false
	case s.Frozen == "" && was:
		a.log.Info("git source no longer looks frozen", "url", s.URL, "tip", s.Tip, "age", s.TipAge.D())
		return false, true
	}
	return false, false
}

// handleWatch re-runs the resources whose files changed. A resource
// corrected too often in the window is only observed (noop), and reported
// as drifted.
func (a *Agent) handleWatch(ctx context.Context) {
	batch := a.watch.take()
	if a.prepared == nil || len(batch) == 0 {
		return
	}
	now := time.Now()
	var ids, limited []reconciler.ID
	for id := range batch {
		if a.prepared.Catalog.Lookup(id) == nil {
			continue
		}
		if a.limiter.allow(id, now) {
			ids = append(ids, id)
			delete(a.limitLogs, id)
			continue
		}
		limited = append(limited, id)
		a.metrics.driftLimited.Inc()
		if !a.limitLogs[id] {
			a.limitLogs[id] = true
			cfg := a.config()
			a.log.Warn("drift corrected too often: reporting it until the window passes (another writer?)",
				"id", id, "corrections", cfg.Drift.MaxCorrections, "window", cfg.Drift.Window.D())
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) > 0 {
		if rep := a.run(ctx, "watch", ids, false); rep != nil {
			done := time.Now()
			for _, r := range rep.Results {
				switch r.Outcome {
				case reconciler.Created, reconciler.Changed, reconciler.Deleted:
				default:
					continue
				}
				a.limiter.record(r.ID, done)
				a.metrics.driftCorrections.Inc()
				attrs := []any{"id", r.ID, "changes", len(r.Changes)}
				if first, ok := batch[r.ID]; ok {
					attrs = append(attrs, "latency", done.Sub(first))
				}
				a.log.Info("drift corrected", attrs...)
			}
		}
	}
	if len(limited) > 0 {
		sort.Slice(limited, func(i, j int) bool { return limited[i] < limited[j] })
		a.run(ctx, "watch", limited, true)
	}
	a.syncWatch()
	a.afterChange()
}

// run runs the current catalog (or only the given resources) as one
// pass: the state's memory, the engine, then, deferred, the record
// (recordRun) and the status (runDone). It returns nil when the run could
// not start, or when the agent is stopping (a run that would only skip
// everything is not worth recording).
func (a *Agent) run(ctx context.Context, trigger string, only []reconciler.ID, noop bool) *reconciler.Report {
	select {
	case <-a.stopCh:
		return nil
	default:
	}
	cfg := a.config()
	runCtx, cancel := context.WithTimeout(ctx, cfg.RunTimeout.D())
	defer cancel()
	a.mu.Lock()
	a.runCancel, a.runRev = cancel, a.prepared.Catalog.Revision
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.runCancel, a.runRev = nil, ""
		a.mu.Unlock()
	}()

	p := pass.Pass{
		Engine:   a.engine,
		Prepared: a.prepared,
		State: func() (*reconciler.Memory, error) {
			if a.store == nil {
				// The state file could not be opened (a full or read-only
				// disk): try again, and run without it if it still cannot.
				if _, err := a.openState(cfg); err != nil {
					a.stateFault("open", err)
				}
			}
			return a.memory, nil
		},
		Held: a.heldForRun,
		Options: reconciler.RunOptions{
			Waiting:   a.windowWaiting(time.Now()),
			Root:      cfg.Root,
			Secrets:   a.secrets,
			Only:      only,
			Noop:      noop,
			Stop:      a.stopCh,
			LogResult: func(r *reconciler.Result) bool { a.wd.ping(); return a.streamResult(r) },
			Progress:  func(reconciler.ProgressUpdate) { a.wd.ping() },
		},
		Record: func(rep *reconciler.Report) error { a.recordRun(rep, trigger); return nil },
		Finish: func(res *pass.Result) {
			if res.Err != nil {
				a.logRepeated(slog.LevelError, "run", res.Err.Error(), "run", "trigger", trigger, "err", res.Err)
				return
			}
			a.runDone(res.Report, trigger)
		},
	}
	return p.Run(runCtx).Report
}

// recordRun records a run in the state file, unless the agent keeps runs
// out of it (a noop Once) or the run is a quiet poll; a fault in the state
// file is cleared by a recorded run, so a run is always recorded then.
func (a *Agent) recordRun(rep *reconciler.Report, trigger string) {
	a.mu.Lock()
	stateOK := a.node.State == nil || a.node.State.Error == ""
	wasQuiet := stateOK && a.node.Converged && a.node.AppliedRevision == rep.Revision && quiet(trigger, rep)
	a.mu.Unlock()
	if a.store != nil && !a.noRecord && !wasQuiet {
		if _, err := a.store.RecordAs(rep, trigger, a.override); err != nil {
			a.stateFault("record", err)
		} else {
			a.stateOK()
		}
	}
}

// runDone updates what the agent keeps of a run that happened: the memory,
// the view of every resource, the metrics and the status.
func (a *Agent) runDone(rep *reconciler.Report, trigger string) {
	a.repeats.clear("run")
	if len(rep.Only) == 0 && rep.Stopped == "" {
		a.lastFull = time.Now()
		a.forgetResources(rep)
	}
	if rep.Next != nil {
		a.memory = rep.Next
	}
	if len(rep.Only) == 0 {
		clear(a.view)
	}
	for _, r := range rep.Results {
		if r.Pruned && r.Outcome == reconciler.Deleted {
			delete(a.view, r.ID)
			continue
		}
		a.view[r.ID] = r
	}
	view := a.viewList()
	a.metrics.observeRun(rep, trigger)
	a.tracer.record(rep, trigger)
	a.metrics.observeView(view)
	// The directories the run created are watched before the status says
	// the run is done: a change made right after is seen.
	a.syncWatch()

	a.mu.Lock()
	wasConverged := a.node.Converged
	pending := map[reconciler.ID]bool{}
	for _, it := range a.node.PendingDestroy {
		pending[it.ID] = true
	}
	a.node.Update(rep, view, trigger, time.Now())
	n := a.node
	a.mu.Unlock()
	a.notifyRun(&n, wasConverged, pending)
	if n.Converged {
		a.metrics.converged.Set(1)
	} else {
		a.metrics.converged.Set(0)
	}
	if len(rep.Only) == 0 && rep.Stopped == "" && rep.Count(reconciler.Failed) == 0 {
		a.metrics.lastSuccess.Set(float64(time.Now().Unix()))
	}
	switch {
	case n.Converged && !wasConverged:
		a.log.Info("converged", "revision", n.AppliedRevision, "resources", len(view), "duration", rep.Duration)
	case !n.Converged && wasConverged:
		a.log.Warn("no longer converged", "revision", n.DesiredRevision, "drifted", len(n.Drifted),
			"failed", len(n.Failed), "pendingDestroy", len(n.PendingDestroy))
	}
	if rep.Stopped != "" {
		a.log.Info("run stopped early", "trigger", trigger, "reason", rep.Stopped)
	}
}

func (a *Agent) viewList() []reconciler.Result {
	out := make([]reconciler.Result, 0, len(a.view))
	for _, r := range a.view {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// afterChange publishes the status if its outcome changed, and tells
// systemd.
func (a *Agent) afterChange() {
	a.mu.Lock()
	n := a.node
	n.Updated = time.Now()
	a.mu.Unlock()
	n.Source.CheckTip(n.Updated)
	a.pub.offer(&n)
	a.notify("STATUS=" + statusLine(&n))
}

// statusLine is the one line systemctl status shows.
func statusLine(n *status.Node) string {
	var s string
	switch {
	case n.DesiredRevision == "":
		s = "no catalog yet"
	case n.Converged:
		s = "converged at " + short(n.AppliedRevision)
	default:
		s = fmt.Sprintf("not converged at %s: %d drifted, %d failed, %d pending destroy",
			short(n.DesiredRevision), len(n.Drifted), len(n.Failed), len(n.PendingDestroy))
	}
	if p := n.Pinned; p != nil {
		s = fmt.Sprintf("rolled back by hand to %s because %s; ", short(p.Revision), p.Reason) + s
	}
	if !n.Source.Reachable && !n.Source.UnreachableSince.IsZero() {
		s += "; git unreachable since " + n.Source.UnreachableSince.Format(time.RFC3339)
	}
	if n.Source.Frozen != "" {
		s += fmt.Sprintf("; source looks frozen: tip %s is %s old", short(n.Source.Tip), n.Source.TipAge.D())
	}
	if len(n.Refused) > 0 {
		s += "; refused " + short(n.Refused[0].Commit)
	}
	return s
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// syncWatch points the file watch at the current catalog.
func (a *Agent) syncWatch() {
	if a.watch == nil || a.prepared == nil {
		return
	}
	a.watch.sync(a.prepared.Catalog, a.config().Root)
	a.metrics.watches.Set(float64(a.watch.count()))
}

// cancelRunUnless cancels the run in flight unless it runs rev: a newer
// catalog is ready.
func (a *Agent) cancelRunUnless(rev string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCancel != nil && a.runRev != rev {
		a.log.Info("newer commit ready: cancelling the run in flight", "running", short(a.runRev), "newer", short(rev))
		a.runCancel()
	}
}

func (a *Agent) applyLogLevel(cfg *Config) {
	if a.opts.LogLevel == nil {
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err == nil {
		a.opts.LogLevel.Set(l)
	}
}

// openState opens the state file and reads the node's memory from it. A
// file another fsgit holds is an error. Any other failure (a full or
// read-only disk) is reported in the status and metrics, and the agent
// carries on without the file, from the inventory copy, trying again
// before each run; Meta is then the copy's.
func (a *Agent) openState(cfg *Config) (state.Meta, error) {
	store, err := state.Open(cfg.StateFile, state.Options{Timeout: a.opts.StateTimeout, OnRecover: a.stateRecovered})
	var mem *reconciler.Memory
	var meta state.Meta
	if err == nil {
		if mem, err = store.Memory(); err == nil {
			meta, err = store.Meta()
		}
		if err != nil {
			_ = store.Close()
		}
	}
	if errors.Is(err, state.ErrLocked) {
		return meta, err
	}
	if err != nil {
		a.stateFault("open", err)
		if a.memory == nil {
			c, cerr := state.ReadInventory(cfg.StateFile)
			if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
				a.log.Warn("inventory copy unreadable: running with an empty memory", "err", cerr)
			}
			a.memory = c.Memory()
			if c != nil {
				meta = state.Meta{Site: c.Site, Node: c.Node, DesiredRevision: c.DesiredRevision, AppliedRevision: c.AppliedRevision}
			}
		}
		return meta, nil
	}
	if a.store == nil && a.memory != nil {
		a.log.Info("state file open again", "file", cfg.StateFile)
	} else {
		a.memory = mem
	}
	a.mu.Lock()
	a.store = store
	a.mu.Unlock()
	a.metrics.stateUp.Set(1)
	return meta, nil
}

// stateRecovered reports a corrupt state file that was moved aside and
// replaced: a log line, the status and a metric.
func (a *Agent) stateRecovered(r state.Recovery) {
	a.log.Error("state file corrupt: moved aside; carrying on from observation", "detail", r.String())
	a.metrics.stateRecoveries.Inc()
	a.mu.Lock()
	defer a.mu.Unlock()
	sf := status.StateFile{}
	if a.node.State != nil {
		sf = *a.node.State
	}
	sf.Recoveries++
	sf.LastRecovery = &status.StateRecovery{At: r.At, Reason: r.Reason, MovedTo: r.MovedTo, Restored: r.Restored, InventoryLost: r.InventoryLost}
	a.node.State = &sf
}

// stateFault reports a state file that cannot be opened or written:
// logged when it starts or changes, counted, and in the status until a run
// is recorded again.
func (a *Agent) stateFault(op string, err error) {
	a.metrics.stateErrors.WithLabelValues(op).Inc()
	a.metrics.stateUp.Set(0)
	msg := strings.Join(strings.Fields(err.Error()), " ")
	a.mu.Lock()
	defer a.mu.Unlock()
	sf := status.StateFile{}
	if a.node.State != nil {
		sf = *a.node.State
	}
	if sf.Error != msg {
		a.log.Error("state file: the node's memory is not kept; retrying on every run", "op", op, "err", msg)
	}
	if sf.ErrorSince.IsZero() {
		sf.ErrorSince = time.Now().UTC()
	}
	sf.Error = msg
	a.node.State = &sf
}

// stateOK clears a reported state file fault after a run was recorded.
func (a *Agent) stateOK() {
	a.metrics.stateUp.Set(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node.State == nil || a.node.State.Error == "" {
		return
	}
	a.log.Info("state file: runs are recorded again", "after", time.Since(a.node.State.ErrorSince).Round(time.Second))
	sf := *a.node.State
	sf.Error, sf.ErrorSince = "", time.Time{}
	if sf.Recoveries == 0 {
		a.node.State = nil
		return
	}
	a.node.State = &sf
}

// handleHolds ends the holds whose time is up, and runs the catalog: a
// resource released converges at once, and the status shows what a new
// hold keeps.
func (a *Agent) handleHolds(ctx context.Context, trigger string) {
	a.expireHolds(time.Now())
	if a.prepared != nil {
		a.run(ctx, trigger, nil, false)
	}
	a.afterChange()
}

// windowWaiting is the reason disruptive changes wait now, "" when they
// may run: no window, in one, or overridden (fsgit run --now).
func (a *Agent) windowWaiting(now time.Time) string {
	if a.override != "" || a.prepared == nil {
		return ""
	}
	open, next := reconciler.Open(a.prepared.Catalog.Windows, now)
	switch {
	case open:
		return ""
	case next.IsZero():
		return "disruptive change waits for a maintenance window (none opens; fsgit run --now --reason runs it)"
	}
	return "disruptive change waits for the maintenance window opening " + next.UTC().Format(time.RFC3339) +
		" (fsgit run --now --reason runs it at once)"
}

// nextWindow is how long until the next maintenance window opens, when
// the catalog has windows and none is open; a run then does what waited.
func (a *Agent) nextWindow(now time.Time) (time.Duration, bool) {
	if a.prepared == nil || len(a.prepared.Catalog.Windows) == 0 {
		return 0, false
	}
	open, next := reconciler.Open(a.prepared.Catalog.Windows, now)
	if open || next.IsZero() {
		return 0, false
	}
	return next.Sub(now), true
}

// notifyRun posts the transitions a run made: converged or no longer,
// destroys newly held.
func (a *Agent) notifyRun(n *status.Node, wasConverged bool, pending map[reconciler.ID]bool) {
	if a.notifier == nil {
		return
	}
	switch {
	case wasConverged && !n.Converged:
		var ids []reconciler.ID
		for _, l := range [][]status.Item{n.Drifted, n.Failed, n.PendingDestroy} {
			for _, it := range l {
				ids = append(ids, it.ID)
			}
		}
		sev := "warning"
		if len(n.Failed) > 0 {
			sev = "critical"
		}
		a.notifier.send(a.event(EventNotConverged, sev, fmt.Sprintf("no longer converged at %s: %d drifted, %d failed, %d pending destroy",
			short(n.DesiredRevision), len(n.Drifted), len(n.Failed), len(n.PendingDestroy)), ids))
	case !wasConverged && n.Converged:
		e := a.event(EventConverged, "info", "converged at "+short(n.AppliedRevision), nil)
		e.Resolved = true
		a.notifier.send(e)
	}
	var added []reconciler.ID
	for _, it := range n.PendingDestroy {
		if !pending[it.ID] {
			added = append(added, it.ID)
		}
	}
	if len(added) > 0 {
		a.notifier.send(a.event(EventPendingDestroy, "warning",
			fmt.Sprintf("%d destructive changes held (allowDestroy is not set): %s", len(added), joinIDList(added)), added))
	}
}

func joinIDList(ids []reconciler.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

// quietOnly says what a poll observes. A poll that brings no new commit and
// serves no fsgit run, on a converged node whose file watch is running,
// observes only the resources the watch does not cover (databases,
// containers, packages, paths in unwatched directories): a change to a
// watched file is corrected when it happens. Every watch.fullCheck, and
// whenever the node is not converged, its state file is at fault or the
// applied commit is not kept yet, a poll observes everything (only is nil). skip is set when there is nothing to observe at all.
func (a *Agent) quietOnly(trigger string, served []*runWaiter) (only []reconciler.ID, skip bool) {
	// A run that finds nothing to do, quiet or full, neither reads nor
	// writes the state file: each poll checks it (one stat), so that a file
	// changed behind the agent's back (a failing disk, a hand edit, a
	// restore) is read through again, a damaged one replaced (a recovery,
	// in the status), and the poll observes everything.
	stateChanged := false
	if a.store != nil {
		changed, err := a.store.Recheck()
		if err != nil {
			a.log.Warn("state file changed behind the agent and cannot be read", "path", a.store.Path(), "err", err)
		}
		stateChanged = changed || err != nil
	}
	if trigger != "poll" || len(served) > 0 || a.watch == nil || a.prepared == nil || a.pinned != nil {
		return nil, false
	}
	full := a.config().Watch.FullCheck.D()
	if a.lastFull.IsZero() || full <= 0 || time.Since(a.lastFull) >= full {
		return nil, false
	}
	a.mu.Lock()
	converged := a.node.Converged
	stateOK := a.node.State == nil || a.node.State.Error == ""
	a.mu.Unlock()
	// A full run also retries what afterRun keeps of the applied commit
	// (its pin in the git cache, its catalog for rollback).
	rev := a.prepared.Catalog.Revision
	if !converged || !stateOK || a.store == nil || a.kept != rev || a.keptCatalog != rev {
		return nil, false
	}
	if stateChanged {
		return nil, false
	}
	ids, ok := a.watch.unwatched(a.prepared.Catalog)
	if !ok {
		return nil, false
	}
	return ids, len(ids) == 0
}

// quiet reports whether rep is a poll that found nothing to do: on a node
// that was converged on the same revision, such a run is not recorded in
// the state file (a quiet poll writes nothing). The status the agent
// serves still says when it ran (LastRun), and the state keeps the last
// run that did something.
func quiet(trigger string, rep *reconciler.Report) bool {
	if trigger != "poll" || rep.Stopped != "" || rep.Noop {
		return false
	}
	for _, r := range rep.Results {
		if r.Outcome != reconciler.Unchanged || r.Refreshed || r.Warning != "" || r.Corrective {
			return false
		}
	}
	return true
}

// checked records a poll that had nothing to observe (every resource is a
// watched file): the status's last run says when the node was last looked
// at, its counts are the last run's.
func (a *Agent) checked(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node.LastRun == nil {
		return
	}
	last := *a.node.LastRun
	last.Started, last.Duration, last.Trigger = now, 0, "poll"
	a.node.LastRun = &last
}
