package docker

import (
	"maps"
	"slices"

	"github.com/fsgit/fsgit/reconciler"
)

var (
	_ reconciler.Previewer = (*Image)(nil)
	_ reconciler.Previewer = (*Network)(nil)
	_ reconciler.Previewer = (*Volume)(nil)
	_ reconciler.Previewer = (*Container)(nil)
)

// Preview: pulling an image disturbs nothing that runs. One that leaves
// the catalog is kept for rollback (and while a container uses it) and
// removed later; removing one with pull "never" is destructive, since it
// cannot be had again (a registry that does not answer makes it so too,
// which only the node can tell).
func (k *Image) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	switch {
	case new == nil:
		if s, err := reconciler.DecodeAs(k, old); err == nil && s.Pull == PullNever {
			return reconciler.Destructive, "kept for rollback, then removed: pull is never, it cannot be had again"
		}
		return reconciler.Safe, "kept for rollback, then removed"
	case old == nil:
		return reconciler.Safe, "pull image"
	}
	return reconciler.Safe, ""
}

// Preview: a network cannot change in place; changing one recreates it
// (its containers are reconnected), removing one cuts its containers off.
func (k *Network) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Disruptive, "remove network"
	}
	n, err := reconciler.DecodeAs(k, new)
	if err != nil || old == nil {
		return reconciler.Safe, ""
	}
	o, err := reconciler.DecodeAs(k, old)
	if err != nil {
		return reconciler.Safe, ""
	}
	if n.Ensure == "absent" && o.Ensure != "absent" {
		return reconciler.Disruptive, "remove network"
	}
	if o.Driver != n.Driver || o.Internal != n.Internal || !maps.Equal(o.Labels, n.Labels) {
		return reconciler.Disruptive, "recreate network"
	}
	return reconciler.Safe, ""
}

// Preview: a volume holds data; removing or replacing it is destructive.
func (k *Volume) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Destructive, "delete volume and its data"
	}
	n, err := reconciler.DecodeAs(k, new)
	if err != nil || old == nil {
		return reconciler.Safe, ""
	}
	o, err := reconciler.DecodeAs(k, old)
	if err != nil {
		return reconciler.Safe, ""
	}
	if n.Ensure == "absent" && o.Ensure != "absent" {
		return reconciler.Destructive, "delete volume and its data"
	}
	if o.Driver != n.Driver || !maps.Equal(o.Labels, n.Labels) {
		return reconciler.Destructive, "recreate volume (its data is lost)"
	}
	return reconciler.Safe, ""
}

// Preview says whether the change recreates the container (any field in
// its spec hash), only adjusts it in place (restart policy, networks), or
// starts, stops or removes it.
func (k *Container) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Disruptive, "remove container"
	}
	n, err := reconciler.DecodeAs(k, new)
	if err != nil {
		return reconciler.Safe, ""
	}
	if old == nil {
		return reconciler.Safe, "create container"
	}
	o, err := reconciler.DecodeAs(k, old)
	if err != nil {
		return reconciler.Safe, ""
	}
	switch {
	case n.Ensure == "absent" && o.Ensure != "absent":
		return reconciler.Disruptive, "remove container"
	case n.Ensure == "stopped" && o.Ensure == "running":
		return reconciler.Disruptive, "stop container"
	}
	env := &reconciler.Env{}
	nd, err1 := normalize(env, n)
	od, err2 := normalize(env, o)
	if err1 != nil || err2 != nil {
		return reconciler.Safe, ""
	}
	if nd.hash() != od.hash() {
		return reconciler.Disruptive, "recreate container"
	}
	if nd.Restart != od.Restart || !slices.EqualFunc(nd.Networks, od.Networks, func(a, b NetworkAttachment) bool {
		return a.Name == b.Name && slices.Equal(a.Aliases, b.Aliases)
	}) {
		return reconciler.Safe, "update container in place"
	}
	if n.Ensure == "running" && o.Ensure != "running" {
		return reconciler.Safe, "start container"
	}
	return reconciler.Safe, ""
}
