package agent

import (
	"time"

	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// StatusFromState builds what the state file knows of the node, for fsgit
// status when the agent is not running: the revisions and the last run
// (failures and pending destroys by name; drift only as a count, in
// LastRun). It opens the
// file read-only; while an agent holds it, the wait ends after timeout.
func StatusFromState(path string, timeout time.Duration) (*status.Node, error) {
	st, err := state.Open(path, state.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	meta, err := st.Meta()
	if err != nil {
		return nil, err
	}
	runs, err := st.History(0)
	if err != nil {
		return nil, err
	}
	holds, err := st.Holds()
	if err != nil {
		return nil, err
	}
	pin, err := st.Pin()
	if err != nil {
		return nil, err
	}
	n := &status.Node{
		Node:            meta.Node,
		Site:            meta.Site,
		Role:            meta.Role,
		AppliedRevision: meta.AppliedRevision,
		DesiredRevision: meta.DesiredRevision,
	}
	if pin != nil {
		n.Pinned = &status.Pin{Revision: pin.Revision, By: pin.By, Reason: pin.Reason, Since: pin.Since}
	}
	now := time.Now()
	for _, h := range holds {
		if h.Active(now) {
			n.Holds = append(n.Holds, status.Hold{ID: h.ID, By: h.By, Reason: h.Reason, Since: h.Since, Until: h.Until})
		}
	}
	if len(runs) == 0 {
		return n, nil
	}
	last := runs[0]
	n.LastRun = runFromHistory(last)
	// The lists come from the last full run, as the agent's would.
	for _, r := range runs {
		if len(r.Only) > 0 || r.Noop || r.Stopped != "" {
			continue
		}
		for _, p := range r.Problems {
			it := status.Item{ID: p.ID, Reason: p.Message}
			switch p.Outcome {
			case reconciler.Failed:
				n.Failed = append(n.Failed, it)
			case reconciler.PendingDestroy:
				n.PendingDestroy = append(n.PendingDestroy, it)
			}
		}
		// The history counts drifted resources without naming them.
		drifted := r.Summary.Outcomes[reconciler.Drifted]
		n.Converged = status.Converged(drifted, len(n.Failed), len(n.PendingDestroy), n.AppliedRevision, n.DesiredRevision)
		n.Since = r.Started
		break
	}
	return n, nil
}

func runFromHistory(r state.Run) *status.Run {
	counts := map[reconciler.Outcome]int{}
	for o, c := range r.Summary.Outcomes {
		if c > 0 {
			counts[o] = c
		}
	}
	run := &status.Run{Revision: r.Revision, Started: r.Started, Duration: r.Duration, Counts: counts, ExitCode: r.ExitCode}
	switch {
	case len(r.Only) > 0:
		run.Trigger = "watch"
	case r.Noop:
		run.Trigger = "noop"
	}
	if r.Stopped != "" {
		run.Error = "stopped: " + r.Stopped
	}
	return run
}
