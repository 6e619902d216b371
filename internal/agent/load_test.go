package agent

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fsgit/fsgit/internal/desired"
)

// slowSite is a site whose evaluation takes seconds (a comprehension over
// 30^3 values).
const slowSite = `package slow

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "slow"
roles: db: profiles: []
nodes: "n1": role: "db"
_l: [for i, _ in [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] {i}]
nodes: "n1": data: _y: [for a in _l for b in _l for c in _l {a + b + c}]
`

// TestSiteLoader_Overrun: the agent's loader refuses a commit that
// overruns its budget at the budget, asks for a restart when the
// abandoned evaluation still runs after the grace period, and, started
// again, refuses the commit without evaluating it, unless the budget was
// raised.
func TestSiteLoader_Overrun(t *testing.T) {
	cfg := &Config{StateFile: filepath.Join(t.TempDir(), "state.db")}
	cfg.Limits.EvalTimeout = Duration(100 * time.Millisecond)
	restarted := make(chan error, 1)
	l := &siteLoader{
		config:  func() *Config { return cfg },
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		restart: func(err error) { restarted <- err },
		grace:   50 * time.Millisecond,
	}
	fsys := fstest.MapFS{"sites/slow/site.cue": {Data: []byte(slowSite)}}

	start := time.Now()
	_, err := l.load(t.Context(), fsys, "sites/slow", "c0ffee", "n1")
	var be *desired.BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BudgetError", err)
	}
	t.Logf("refused after %s: %v", time.Since(start), err)
	select {
	case err := <-restarted:
		t.Logf("restart: %v", err)
		if !strings.Contains(err.Error(), "commit c0ffee overran its budget of 100ms") {
			t.Fatalf("restart reason: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no restart while the abandoned evaluation runs")
	}

	// Started again: the same commit is refused at once.
	l2 := *l
	start = time.Now()
	_, err = l2.load(t.Context(), fsys, "sites/slow", "c0ffee", "n1")
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "time budget of 100ms") || !strings.Contains(err.Error(), "refused without evaluating it again") {
		t.Fatalf("second load: %v", err)
	}
	t.Logf("refused again in %s", took)
	// Another commit is evaluated (with a budget that the abandoned
	// evaluation, still holding a CPU, does not make it overrun).
	cfg.Limits.EvalTimeout = Duration(time.Minute)
	quick := fstest.MapFS{"sites/slow/site.cue": {Data: []byte(strings.Replace(slowSite, "for c in _l {a + b + c}", "{a + b}", 1))}}
	if _, err := l2.load(t.Context(), quick, "sites/slow", "beef", "n1"); err != nil {
		t.Fatalf("another commit: %v", err)
	}
	// A raised budget evaluates the commit again.
	if _, err := l2.load(t.Context(), fsys, "sites/slow", "c0ffee", "n1"); err != nil {
		t.Fatalf("with a raised budget: %v", err)
	}
}
