package main

import (
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/account"
	"github.com/fsgit/fsgit/reconciler/artifact"
	"github.com/fsgit/fsgit/reconciler/exec"
	"github.com/fsgit/fsgit/reconciler/file"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/mariadb"
	"github.com/fsgit/fsgit/reconciler/pkg"
	"github.com/fsgit/fsgit/reconciler/service"
	"github.com/fsgit/fsgit/reconciler/weaviate"
)

// newFrontRegistry returns every kind but the Docker ones (image,
// network, volume, container): the kinds fsgit's front for cached runs
// links (front.go), where the Docker client's packages would cost more to
// initialize than a no-op run of 1,000 files takes otherwise.
func newFrontRegistry() *reconciler.Registry {
	r := reconciler.NewRegistry(
		pkg.New(), service.New(), account.NewUser(), account.NewGroup(), exec.New(),
		file.NewFile(), file.NewDirectory(), file.NewSymlink(), artifact.New(artifact.Options{}),
	)
	for _, k := range mariadb.New().All() {
		r.Add(k)
	}
	r.Add(weaviate.NewClass())
	r.Add(iceberg.NewNamespace())
	r.Add(iceberg.NewTable())
	return r
}
