package reconciler

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultProgressEvery is how often a long step's progress is logged.
const DefaultProgressEvery = 5 * time.Second

// Units of [ProgressUpdate.Unit].
const (
	// UnitBytes counts bytes (downloads, image layers).
	UnitBytes = "bytes"
	// UnitPercent counts hundredths of the step (apt's status).
	UnitPercent = "percent"
	// UnitSteps counts items (migrations, build steps).
	UnitSteps = "steps"
)

// ProgressUpdate is one report of a long step of a resource while it runs.
type ProgressUpdate struct {
	// ID is the resource; Step what runs ("download", "apt-get install",
	// "pull", "migrations").
	ID   ID
	Step string
	// Done of Total, in Unit; Total is 0 when unknown.
	Done, Total int64
	Unit        string
	// Message is the step's own last word: apt's status line, the
	// registry's status of a layer, the migration in hand.
	Message string
	// Elapsed is the time since the step started.
	Elapsed time.Duration
	// Finished is set by the last update of a step.
	Finished bool
}

// Progress reports a long step of one resource while it runs: every
// update goes to the run's progress sink (a terminal line, the agent's
// watchdog), and the latest one to the run's log every
// [DefaultProgressEvery] while the step runs — so a step that takes
// minutes shows in the log as it goes, and a short one does not show at
// all. Make one with [Env.StartProgress]; call Finish when the step ends.
// Its methods may be called from several goroutines.
type Progress struct {
	sink  func(ProgressUpdate)
	log   *slog.Logger
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	last   ProgressUpdate
	logged bool
	ended  bool
}

// StartProgress starts reporting step of resource id. The reporter logs
// through e.Log and sends to e.OnProgress; with neither it does nothing.
func (e *Env) StartProgress(id ID, step string) *Progress {
	every := e.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	p := &Progress{sink: e.OnProgress, log: e.Log, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	p.last = ProgressUpdate{ID: id, Step: step}
	if p.log == nil {
		close(p.done)
		return p
	}
	go p.tick(every)
	return p
}

// tick logs the latest update every interval until Finish.
func (p *Progress) tick(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			u := p.last
			p.logged = true
			p.mu.Unlock()
			u.Elapsed = time.Since(p.start)
			p.log.Info("in progress", progressAttrs(u)...)
		}
	}
}

// progressAttrs are the log attributes of u: durations in seconds, unset
// fields left out. The resource is not among them: the run's logger of a
// resource already names it.
func progressAttrs(u ProgressUpdate) []any {
	attrs := []any{"step", u.Step, "elapsed", u.Elapsed.Round(time.Millisecond).Seconds()}
	if u.Done > 0 || u.Total > 0 {
		attrs = append(attrs, "done", u.Done)
	}
	if u.Total > 0 {
		attrs = append(attrs, "total", u.Total)
	}
	if u.Unit != "" && (u.Done > 0 || u.Total > 0) {
		attrs = append(attrs, "unit", u.Unit)
	}
	if u.Message != "" {
		attrs = append(attrs, "message", u.Message)
	}
	return attrs
}

// Update reports done of total (total 0: unknown) in unit, with the
// step's own message (may be empty: the last one is kept).
func (p *Progress) Update(done, total int64, unit, message string) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.last.Done, p.last.Total, p.last.Unit = done, total, unit
	if message != "" {
		p.last.Message = message
	}
	u := p.last
	p.mu.Unlock()
	if p.sink != nil {
		u.Elapsed = time.Since(p.start)
		p.sink(u)
	}
}

// Bytes reports a transfer: done bytes of total (total < 1: unknown).
func (p *Progress) Bytes(done, total int64) { p.Update(done, max(total, 0), UnitBytes, "") }

// Finish ends the step: it stops the log and sends a last update marked
// Finished. A step that was logged while it ran is logged once more as
// finished, so that the log shows where it ended. Later calls do nothing.
func (p *Progress) Finish() {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.ended = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	u, logged := p.last, p.logged
	p.mu.Unlock()
	u.Elapsed, u.Finished = time.Since(p.start), true
	if logged {
		p.log.Info("step finished", progressAttrs(u)...)
	}
	if p.sink != nil {
		p.sink(u)
	}
}
