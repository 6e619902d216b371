package reconciler

import (
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
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
	Pruned bool `json:"pruned,omitempty"`
	// Corrective is set when the changes correct drift: the desired state
	// is the one last applied, and the observed state moved since fsgit
	// last saw it converged (Puppet's corrective change).
	Corrective bool `json:"corrective,omitempty"`
	// Warning notes something that did not fail the resource, such as an
	// apply after which the resource still differs.
	Warning string `json:"warning,omitempty"`
	// Observed is the observed state after the run: after the apply when
	// the resource was changed, as planned otherwise.
	Observed map[string]string `json:"observed,omitempty"`
	// Duration is how long the resource took (in JSON, seconds).
	Duration jsondoc.Seconds `json:"duration,omitzero"`
}

// Report is the outcome of one run over a catalog.
type Report struct {
	Site     string `json:"site,omitempty"`
	Node     string `json:"node"`
	Role     string `json:"role,omitempty"`
	Revision string `json:"revision,omitempty"`
	Noop     bool   `json:"noop,omitempty"`
	// Started is when the run started; Duration how long it took (in
	// JSON, seconds).
	Started  time.Time       `json:"started,omitzero"`
	Duration jsondoc.Seconds `json:"duration,omitzero"`
	// Only is set when the run covered only these resources and the
	// resources that depend on them; such a run prunes nothing.
	Only []ID `json:"only,omitempty"`
	// Stopped says why the run ended before every resource was handled
	// (cancelled, or asked to stop); the rest are skipped.
	Stopped string   `json:"stopped,omitempty"`
	Results []Result `json:"results"`
	// Next is what the node should remember after this run (inventory and
	// last observed states), for internal/state to persist. It is nil in
	// noop, where nothing is remembered.
	Next *Memory `json:"-"`
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

// dropOwnID removes the resource's own ID from its error and reason: the
// report and the log print the ID next to them already (kinds wrap their
// errors as "plan <id>: ...", for their callers other than the engine).
// The engine calls it once an outcome is final.
func (r *Result) dropOwnID() {
	r.Error, r.Reason = withoutID(r.ID, r.Error), withoutID(r.ID, r.Reason)
}

// withoutID returns msg without the mentions of id that kinds put in their
// errors ("plan file:/etc/x: ...", "check guards of exec:y: ..."), and
// without the step name that wrapping then repeats ("apply: apply: ..."
// becomes "apply: ..."). It keeps id where it is part of a sentence.
func withoutID(id ID, msg string) string {
	s := string(id)
	if s == "" || !strings.Contains(msg, s) {
		return msg
	}
	msg = strings.TrimPrefix(msg, s+": ")
	msg = strings.ReplaceAll(msg, " of "+s+": ", ": ")
	msg = strings.ReplaceAll(msg, " "+s+": ", ": ")
	parts := strings.Split(msg, ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}
