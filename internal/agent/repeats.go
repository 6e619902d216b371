package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// repeats keeps the agent's log to what changes. The agent runs its
// catalog on every poll, so a held destroy, a failure or drift left alone
// (detect mode) would log the same line every few seconds, forever. A line
// about a topic passes when what it says differs from the last line that
// passed, and again once every remind while it stays the same.
type repeats struct {
	mu     sync.Mutex
	remind time.Duration
	now    func() time.Time
	last   map[string]repeated
}

type repeated struct {
	state string
	at    time.Time
}

func newRepeats(remind time.Duration) *repeats {
	return &repeats{remind: remind, now: time.Now, last: map[string]repeated{}}
}

// setRemind changes the reminder interval (on reload).
func (r *repeats) setRemind(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remind = d
}

// pass reports whether a line saying state about topic is to be logged:
// when state is new for the topic, or the last line passed remind ago or
// more.
func (r *repeats) pass(topic, state string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if prev, ok := r.last[topic]; ok && prev.state == state && now.Sub(prev.at) < r.remind {
		return false
	}
	r.last[topic] = repeated{state: state, at: now}
	return true
}

// clear forgets topic and returns the state last logged about it, if any.
func (r *repeats) clear(topic string) (was string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.last[topic]
	delete(r.last, topic)
	return prev.state, ok
}

// keepOnly forgets the topics with the given prefix that keep does not
// hold (resources that left the catalog).
func (r *repeats) keepOnly(prefix string, keep func(topic string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.last {
		if strings.HasPrefix(t, prefix) && !keep(t) {
			delete(r.last, t)
		}
	}
}

// resourceTopic is the topic of a resource's outcome lines.
const resourceTopic = "resource "

// logResult is the engine's [reconciler.RunOptions.LogResult] for the
// agent: an action (created, changed, deleted, refreshed) is always
// logged; an outcome that repeats from run to run (pending destroy,
// failed, drifted, a warning) when it appears or changes, and as a
// reminder; a resource that gets over one is logged once, at info.
func (a *Agent) logResult(res *reconciler.Result) bool {
	topic := resourceTopic + string(res.ID)
	switch {
	case res.Refreshed, res.Outcome == reconciler.Created, res.Outcome == reconciler.Changed, res.Outcome == reconciler.Deleted:
		a.repeats.clear(topic)
		return true
	case res.Outcome == reconciler.Skipped && res.Warning == "":
		return true // at debug level, and follows the failure it is due to
	case res.Outcome == reconciler.Unchanged && res.Warning == "":
		if was, ok := a.repeats.clear(topic); ok {
			outcome, _, _ := strings.Cut(was, "\x00")
			a.log.Info("resource no longer "+outcome, "id", string(res.ID))
		}
		return true // at debug level
	}
	return a.repeats.pass(topic, strings.Join([]string{string(res.Outcome), res.Reason, res.Error, res.Warning}, "\x00"))
}

// forgetResources drops what the log remembers of resources a full run
// did not see.
func (a *Agent) forgetResources(rep *reconciler.Report) {
	seen := make(map[string]bool, len(rep.Results))
	for _, r := range rep.Results {
		seen[resourceTopic+string(r.ID)] = true
	}
	a.repeats.keepOnly(resourceTopic, func(t string) bool { return seen[t] })
}

// logRepeated logs msg at level about topic, unless the same was logged
// less than remind ago; state is what identifies "the same".
func (a *Agent) logRepeated(level slog.Level, topic, state, msg string, args ...any) {
	if a.repeats.pass(topic, state) {
		a.log.Log(context.Background(), level, msg, args...)
	}
}
