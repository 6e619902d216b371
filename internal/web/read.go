package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/status"
)

// commitPrefix starts the message of every commit a status publisher
// makes: "status: <node>".
const commitPrefix = "status: "

// readSnapshot reads the status branch at tip from src's cache: every
// node's document at the tip, and the history of each from up to depth
// commits before it (as far as the shallow cache reaches).
func readSnapshot(src *gitsource.Source, tip string, depth int, now time.Time) (*Snapshot, error) {
	c, err := src.Commit(tip)
	if err != nil {
		return nil, fmt.Errorf("read status branch at %s: %w", tip, err)
	}
	snap := &Snapshot{Tip: tip, Read: now, History: map[string][]Point{}}
	nodes, err := status.ReadFleetFS(c.FS)
	if err != nil {
		snap.Unreadable = err.Error()
	}
	snap.Nodes = nodes
	for range depth {
		snap.Commits++
		if name, ok := strings.CutPrefix(strings.TrimSpace(c.Message), commitPrefix); ok && validName(name) {
			if n, err := status.ReadNodeFS(c.FS, name); err == nil && n.Node == name {
				snap.History[name] = append(snap.History[name], pointOf(n, c.Hash, c.When))
			}
		}
		if len(c.Parents) == 0 {
			break
		}
		parent, err := src.Commit(c.Parents[0])
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			break // the shallow cache ends here
		}
		if err != nil {
			return nil, fmt.Errorf("read status history: %w", err)
		}
		c = parent
	}
	for _, h := range snap.History {
		slices.Reverse(h)
	}
	return snap, nil
}

// validName reports whether name can be a document's name on the status
// branch (as the publisher allows).
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\\n") && !strings.HasPrefix(name, ".")
}

// poll lists the branch's tip (one round trip) and, when it moved since
// known, fetches it and reads a new snapshot; otherwise snap is nil.
func poll(ctx context.Context, src *gitsource.Source, known string, depth int, now time.Time) (snap *Snapshot, err error) {
	tip, changed, err := src.Poll(ctx, known)
	if errors.Is(err, gitsource.ErrBranchNotFound) || errors.Is(err, transport.ErrEmptyRemoteRepository) {
		// No node has published yet: an empty fleet, not an error.
		return &Snapshot{Read: now, History: map[string][]Point{}}, nil
	}
	if err != nil || !changed {
		return nil, err
	}
	return readSnapshot(src, tip, depth, now)
}
