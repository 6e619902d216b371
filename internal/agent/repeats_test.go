package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// TestRepeats_remind: over a day of polls every 2 s, a condition that stays
// passes once, then once per reminder interval; a change passes at once.
func TestRepeats_remind(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newRepeats(15 * time.Minute)
	r.now = func() time.Time { return now }
	lines := 0
	const polls = 43200 // a day
	for i := range polls {
		state := "held"
		if i >= polls/2 {
			state = "held, another reason"
		}
		if r.pass("resource x", state) {
			lines++
		}
		now = now.Add(2 * time.Second)
	}
	// 12 h of each state: 48 lines each (the first, then one per 15 min).
	if lines != 96 {
		t.Fatalf("%d lines over a day of polls, want 96 (one per 15 min)", lines)
	}
	if _, ok := r.clear("resource x"); !ok || !r.pass("resource x", "held") {
		t.Fatal("a condition back after it cleared does not pass at once")
	}
	r.setRemind(0)
	if !r.pass("resource x", "held") || !r.pass("resource x", "held") {
		t.Fatal("with remind 0 every line passes")
	}
}

// holdKind plans a destructive change on every run (held: the resource
// does not allow destroy); failKind fails while fail holds an error.
type holdKind struct{ plans atomic.Int64 }

func (k *holdKind) Kind() string                          { return "thold" }
func (k *holdKind) Validate(r *reconciler.Resource) error { return nil }
func (k *holdKind) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	k.plans.Add(1)
	return &reconciler.Plan{Action: reconciler.ActionUpdate,
		Changes: []reconciler.Change{{Field: "grant", Before: "SELECT", Class: reconciler.Destructive}},
		Apply:   func(context.Context) error { return errors.New("must not run") }}, nil
}

type failKind struct {
	mu   sync.Mutex
	fail error
}

func (k *failKind) Kind() string                          { return "tfail" }
func (k *failKind) Validate(r *reconciler.Resource) error { return nil }
func (k *failKind) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return &reconciler.Plan{}, k.fail
}

func (k *failKind) set(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = err
}

// TestAgent_LogsTransitionsOnly: a held destroy and a failure that stay
// over many polls are logged once each (the default reminder is 15 min),
// a new error once more, and the recovery once.
func TestAgent_LogsTransitionsOnly(t *testing.T) {
	s := newSite(t)
	res := func(id string) reconciler.Resource {
		return reconciler.Resource{ID: reconciler.ID(id), Spec: json.RawMessage(`{}`)}
	}
	s.push("held and failing", map[string]string{"n1": catalogJSON(t, res("thold:grant"), res("tfail:db"))})
	n := newNode(t, "n1", s.url, "20ms", "")
	hold, fail := &holdKind{}, &failKind{fail: errors.New("connection refused")}
	n.kinds = append(n.kinds, hold, fail)
	n.start()

	count := func(sub ...string) int {
		c := 0
		for l := range strings.SplitSeq(n.logs.String(), "\n") {
			all := true
			for _, s := range sub {
				all = all && strings.Contains(l, s)
			}
			if all {
				c++
			}
		}
		return c
	}
	polls := func(more int64) {
		t.Helper()
		want := hold.plans.Load() + more
		waitFor(t, "polls", func() bool { return hold.plans.Load() >= want })
	}
	polls(40)
	held := count("msg=resource", "id=thold:grant", "outcome=pending-destroy")
	failed := count("msg=resource", "id=tfail:db", "outcome=failed", "connection refused")
	if held != 1 || failed != 1 {
		t.Fatalf("over %d runs: %d lines for the held destroy and %d for the failure, want 1 each", hold.plans.Load(), held, failed)
	}

	fail.set(errors.New("access denied"))
	polls(20)
	if c := count("msg=resource", "id=tfail:db", "outcome=failed", "access denied"); c != 1 {
		t.Fatalf("%d lines for the new error, want 1", c)
	}

	fail.set(nil)
	polls(20)
	if c := count("resource no longer failed", "id=tfail:db"); c != 1 {
		t.Fatalf("%d recovery lines, want 1", c)
	}
	if c := count("level=INFO", "msg=resource", "id=thold:grant"); c != 1 {
		t.Fatalf("the held destroy was logged %d times in all, want 1", c)
	}
}

// TestAgent_LogsReminders: with log.remind short, a held destroy that stays
// is logged again, but not on every run.
func TestAgent_LogsReminders(t *testing.T) {
	s := newSite(t)
	s.push("held", map[string]string{"n1": catalogJSON(t, reconciler.Resource{ID: "thold:grant", Spec: json.RawMessage(`{}`)})})
	n := newNode(t, "n1", s.url, "20ms", `log: remind: "200ms"`)
	hold := &holdKind{}
	n.kinds = append(n.kinds, hold)
	n.start()
	start := time.Now()
	waitFor(t, "a second of polls", func() bool { return time.Since(start) > time.Second && hold.plans.Load() >= 20 })
	lines := strings.Count(n.logs.String(), "id=thold:grant outcome=pending-destroy")
	runs, most := hold.plans.Load(), 2+int(time.Since(start)/(200*time.Millisecond))
	// The first line, then at most one reminder per 200 ms.
	if lines < 2 || lines > most || int64(lines) >= runs {
		t.Fatalf("%d lines over %d runs, want 2 to %d: a reminder every 200ms", lines, runs, most)
	}
}
