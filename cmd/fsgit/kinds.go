package main

import (
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/account"
	"github.com/fsgit/fsgit/reconciler/artifact"
	"github.com/fsgit/fsgit/reconciler/docker"
	"github.com/fsgit/fsgit/reconciler/exec"
	"github.com/fsgit/fsgit/reconciler/file"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/mariadb"
	"github.com/fsgit/fsgit/reconciler/pkg"
	"github.com/fsgit/fsgit/reconciler/service"
	"github.com/fsgit/fsgit/reconciler/weaviate"
)

// newRegistry returns the registry of every resource kind fsgit knows.
// Each kind package adds its kinds here.
func newRegistry() *reconciler.Registry {
	r := reconciler.NewRegistry(
		pkg.New(), service.New(), account.NewUser(), account.NewGroup(), exec.New(),
		file.NewFile(), file.NewDirectory(), file.NewSymlink(), artifact.New(artifact.Options{}),
	)
	for _, k := range mariadb.New().All() {
		r.Add(k)
	}
	r.Add(docker.NewImage())
	r.Add(docker.NewNetwork())
	r.Add(docker.NewVolume())
	r.Add(docker.NewContainer())
	r.Add(weaviate.NewClass())
	r.Add(iceberg.NewNamespace())
	r.Add(iceberg.NewTable())
	return r
}
