//go:build !lean

package main

import (
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/docker"
)

// newRegistry returns the registry of every resource kind fsgit knows:
// the Docker kinds and the others (newFrontRegistry). Each kind package
// adds its kinds here or there.
func newRegistry() *reconciler.Registry {
	r := newFrontRegistry()
	r.Add(docker.NewImage())
	r.Add(docker.NewNetwork())
	r.Add(docker.NewVolume())
	r.Add(docker.NewContainer())
	return r
}
