package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// containersUsing lists the containers, running or stopped, that the
// filter selects ("ancestor", "network" or "volume"), with match deciding
// among them when the daemon's filter is broader than wanted. It returns
// their names, sorted.
func containersUsing(ctx context.Context, cl *client.Client, f filters.Args, match func(container.Summary) bool) ([]string, error) {
	list, err := cl.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var names []string
	for _, c := range list {
		if match != nil && !match(c) {
			continue
		}
		name := c.ID[:min(12, len(c.ID))]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// inUse is the skip that keeps a resource that left the catalog while
// containers use it: removing it would break them (an image, a network)
// or fail (a volume), and a rollback needs it. It stays in the inventory
// and is removed by a later run, once no container uses it.
func inUse(what string, names []string) error {
	return reconciler.Keep(fmt.Sprintf("kept: %s is used by container %s (running or stopped); it is removed once no container uses it",
		what, strings.Join(names, ", ")))
}
