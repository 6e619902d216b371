// Package kindtest builds resources for the tests of the resource kinds
// as a catalog holds them. A catalog comes out of the schema with every
// default filled in, and the kinds have no defaults of their own: a test
// that writes a spec by hand names the defaults it relies on here.
package kindtest

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// Resource returns the resource kind:name whose spec is spec with every
// field of defaults that spec lacks set to its default (spec itself is
// left as it is).
func Resource(tb testing.TB, kind, name string, spec, defaults map[string]any) *reconciler.Resource {
	tb.Helper()
	full := maps.Clone(spec)
	if full == nil {
		full = map[string]any{}
	}
	for k, v := range defaults {
		if _, ok := full[k]; !ok {
			full[k] = v
		}
	}
	b, err := json.Marshal(full)
	if err != nil {
		tb.Fatal(err)
	}
	return &reconciler.Resource{ID: reconciler.NewID(kind, name), Spec: b}
}
