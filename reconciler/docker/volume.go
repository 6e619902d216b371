package docker

import (
	"context"
	"fmt"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// VolumeSpec is the spec of a docker.volume resource.
type VolumeSpec struct {
	// Name is the volume's name.
	Name string `json:"name"`
	// Ensure is "present" or "absent" (absent deletes data: destructive).
	Ensure reconciler.Ensure `json:"ensure"`
	// Driver is the volume driver ("local" unless the catalog says).
	Driver string `json:"driver"`
	// Labels are the volume's labels; fsgit adds fsgit.managed.
	Labels map[string]string `json:"labels"`
	// DockerHost is the daemon address.
	DockerHost string `json:"dockerHost"`
}

// Volume is the docker.volume kind. A volume holds data: replacing or
// removing it is destructive.
type Volume struct {
	clients clients
}

var (
	_ reconciler.KindOf[VolumeSpec]     = (*Volume)(nil)
	_ reconciler.SpecPruner[VolumeSpec] = (*Volume)(nil)
)

// NewVolume returns the docker.volume kind.
func NewVolume() *reconciler.Typed[VolumeSpec] { return reconciler.NewTyped(&Volume{}) }

// Kind returns "docker.volume".
func (*Volume) Kind() string { return "docker.volume" }

// Close closes the kind's Engine API clients.
func (k *Volume) Close() error { return k.clients.close() }

// Check checks the labels (the schema checks the rest).
func (*Volume) Check(r *reconciler.Resource, s *VolumeSpec) error { return checkLabels(r, s.Labels) }

// listVolumes lists the daemon's volumes once per run.
func listVolumes(ctx context.Context, env *reconciler.Env, cl *client.Client, host string) (map[string]*volume.Volume, error) {
	return listOnce(ctx, env, host, "volume", func(ctx context.Context) (map[string]*volume.Volume, error) {
		list, err := cl.VolumeList(ctx, volume.ListOptions{})
		if err != nil {
			return nil, err
		}
		m := make(map[string]*volume.Volume, len(list.Volumes))
		for _, v := range list.Volumes {
			m[v.Name] = v
		}
		return m, nil
	})
}

// Plan compares the volume with the spec. A volume's driver and labels
// cannot change in place; replacing it loses its data, so such a change is
// destructive and runs only where the resource allows destroy.
func (k *Volume) Plan(ctx context.Context, env *reconciler.Env, _ *reconciler.Resource, s *VolumeSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	vols, err := listVolumes(ctx, env, cl, s.DockerHost)
	if err != nil {
		return nil, err
	}
	cur, exists := vols[s.Name]
	forget := func() { forgetList(env, "volume", s.DockerHost) }
	plan := &reconciler.Plan{Observed: map[string]string{"present": strconv.FormatBool(exists)}}
	if exists {
		plan.Observed["driver"] = cur.Driver
	}
	if s.Ensure == "absent" {
		if exists {
			deleteVolumePlan(plan, cl, s, forget)
		}
		return plan, nil
	}
	if !exists {
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "volume", After: s.Name, Class: reconciler.Safe}}
		plan.Apply = func(ctx context.Context) error {
			defer forget()
			return createVolume(ctx, cl, s)
		}
		return plan, nil
	}
	var changes []reconciler.Change
	const why = " (a volume cannot change in place: replacing it deletes its data)"
	if cur.Driver != s.Driver {
		changes = append(changes, reconciler.Change{Field: "driver", Before: cur.Driver, After: s.Driver + why, Class: reconciler.Destructive})
	}
	for _, ch := range labelChanges(s.Labels, cur.Labels, reconciler.Destructive) {
		ch.After += why
		changes = append(changes, ch)
	}
	if len(changes) == 0 {
		return plan, nil
	}
	plan.Action = reconciler.ActionUpdate
	plan.Changes = changes
	plan.Apply = func(ctx context.Context) error {
		defer forget()
		if err := cl.VolumeRemove(ctx, s.Name, false); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing volume %s to recreate it: %w", s.Name, daemonErr(s.DockerHost, err))
		}
		return createVolume(ctx, cl, s)
	}
	return plan, nil
}

func createVolume(ctx context.Context, cl *client.Client, s *VolumeSpec) error {
	_, err := cl.VolumeCreate(ctx, volume.CreateOptions{Name: s.Name, Driver: s.Driver, Labels: withManaged(s.Labels)})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	return nil
}

func deleteVolumePlan(plan *reconciler.Plan, cl *client.Client, s *VolumeSpec, forget func()) {
	plan.Action = reconciler.ActionDelete
	plan.Changes = []reconciler.Change{{Field: "volume", Before: s.Name, After: "(deleted with its data)", Class: reconciler.Destructive}}
	plan.Apply = func(ctx context.Context) error {
		defer forget()
		if err := cl.VolumeRemove(ctx, s.Name, false); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing volume %s: %w", s.Name, daemonErr(s.DockerHost, err))
		}
		return nil
	}
}

// PlanDelete removes a volume that left the catalog (destructive), if fsgit
// created it and no container (running or stopped) mounts it.
func (k *Volume) PlanDelete(ctx context.Context, env *reconciler.Env, _ *reconciler.Resource, s *VolumeSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	octx, cancel := observeCtx(ctx)
	defer cancel()
	v, err := cl.VolumeInspect(octx, s.Name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return &reconciler.Plan{}, nil
		}
		return nil, fmt.Errorf("inspecting volume %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	plan := &reconciler.Plan{}
	if v.Labels[LabelManaged] == "true" {
		users, err := containersUsing(octx, cl, filters.NewArgs(filters.Arg("volume", s.Name)), nil)
		if err != nil {
			return nil, daemonErr(s.DockerHost, err)
		}
		if len(users) > 0 {
			return nil, inUse("volume "+s.Name, users)
		}
		deleteVolumePlan(plan, cl, s, func() { forgetList(env, "volume", s.DockerHost) })
	}
	return plan, nil
}
