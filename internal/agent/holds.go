package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// API paths for holds (POST, JSON; the answer is a [HoldAnswer]).
const (
	// HoldPath places holds: a [HoldRequest].
	HoldPath = "/v1/hold"
	// ReleasePath ends holds before their time: a [ReleaseRequest].
	ReleasePath = "/v1/release"
)

// HoldRequest asks for a hold on resources, or on the whole node.
type HoldRequest struct {
	IDs  []reconciler.ID `json:"ids,omitempty"`
	Node bool            `json:"node,omitempty"`
	// For is how long the hold lasts (in JSON, seconds); at most the
	// site's operations.maxHold.
	For    jsondoc.Seconds `json:"forSeconds,omitzero"`
	Reason string          `json:"reason"`
	By     string          `json:"by"`
}

// ReleaseRequest ends holds: on the resources named, on the node, or all.
type ReleaseRequest struct {
	IDs  []reconciler.ID `json:"ids,omitempty"`
	Node bool            `json:"node,omitempty"`
	All  bool            `json:"all,omitempty"`
	By   string          `json:"by"`
}

// HoldAnswer is what the agent did: the holds in force after the request,
// and those it ended.
type HoldAnswer struct {
	Holds    []state.Hold `json:"holds"`
	Released []state.Hold `json:"released,omitempty"`
}

// maxHold is the longest hold the catalog in force allows.
func maxHold(c *reconciler.Catalog) time.Duration {
	if c != nil && c.MaxHold > 0 {
		return c.MaxHold.D()
	}
	return reconciler.DefaultMaxHold
}

// NewHolds checks a hold request against the catalog (nil: none known)
// and makes its holds, from now.
func NewHolds(req HoldRequest, cat *reconciler.Catalog, now time.Time) ([]state.Hold, error) {
	switch {
	case req.Node == (len(req.IDs) > 0):
		return nil, errors.New("hold resources by ID, or the whole node, not both nor neither")
	case req.Reason == "":
		return nil, errors.New("a hold needs a reason")
	case req.By == "":
		return nil, errors.New("a hold needs who places it")
	case req.For <= 0:
		return nil, errors.New("a hold needs a duration (--for), and always ends")
	case req.For.D() > maxHold(cat):
		return nil, fmt.Errorf("a hold may last %s at most on this site (operations.maxHold), not %s", maxHold(cat), req.For.D())
	}
	ids := req.IDs
	if req.Node {
		ids = []reconciler.ID{""}
	}
	var out []state.Hold
	for _, id := range ids {
		if cat != nil && id != "" && cat.Lookup(id) == nil {
			return nil, fmt.Errorf("%s is not in the catalog of %s", id, short(cat.Revision))
		}
		out = append(out, state.Hold{ID: id, By: req.By, Reason: req.Reason, Since: now.UTC(), Until: now.Add(req.For.D()).UTC()})
	}
	return out, nil
}

// MergeHolds adds holds to the list, replacing holds on the same target.
func MergeHolds(list, add []state.Hold) []state.Hold {
	out := slices.DeleteFunc(slices.Clone(list), func(h state.Hold) bool {
		return slices.ContainsFunc(add, func(n state.Hold) bool { return n.ID == h.ID })
	})
	out = append(out, add...)
	slices.SortFunc(out, func(a, b state.Hold) int { return cmpID(a.ID, b.ID) })
	return out
}

// ReleaseHolds splits the list into the holds kept and those req ends.
func ReleaseHolds(list []state.Hold, req ReleaseRequest) (kept, released []state.Hold) {
	for _, h := range list {
		if req.All || (req.Node && h.ID == "") || slices.Contains(req.IDs, h.ID) {
			released = append(released, h)
		} else {
			kept = append(kept, h)
		}
	}
	return kept, released
}

func cmpID(a, b reconciler.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadHolds reads the holds from the state file at start.
func (a *Agent) loadHolds() {
	if a.store == nil {
		return
	}
	hs, err := a.store.Holds()
	if err != nil {
		a.log.Error("read holds: the node starts with none", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holds = hs
	// The status and metrics show them from the start.
	if err := a.setHoldsLocked(hs); err != nil {
		a.log.Warn("write holds", "err", err)
	}
}

// setHoldsLocked replaces the holds, keeps them in the state file, and updates
// the status and metrics. Called with a.mu held.
func (a *Agent) setHoldsLocked(hs []state.Hold) error {
	var err error
	if a.store != nil {
		err = a.store.SetHolds(hs)
	} else {
		err = errors.New("the state file is not open: the hold would not survive a restart")
	}
	if err != nil {
		return err
	}
	a.holds = hs
	a.node.Holds = nil
	a.metrics.holdUntil.Reset()
	for _, h := range hs {
		a.node.Holds = append(a.node.Holds, status.Hold{ID: h.ID, By: h.By, Reason: h.Reason, Since: h.Since, Until: h.Until})
		label := string(h.ID)
		if label == "" {
			label = "node"
		}
		a.metrics.holdUntil.WithLabelValues(label).Set(float64(h.Until.Unix()))
	}
	return nil
}

// expireHolds ends the holds whose time is up, and reports whether any
// did. A hold longer than the catalog now allows is cut to it.
func (a *Agent) expireHolds(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	limit := maxHold(a.current)
	var kept []state.Hold
	changed := false
	for _, h := range a.holds {
		if end := h.Since.Add(limit); h.Until.After(end) {
			a.log.Warn("hold longer than the site allows: cut", "id", h.ID, "until", end, "maxHold", limit)
			h.Until, changed = end, true
		}
		if h.Active(now) {
			kept = append(kept, h)
			continue
		}
		changed = true
		a.metrics.holdsExpired.Inc()
		a.log.Info("hold expired", "id", h.ID, "by", h.By, "reason", h.Reason, "since", h.Since)
		var ids []reconciler.ID
		if h.ID != "" {
			ids = []reconciler.ID{h.ID}
		}
		a.notifier.send(Event{Kind: EventHoldEnded, Severity: "info", Node: a.node.Node, Site: a.node.Site, Role: a.node.Role,
			Revision: a.node.DesiredRevision, Summary: fmt.Sprintf("%s released at its end (placed by %s: %s): changes apply again", holdTarget(h.ID), h.By, h.Reason),
			Resources: ids, At: now.UTC()})
	}
	if !changed {
		return false
	}
	if err := a.setHoldsLocked(kept); err != nil {
		a.log.Error("write holds", "err", err)
		a.holds = kept
	}
	return true
}

// heldForRun returns the hold sentence of each held resource of the
// catalog, and whether pruning must wait (the node, or a resource not in
// the catalog, is held).
func (a *Agent) heldForRun(cat *reconciler.Catalog) (map[reconciler.ID]string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return state.HeldFor(a.holds, cat, time.Now())
}

// nextHoldEnd is how long until the first hold ends; ok is false with no
// hold.
func (a *Agent) nextHoldEnd(now time.Time) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.holds) == 0 {
		return 0, false
	}
	first := a.holds[0].Until
	for _, h := range a.holds[1:] {
		if h.Until.Before(first) {
			first = h.Until
		}
	}
	return max(first.Sub(now), 0), true
}

func (a *Agent) serveHold(w http.ResponseWriter, r *http.Request) {
	var req HoldRequest
	if !decodeBody(w, r, &req) {
		return
	}
	req.By = operator(r, req.By)
	a.mu.Lock()
	defer a.mu.Unlock()
	add, err := NewHolds(req, a.current, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.setHoldsLocked(MergeHolds(a.holds, add)); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, h := range add {
		a.log.Info("hold placed", "id", h.ID, "by", h.By, "until", h.Until, "reason", h.Reason)
	}
	a.holdsChanged()
	writeJSONAnswer(w, HoldAnswer{Holds: a.holds})
}

func (a *Agent) serveRelease(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	req.By = operator(r, req.By)
	a.mu.Lock()
	defer a.mu.Unlock()
	kept, released := ReleaseHolds(a.holds, req)
	if len(released) > 0 {
		if err := a.setHoldsLocked(kept); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, h := range released {
			a.log.Info("hold released", "id", h.ID, "by", req.By, "placedBy", h.By)
		}
		a.holdsChanged()
	}
	writeJSONAnswer(w, HoldAnswer{Holds: a.holds, Released: released})
}

// holdsChanged wakes the apply loop: the first hold's end moved, and a
// released resource converges now. Called with a.mu held.
func (a *Agent) holdsChanged() {
	select {
	case a.holdsCh <- struct{}{}:
	default:
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSONAnswer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func holdTarget(id reconciler.ID) string {
	if id == "" {
		return "node hold"
	}
	return "hold on " + string(id)
}
