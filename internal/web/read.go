package web

import (
	"context"
	"slices"
	"time"

	"github.com/fsgit/fsgit/internal/status"
)

// snapshotOf makes the snapshot of a read of the status repository, at
// now.
func snapshotOf(f *status.Fleet, now time.Time) *Snapshot {
	snap := &Snapshot{Tip: f.Tip, Refs: f.Refs.Fingerprint(), Read: now, NodeRefs: len(f.Refs.Nodes), Nodes: f.Nodes,
		History: map[string][]Point{}, Commits: f.Commits}
	if f.Unreadable != nil {
		snap.Unreadable = f.Unreadable.Error()
	}
	for node, versions := range f.History {
		points := make([]Point, 0, len(versions))
		for _, v := range versions {
			points = append(points, pointOf(v.Node, v.Commit, v.When))
		}
		slices.Reverse(points) // oldest first
		snap.History[node] = points
	}
	return snap
}

// poll lists the status refs (one round trip) and, when they moved since
// the snapshot known (nil: none yet), fetches them and reads a new
// snapshot; otherwise snap is nil. A repository without status is an empty
// fleet, not an error.
func poll(ctx context.Context, r *status.Reader, known *Snapshot, now time.Time) (snap *Snapshot, err error) {
	refs, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	if known != nil && known.Refs == refs.Fingerprint() {
		return nil, nil
	}
	f, err := r.Read(ctx, refs)
	if err != nil {
		return nil, err
	}
	return snapshotOf(f, now), nil
}
