package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

// TestRun_overSocket: fsgit run's request makes an agent that polls once
// an hour poll now, apply the new commit, and stream each result before
// the report; a second request finds nothing to do; a noop request
// reports drift and changes nothing.
func TestRun_overSocket(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	// No file watch: the drift the noop run reports must stay.
	n := newNode(t, "n1", s.url, "1h", "watch: enabled: false")
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	waitFor(t, "the first run recorded", func() bool { return n.agent.Status().AppliedRevision == c1 })

	c2 := s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v2\n"))})
	cl := NewClient(n.sock)
	var events []RunEvent
	last, err := cl.Run(context.Background(), RunRequest{}, func(ev RunEvent) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if last.Report == nil || last.Report.Revision != c2 || last.ExitCode != 2 {
		t.Fatalf("last event = %+v, want the report of c2 with exit 2", last)
	}
	if n.read("/etc/app/app.conf") != "v2\n" {
		t.Fatal("the run did not apply c2")
	}
	if len(events) < 2 || events[0].Result == nil || events[0].Result.ID != "file:/etc/app/app.conf" || events[0].Result.Outcome != reconciler.Changed {
		t.Fatalf("events = %+v, want the file's result streamed before the report", events)
	}
	if got := n.agent.Status().LastRun.Trigger; got != "run+commit" {
		t.Errorf("trigger = %q, want run+commit", got)
	}

	last, err = cl.Run(context.Background(), RunRequest{}, nil)
	if err != nil || last.Report == nil || last.ExitCode != 0 {
		t.Fatalf("second run = %+v, %v; want exit 0", last, err)
	}

	if err := os.WriteFile(n.path("/etc/app/app.conf"), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	last, err = cl.Run(context.Background(), RunRequest{Noop: true}, nil)
	if err != nil || last.Report == nil || !last.Report.Noop || last.ExitCode != 2 {
		t.Fatalf("noop run = %+v, %v; want a noop report with exit 2", last, err)
	}
	if got := n.read("/etc/app/app.conf"); got != "local\n" {
		t.Fatalf("noop changed the file to %q", got)
	}
}

// TestOnce_noAgent: without an agent, Once polls, applies and records
// one run; with git down it runs the last applied commit from the cache;
// while an agent runs, it reports the lock.
func TestOnce_noAgent(t *testing.T) {
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "1h", "")
	once := func(noop bool) (*reconciler.Report, error) {
		t.Helper()
		cfg, err := LoadConfig(schema.Files(), n.cfgFile)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(Options{Config: cfg, Registry: reconciler.NewRegistry(n.kinds...), Load: n.load, Log: slog.New(slog.NewTextHandler(n.logs, nil)), StateTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return a.Once(context.Background(), RunRequest{Noop: noop})
	}
	rep, err := once(false)
	if err != nil || rep.Revision != c1 || rep.ExitCode() != 2 || n.read("/etc/app/app.conf") != "v1\n" {
		t.Fatalf("once = %+v, %v", rep, err)
	}
	st, err := state.Open(n.stateDir+"/state.db", state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.History(0)
	_ = st.Close()
	if err != nil || len(runs) != 1 || runs[0].Revision != c1 {
		t.Fatalf("history = %+v, %v; want one run of c1", runs, err)
	}

	s.srv.Stop()
	if err := os.WriteFile(n.path("/etc/app/app.conf"), []byte("drift\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = once(true)
	if err != nil || rep.Revision != c1 || !rep.Noop || rep.ExitCode() != 2 || n.read("/etc/app/app.conf") != "drift\n" {
		t.Fatalf("noop once with git down = %+v, %v", rep, err)
	}
	rep, err = once(false)
	if err != nil || rep.Revision != c1 || n.read("/etc/app/app.conf") != "v1\n" {
		t.Fatalf("once with git down = %+v, %v", rep, err)
	}

	n.start()
	waitFor(t, "the agent's socket", func() bool { _, err := os.Stat(n.sock); return err == nil })
	if _, err := once(false); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("once beside an agent = %v, want ErrLocked", err)
	}
}
