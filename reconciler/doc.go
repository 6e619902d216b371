// Package reconciler is fsgit's engine and the contract between the engine
// and the resource kinds.
//
// A node's desired state is a [Catalog]: a list of [Resource] values, each
// with an [ID] of the form "kind:name", kind-specific fields (its spec, kept
// as JSON so that this package knows nothing of any kind), and edges:
// Require (run after) and Notify (run after, and refresh when this resource
// changed). The engine orders the catalog by its edges, asks each resource's
// [Kind] for a [Plan] (observe and diff, never a write), applies plans whose
// changes are allowed, sends refreshes along notify edges and reports one
// [Result] per resource.
//
// Kinds live in child packages (reconciler/file, reconciler/mariadb, ...);
// they import this package, never the reverse. This package imports nothing
// of git, CUE, bbolt or Docker.
package reconciler
