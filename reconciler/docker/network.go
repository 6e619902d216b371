package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// NetworkSpec is the spec of a docker.network resource.
type NetworkSpec struct {
	// Name is the network's name.
	Name string `json:"name"`
	// Ensure is "present" or "absent".
	Ensure reconciler.Ensure `json:"ensure"`
	// Driver is the network driver ("bridge" unless the catalog says).
	Driver string `json:"driver"`
	// Internal cuts the network off from the outside.
	Internal bool `json:"internal"`
	// Labels are the network's labels; fsgit adds fsgit.managed.
	Labels map[string]string `json:"labels"`
	// DockerHost is the daemon address.
	DockerHost string `json:"dockerHost"`
}

// Network is the docker.network kind.
type Network struct {
	clients clients
}

var (
	_ reconciler.KindOf[NetworkSpec]     = (*Network)(nil)
	_ reconciler.SpecPruner[NetworkSpec] = (*Network)(nil)
)

// NewNetwork returns the docker.network kind.
func NewNetwork() *reconciler.Typed[NetworkSpec] { return reconciler.NewTyped(&Network{}) }

// Kind returns "docker.network".
func (*Network) Kind() string { return "docker.network" }

// Close closes the kind's Engine API clients.
func (k *Network) Close() error { return k.clients.close() }

// Check checks the labels (the schema checks the rest).
func (*Network) Check(r *reconciler.Resource, s *NetworkSpec) error { return checkLabels(r, s.Labels) }

// listNetworks lists the daemon's networks once per run.
func listNetworks(ctx context.Context, env *reconciler.Env, cl *client.Client, host string) (map[string]network.Summary, error) {
	return listOnce(ctx, env, host, "network", func(ctx context.Context) (map[string]network.Summary, error) {
		list, err := cl.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			return nil, err
		}
		m := make(map[string]network.Summary, len(list))
		for _, n := range list {
			m[n.Name] = n
		}
		return m, nil
	})
}

// Plan compares the network with the spec. Driver, internal and labels
// cannot change in place: the network is recreated (disruptive), and the
// containers attached to it are reconnected with their aliases.
func (k *Network) Plan(ctx context.Context, env *reconciler.Env, _ *reconciler.Resource, s *NetworkSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	nets, err := listNetworks(ctx, env, cl, s.DockerHost)
	if err != nil {
		return nil, err
	}
	cur, exists := nets[s.Name]
	plan := &reconciler.Plan{Observed: map[string]string{"present": strconv.FormatBool(exists)}}
	forget := func() { forgetList(env, "network", s.DockerHost) }
	if exists {
		plan.Observed["driver"] = cur.Driver
		plan.Observed["internal"] = strconv.FormatBool(cur.Internal)
	}
	if s.Ensure == "absent" {
		if !exists {
			return plan, nil
		}
		return deleteNetworkPlan(plan, cl, s, forget), nil
	}
	if !exists {
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "network", After: s.Name, Class: reconciler.Safe}}
		plan.Apply = func(ctx context.Context) error {
			defer forget()
			return createNetwork(ctx, cl, s)
		}
		return plan, nil
	}
	var changes []reconciler.Change
	if cur.Driver != s.Driver {
		changes = append(changes, reconciler.Change{Field: "driver", Before: cur.Driver, After: s.Driver, Class: reconciler.Disruptive})
	}
	if cur.Internal != s.Internal {
		changes = append(changes, reconciler.Change{Field: "internal", Before: strconv.FormatBool(cur.Internal), After: strconv.FormatBool(s.Internal), Class: reconciler.Disruptive})
	}
	changes = append(changes, labelChanges(s.Labels, cur.Labels, reconciler.Disruptive)...)
	if len(changes) == 0 {
		return plan, nil
	}
	plan.Action = reconciler.ActionUpdate
	plan.Changes = changes
	plan.Apply = func(ctx context.Context) error {
		defer forget()
		return recreateNetwork(ctx, cl, s)
	}
	return plan, nil
}

func createNetwork(ctx context.Context, cl *client.Client, s *NetworkSpec) error {
	_, err := cl.NetworkCreate(ctx, s.Name, network.CreateOptions{
		Driver:   s.Driver,
		Internal: s.Internal,
		Labels:   withManaged(s.Labels),
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("creating network %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	return nil
}

// recreateNetwork disconnects the network's containers, replaces the
// network and reconnects them with the aliases they had.
func recreateNetwork(ctx context.Context, cl *client.Client, s *NetworkSpec) error {
	cur, err := cl.NetworkInspect(ctx, s.Name, network.InspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting network %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	type attached struct {
		id      string
		aliases []string
	}
	var conns []attached
	for id := range cur.Containers {
		c, err := cl.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspecting container %s on network %s: %w", id, s.Name, err)
		}
		a := attached{id: id}
		if ep := c.NetworkSettings.Networks[s.Name]; ep != nil {
			a.aliases = withoutShortID(ep.Aliases, c.ID)
		}
		conns = append(conns, a)
		if err := cl.NetworkDisconnect(ctx, cur.ID, id, true); err != nil {
			return fmt.Errorf("disconnecting container %s from network %s: %w", id, s.Name, err)
		}
	}
	if err := cl.NetworkRemove(ctx, cur.ID); err != nil {
		return fmt.Errorf("removing network %s to recreate it: %w", s.Name, err)
	}
	if err := createNetwork(ctx, cl, s); err != nil {
		return err
	}
	var errs []error
	for _, a := range conns {
		if err := cl.NetworkConnect(ctx, s.Name, a.id, &network.EndpointSettings{Aliases: a.aliases}); err != nil {
			errs = append(errs, fmt.Errorf("reconnecting container %s to network %s: %w", a.id, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func deleteNetworkPlan(plan *reconciler.Plan, cl *client.Client, s *NetworkSpec, forget func()) *reconciler.Plan {
	plan.Action = reconciler.ActionDelete
	plan.Changes = []reconciler.Change{{Field: "network", Before: s.Name, Class: reconciler.Disruptive}}
	plan.Apply = func(ctx context.Context) error {
		defer forget()
		if err := cl.NetworkRemove(ctx, s.Name); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing network %s: %w", s.Name, daemonErr(s.DockerHost, err))
		}
		return nil
	}
	return plan
}

// PlanDelete removes a network that left the catalog, if fsgit created it
// and no container (running or stopped) is attached to it.
func (k *Network) PlanDelete(ctx context.Context, env *reconciler.Env, _ *reconciler.Resource, s *NetworkSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	octx, cancel := observeCtx(ctx)
	defer cancel()
	list, err := cl.NetworkList(octx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", s.Name), filters.Arg("label", LabelManaged+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", daemonErr(s.DockerHost, err))
	}
	for _, n := range list {
		if n.Name == s.Name {
			// The daemon's network filter misses containers that are
			// created but not started: match by their settings.
			users, err := containersUsing(octx, cl, filters.NewArgs(), func(c container.Summary) bool {
				if c.HostConfig.NetworkMode == s.Name || c.HostConfig.NetworkMode == n.ID {
					return true
				}
				if c.NetworkSettings != nil {
					for name, ep := range c.NetworkSettings.Networks {
						if name == s.Name || (ep != nil && ep.NetworkID == n.ID) {
							return true
						}
					}
				}
				return false
			})
			if err != nil {
				return nil, daemonErr(s.DockerHost, err)
			}
			if len(users) > 0 {
				return nil, inUse("network "+s.Name, users)
			}
			return deleteNetworkPlan(&reconciler.Plan{}, cl, s, func() { forgetList(env, "network", s.DockerHost) }), nil
		}
	}
	return &reconciler.Plan{}, nil
}

// withoutShortID drops the alias Docker adds for a container's short ID.
func withoutShortID(aliases []string, id string) []string {
	var out []string
	for _, a := range aliases {
		if len(id) >= 12 && a == id[:12] {
			continue
		}
		out = append(out, a)
	}
	return out
}
