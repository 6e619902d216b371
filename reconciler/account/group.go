package account

import (
	"context"
	"fmt"
	"strconv"

	"github.com/fsgit/fsgit/reconciler"
)

// GroupKindName is the group kind's name in resource IDs: "group:mysql".
const GroupKindName = "group"

// GroupSpec is the group resource's spec, as written in CUE.
type GroupSpec struct {
	// Name is the group's name; empty means the resource's name.
	Name string `json:"name,omitempty"`
	// Ensure is "present" (default) or "absent".
	Ensure reconciler.Ensure `json:"ensure,omitempty"`
	// GID pins the group's id; nil leaves it to groupadd.
	GID *int `json:"gid,omitempty"`
	// System makes groupadd pick a system gid. It matters at creation only.
	System bool `json:"system,omitempty"`
}

// Group is the group kind.
type Group struct{}

var (
	_ reconciler.KindOf[GroupSpec]     = (*Group)(nil)
	_ reconciler.SpecPruner[GroupSpec] = (*Group)(nil)
)

// NewGroup returns the group kind.
func NewGroup() *reconciler.Typed[GroupSpec] { return reconciler.NewTyped(&Group{}) }

// Kind returns "group".
func (g *Group) Kind() string { return GroupKindName }

// Check takes the name from the ID when the spec has none. The name and
// the gid's range are the schema's (#Name, #Group).
func (g *Group) Check(r *reconciler.Resource, s *GroupSpec) error {
	if s.Name == "" {
		s.Name = r.Name()
	}
	return nil
}

// Plan compares the group with the run's /etc/group snapshot.
func (g *Group) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *GroupSpec) (*reconciler.Plan, error) {
	d, err := observe(env)
	if err != nil {
		return nil, err
	}
	cur, exists := d.groups[s.Name]
	p := &reconciler.Plan{Observed: map[string]string{"ensure": ensureAbsent}}
	if exists {
		p.Observed = observedGroup(cur)
	}

	var argv []string
	switch {
	case s.Ensure.Absent() && !exists:
		return p, nil
	case s.Ensure.Absent():
		return deletePlan(env, r, p, "groupdel", s.Name), nil
	case !exists:
		argv = []string{"groupadd"}
		if s.GID != nil {
			argv = append(argv, "-g", strconv.Itoa(*s.GID))
		}
		if s.System {
			argv = append(argv, "-r")
		}
		p.Action = reconciler.ActionCreate
		p.Changes = []reconciler.Change{{Field: "ensure", Before: ensureAbsent, After: ensurePresent, Class: reconciler.Safe}}
	case s.GID != nil && *s.GID != cur.gid:
		// Files keep the old gid: access changes until they are chowned.
		argv = []string{"groupmod", "-g", strconv.Itoa(*s.GID)}
		p.Action = reconciler.ActionUpdate
		p.Changes = []reconciler.Change{{Field: "gid", Before: strconv.Itoa(cur.gid), After: strconv.Itoa(*s.GID), Class: reconciler.Disruptive}}
	default:
		return p, nil
	}
	argv = append(argv, "--", s.Name)
	p.Apply = func(ctx context.Context) error {
		if err := runLocked(ctx, env, argv...); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return p, nil
}

// PlanDelete plans to remove a group that left the catalog.
func (g *Group) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *GroupSpec) (*reconciler.Plan, error) {
	return planDelete(env, r, s.Name, func(d *db, name string) (map[string]string, bool) {
		cur, ok := d.groups[name]
		return observedGroup(cur), ok
	}, "groupdel")
}

func observedGroup(cur groupEntry) map[string]string {
	return map[string]string{"ensure": ensurePresent, "gid": strconv.Itoa(cur.gid)}
}

var _ reconciler.Previewer = (*Group)(nil)

// Preview classes a catalog change without observing: deleting a group is
// destructive, changing its gid disruptive, anything else safe.
func (g *Group) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	return preview(old, new, func(r *reconciler.Resource) (*GroupSpec, error) { return reconciler.DecodeAs(g, r) }, "group", "gid")
}
