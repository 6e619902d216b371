//go:build !lean

package main

import (
	"context"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// TestKinds_DecodeEverySchemaField feeds every Go kind a resource of its
// kind with every field of the schema set (internal/desired/testdata/
// allkinds, which a test there checks is complete). Validate decodes the
// spec strictly, so a field the schema has and the Go struct lacks fails
// here instead of being dropped silently; a kind of the schema without a Go
// implementation fails too.
func TestKinds_DecodeEverySchemaField(t *testing.T) {
	cat := allKindsCatalog(t)
	fields, err := desired.KindFields()
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	seen := map[string]bool{}
	for i := range cat.Resources {
		r := &cat.Resources[i]
		seen[r.Kind()] = true
		k, ok := reg.Lookup(r.Kind())
		if !ok {
			t.Errorf("kind %s is in the schema but has no Go implementation in newRegistry", r.Kind())
			continue
		}
		if err := k.Validate(r); err != nil {
			t.Errorf("%s: %v", r.ID, err)
		}
	}
	for kind := range fields {
		if !seen[kind] {
			t.Errorf("the sample has no resource of kind %s", kind)
		}
	}
	for _, name := range reg.Kinds() {
		if _, ok := fields[name]; !ok {
			t.Errorf("Go kind %s is not in the schema's #Kinds", name)
		}
	}
}

// allKindsCatalog returns node n's catalog of internal/desired/testdata/
// allkinds: a resource of every kind with every field set.
func allKindsCatalog(t *testing.T) *reconciler.Catalog {
	t.Helper()
	site, err := desired.LoadDir(context.Background(), "../../internal/desired/testdata/allkinds")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := site.Catalog("n")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}
