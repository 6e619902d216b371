package main

import (
	"github.com/fsgit/fsgit/reconciler"
)

// newRegistry returns the registry of every resource kind fsgit knows.
// Each kind package adds its kinds here.
func newRegistry() *reconciler.Registry {
	return reconciler.NewRegistry()
}
