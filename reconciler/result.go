package reconciler

import (
	"sort"
	"time"
)

// Outcome is what happened to one resource in a run.
type Outcome string

const (
	// Created: the resource did not exist and was created.
	Created Outcome = "created"
	// Changed: the resource existed and was corrected.
	Changed Outcome = "changed"
	// Unchanged: nothing to do.
	Unchanged Outcome = "unchanged"
	// Deleted: the resource was removed (pruned, or ensure absent).
	Deleted Outcome = "deleted"
	// Drifted: changes were found and not applied (noop, or detect mode).
	Drifted Outcome = "drifted"
	// Skipped: not run, because a dependency failed or the kind cannot run
	// here (see Result.Reason).
	Skipped Outcome = "skipped"
	// Failed: observing or applying failed (see Result.Error).
	Failed Outcome = "failed"
	// PendingDestroy: a destructive change was held because the resource
	// does not allow destroy. Nothing was lost.
	PendingDestroy Outcome = "pending-destroy"
)

// Result is the outcome of one resource in one run.
type Result struct {
	ID      ID       `json:"id"`
	Outcome Outcome  `json:"outcome"`
	Action  Action   `json:"action,omitempty"`
	Changes []Change `json:"changes,omitempty"`
	// Refreshed is set when a notify edge restarted or reloaded the
	// resource; in noop, when it would have.
	Refreshed bool `json:"refreshed,omitempty"`
	// RefreshedBy lists the resources whose change caused the refresh.
	RefreshedBy []ID `json:"refreshedBy,omitempty"`
	// Reason explains a skip or a pending destroy; Error a failure.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Pruned is set for resources that left the catalog.
	Pruned   bool              `json:"pruned,omitempty"`
	Observed map[string]string `json:"observed,omitempty"`
	Duration time.Duration     `json:"duration"`
}

// Report is the outcome of one run over a catalog.
type Report struct {
	Node     string        `json:"node"`
	Revision string        `json:"revision,omitempty"`
	Noop     bool          `json:"noop,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Results  []Result      `json:"results"`
}

// Count returns how many results have the given outcome.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// ExitCode returns Puppet's detailed exit code: 0 nothing changed, 2 changes
// (or, in noop, changes found), 4 failures, 6 both.
func (r *Report) ExitCode() int {
	code := 0
	for _, res := range r.Results {
		switch res.Outcome {
		case Created, Changed, Deleted, Drifted:
			code |= 2
		case Failed:
			code |= 4
		}
		if res.Refreshed {
			code |= 2
		}
	}
	return code
}

func sortStrings(s []string) { sort.Strings(s) }
