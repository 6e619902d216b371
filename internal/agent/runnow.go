package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/reconciler"
)

// RunPath asks the agent to poll and converge now (POST, a [RunRequest] as
// JSON); the answer streams [RunEvent]s as JSON lines while the run goes.
const RunPath = "/v1/run"

// RunRequest is what fsgit run asks of the agent.
type RunRequest struct {
	// Noop observes the catalog in force and changes nothing; it does not
	// poll (a poll that finds a new commit applies it).
	Noop bool `json:"noop,omitempty"`
	// Now runs disruptive changes outside the maintenance window; Reason
	// says why, and is recorded.
	Now    bool   `json:"now,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Resource, when set, asks for a diff of that resource alone: observed
	// against desired, nothing changed, nothing recorded (fsgit diff).
	Resource reconciler.ID `json:"resource,omitempty"`
	// Rollback, when set, re-applies a kept catalog and pins the node to
	// it, or releases the pin (fsgit rollback).
	Rollback *RollbackRequest `json:"rollback,omitempty"`
}

// RunEvent is one line of the answer to a [RunRequest]: a resource's
// result as it is known, a note, then the report (and its exit code) or
// an error.
type RunEvent struct {
	Result *reconciler.Result `json:"result,omitempty"`
	Note   string             `json:"note,omitempty"`
	Report *reconciler.Report `json:"report,omitempty"`
	// ExitCode is Puppet's detailed exit code of the report.
	ExitCode int    `json:"exitCode,omitempty"`
	Error    string `json:"error,omitempty"`
}

// runWaiter is a run request waiting in the apply loop for its run.
type runWaiter struct {
	req RunRequest
	// after is the number of polls started when the request came: the
	// request is served by a poll started after it.
	after  uint64
	events chan RunEvent
	// dropped counts results that did not fit in events.
	dropped int
}

// runEventBuffer bounds the results queued for one slow reader; a run
// never waits on a reader.
const runEventBuffer = 4096

func (w *runWaiter) send(ev RunEvent) {
	select {
	case w.events <- ev:
	default:
		w.dropped++
	}
}

// finish sends the last event and closes the stream. The last event
// always gets through: it waits for room.
func (w *runWaiter) finish(ev RunEvent) {
	if w.dropped > 0 && ev.Report != nil {
		ev.Note = fmt.Sprintf("%d results were not streamed (the reader was slow); the report has them all", w.dropped)
	}
	go func() {
		w.events <- ev
		close(w.events)
	}()
}

// requestRun hands a request to the apply loop. It fails when the agent
// stops first.
func (a *Agent) requestRun(ctx context.Context, req RunRequest) (*runWaiter, error) {
	w := &runWaiter{req: req, events: make(chan RunEvent, runEventBuffer)}
	select {
	case a.runReqs <- w:
		return w, nil
	case <-a.stopCh:
		return nil, errors.New("the agent is stopping")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// takeRunRequest is the apply loop's side: a noop request runs at once on
// the catalog in force; any other waits for a poll started after it, which
// is asked for now.
func (a *Agent) takeRunRequest(ctx context.Context, w *runWaiter) {
	if w.req.Now && w.req.Reason == "" {
		w.finish(RunEvent{Error: "--now needs a reason (--reason): it is recorded"})
		return
	}
	if w.req.Rollback != nil {
		a.takeRollback(ctx, w)
		return
	}
	if w.req.Noop || w.req.Resource != "" {
		if a.prepared == nil {
			w.finish(RunEvent{Error: "the agent has no catalog yet: no commit was accepted"})
			return
		}
		if w.req.Resource != "" {
			rep, err := a.diff(ctx, w.req.Resource)
			if err != nil {
				w.finish(RunEvent{Error: err.Error()})
				return
			}
			a.finishRun(w, rep)
			return
		}
		a.listeners = []*runWaiter{w}
		rep := a.run(ctx, "run", nil, true)
		a.listeners = nil
		a.finishRun(w, rep)
		return
	}
	a.mu.Lock()
	w.after = a.pollsStarted
	a.mu.Unlock()
	a.waiting = append(a.waiting, w)
	select {
	case a.pollPoke <- struct{}{}:
	default:
	}
}

// servedBy returns the waiting requests the poll ev serves, and keeps the
// others waiting.
func (a *Agent) servedBy(ev *pollEvent) []*runWaiter {
	var served, still []*runWaiter
	for _, w := range a.waiting {
		if ev.seq > w.after {
			served = append(served, w)
		} else {
			still = append(still, w)
		}
	}
	a.waiting = still
	return served
}

func (a *Agent) finishRun(w *runWaiter, rep *reconciler.Report) {
	if rep == nil {
		w.finish(RunEvent{Error: "the run could not start (see the agent's log)"})
		return
	}
	w.finish(RunEvent{Report: rep, ExitCode: rep.ExitCode()})
}

// streamResult is the run's LogResult: it streams each result to the
// requests the run serves, then asks the agent's log.
func (a *Agent) streamResult(res *reconciler.Result) bool {
	for _, w := range a.listeners {
		r := *res
		w.send(RunEvent{Result: &r})
	}
	return a.logResult(res)
}

// abandonWaiting answers the requests still waiting when the agent stops.
func (a *Agent) abandonWaiting() {
	for _, w := range a.waiting {
		w.finish(RunEvent{Error: "the agent stopped before the run"})
	}
	a.waiting = nil
}

// serveRun answers POST RunPath: the request's events as JSON lines,
// flushed one by one.
func (a *Agent) serveRun(w http.ResponseWriter, r *http.Request) {
	var req RunRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad run request: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if req.Rollback != nil {
		req.Rollback.By = operator(r, req.Rollback.By)
	}
	waiter, err := a.requestRun(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	if flusher != nil {
		flusher.Flush()
	}
	for ev := range waiter.events {
		if err := enc.Encode(ev); err != nil {
			// The reader left; the run goes on. Drain so that nothing waits.
			for range waiter.events {
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// diff observes one resource of the catalog in force against its desired
// state: a noop run of it alone, not recorded.
func (a *Agent) diff(ctx context.Context, id reconciler.ID) (*reconciler.Report, error) {
	if a.prepared.Catalog.Lookup(id) == nil {
		return nil, fmt.Errorf("%s is not in the catalog of %s", id, short(a.prepared.Catalog.Revision))
	}
	was := a.noRecord
	a.noRecord = true
	defer func() { a.noRecord = was }()
	rep := a.run(ctx, "diff", []reconciler.ID{id}, true)
	if rep == nil {
		return nil, errors.New("the diff could not run (see the agent's log)")
	}
	return rep, nil
}

// HistoryPath returns the runs the state keeps, newest first, as JSON
// (GET; ?n= bounds how many).
const HistoryPath = "/v1/history"

func (a *Agent) serveHistory(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.URL.Query().Get("n"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			http.Error(w, "bad n: want a count", http.StatusBadRequest)
			return
		}
	}
	a.mu.Lock()
	st := a.store
	a.mu.Unlock()
	if st == nil {
		http.Error(w, "the state file is not open (see the status)", http.StatusServiceUnavailable)
		return
	}
	runs, err := st.History(n)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if runs == nil {
		runs = []state.Run{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(runs)
}
