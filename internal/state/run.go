package state

import (
	"encoding/json"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// maxRunProblems caps how many failed or held resources a history entry
// names, and maxErrorLen the length of each error kept.
const (
	maxRunProblems = 20
	maxErrorLen    = 400
	// maxRunChanges caps how many changed resources an entry names.
	maxRunChanges = 100
)

// Run is one entry of the run history: when, what revision, how it went.
type Run struct {
	Seq     uint64    `json:"seq"`
	Started time.Time `json:"started,omitzero"`
	// Duration is how long the run took, in seconds under
	// "durationSeconds" (entries written before were in nanoseconds under
	// "duration": see UnmarshalJSON).
	Duration jsondoc.Seconds `json:"durationSeconds,omitzero"`
	Revision string          `json:"revision,omitempty"`
	// Trigger is what started the run (status.Run's values); unset for
	// fsgit apply and entries written before it was kept.
	Trigger string `json:"trigger,omitempty"`
	// Note is an operator's reason recorded with the run (fsgit run --now
	// --reason: the maintenance window overridden).
	Note     string             `json:"note,omitempty"`
	Noop     bool               `json:"noop,omitempty"`
	Only     []reconciler.ID    `json:"only,omitempty"`
	Stopped  string             `json:"stopped,omitempty"`
	ExitCode int                `json:"exitCode"`
	Summary  reconciler.Summary `json:"summary"`
	// Problems names the failed and pending-destroy resources (at most
	// maxRunProblems), with the reason.
	Problems []Problem `json:"problems,omitempty"`
	// Changed names the resources the run changed, created, deleted or
	// refreshed (in noop: would have), at most maxRunChanges, and why.
	Changed []ResourceChange `json:"changed,omitempty"`
	// MoreChanged counts the changed resources past maxRunChanges.
	MoreChanged int `json:"moreChanged,omitempty"`
}

// Why a resource changed in a run.
const (
	// BecauseCommit: the desired state changed (a new commit, or the
	// first run).
	BecauseCommit = "commit"
	// BecauseDrift: the node moved away from the state last applied, and
	// the run corrected it.
	BecauseDrift = "drift"
	// BecauseRefresh: a notify edge restarted or reloaded it.
	BecauseRefresh = "refresh"
	// BecausePrune: it left the catalog.
	BecausePrune = "prune"
)

// ResourceChange is one resource a run changed: its outcome, why, and
// how many fields changed.
type ResourceChange struct {
	ID      reconciler.ID      `json:"id"`
	Outcome reconciler.Outcome `json:"outcome"`
	Why     string             `json:"why"`
	Fields  int                `json:"fields,omitempty"`
}

// Problem is a failed or held resource in a run.
type Problem struct {
	ID      reconciler.ID      `json:"id"`
	Outcome reconciler.Outcome `json:"outcome"`
	Message string             `json:"message"`
}

// UnmarshalJSON reads a history entry, an older one too: its duration was
// an integer of nanoseconds under "duration".
func (r *Run) UnmarshalJSON(b []byte) error {
	type plain Run
	var v struct {
		plain
		Nanoseconds int64 `json:"duration"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Run(v.plain)
	if r.Duration == 0 {
		r.Duration = jsondoc.Seconds(v.Nanoseconds)
	}
	return nil
}

// newRun summarizes a report for the history.
func newRun(rep *reconciler.Report, trigger, note string) Run {
	r := Run{
		Trigger:  trigger,
		Note:     note,
		Started:  rep.Started,
		Duration: rep.Duration,
		Revision: rep.Revision,
		Noop:     rep.Noop,
		Only:     rep.Only,
		Stopped:  rep.Stopped,
		ExitCode: rep.ExitCode(),
		Summary:  rep.Summary(),
	}
	for _, res := range rep.Results {
		var why string
		switch {
		case res.Outcome != reconciler.Created && res.Outcome != reconciler.Changed && res.Outcome != reconciler.Deleted &&
			res.Outcome != reconciler.Drifted && !res.Refreshed:
		case res.Pruned:
			why = BecausePrune
		case res.Corrective:
			why = BecauseDrift
		case res.Outcome == reconciler.Unchanged || res.Outcome == reconciler.Drifted && len(res.Changes) == 0:
			why = BecauseRefresh
		default:
			why = BecauseCommit
		}
		if why != "" && len(r.Changed) < maxRunChanges {
			r.Changed = append(r.Changed, ResourceChange{ID: res.ID, Outcome: res.Outcome, Why: why, Fields: len(res.Changes)})
		} else if why != "" {
			r.MoreChanged++
		}
	}
	for _, res := range rep.Results {
		if len(r.Problems) == maxRunProblems {
			break
		}
		var msg string
		switch res.Outcome {
		case reconciler.Failed:
			msg = res.Error
		case reconciler.PendingDestroy:
			msg = res.Reason
		default:
			continue
		}
		if len(msg) > maxErrorLen {
			msg = msg[:maxErrorLen] + "…"
		}
		r.Problems = append(r.Problems, Problem{ID: res.ID, Outcome: res.Outcome, Message: msg})
	}
	return r
}
