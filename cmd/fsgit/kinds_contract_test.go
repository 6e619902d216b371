//go:build !lean

package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

// TestKinds_SpecFieldsMatchSchema walks every typed kind's Go spec struct
// (reconciler.Typed's SpecType) and its definition in schema/kinds.cue and
// fails on a field in one but not the other, nested fields included
// ("server.socket", "ports[].host"): the schema is the one source of a
// kind's fields.
func TestKinds_SpecFieldsMatchSchema(t *testing.T) {
	fields, err := desired.KindFields()
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	typed := 0
	for _, name := range reg.Kinds() {
		k, _ := reg.Lookup(name)
		st, ok := k.(interface{ SpecType() reflect.Type })
		if !ok {
			continue
		}
		typed++
		var goFields, goMaps []string
		specFields(st.SpecType(), "", &goFields, &goMaps)
		slices.Sort(goFields)
		cueFields := fields[name]
		for _, f := range goFields {
			if !slices.Contains(cueFields, f) {
				t.Errorf("%s: Go spec field %q is not in the schema", name, f)
			}
		}
		for _, f := range cueFields {
			// A Go map holds any key, those the schema names too
			// (properties.location).
			inMap := slices.ContainsFunc(goMaps, func(m string) bool { return strings.HasPrefix(f, m+".") })
			if !slices.Contains(goFields, f) && !inMap {
				t.Errorf("%s: schema field %q is not in the Go spec", name, f)
			}
		}
	}
	if typed == 0 {
		t.Error("no typed kind registered")
	}
}

// specFields appends the JSON paths of t's fields, going into structs and
// into the element of slices of structs; maps are leaves, also listed in
// maps. A field tagged remembered:"..." (a digest the node keeps instead
// of content, never in a catalog) is left out.
func specFields(t reflect.Type, prefix string, out, maps *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			specFields(f.Type, prefix, out, maps) // embedded: its fields are the spec's
			continue
		}
		if name == "-" || !f.IsExported() || f.Tag.Get("remembered") != "" {
			continue // a remembered-only field is not the catalog's
		}
		if name == "" {
			name = f.Name
		}
		p := prefix + name
		*out = append(*out, p)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Map:
			*maps = append(*maps, p)
		case ft.Kind() == reflect.Struct:
			specFields(ft, p+".", out, maps)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			specFields(ft.Elem(), p+"[].", out, maps)
		}
	}
}

// TestKinds_DecodedOnceAtPrepare: every registered kind is typed, so the
// engine decodes each resource's spec once, when the catalog is prepared
// (a run then plans, refreshes and times it out with that spec); preparing
// the sample of every kind decodes each of its resources exactly once.
func TestKinds_DecodedOnceAtPrepare(t *testing.T) {
	cat := allKindsCatalog(t)
	reg := newRegistry()
	p, err := reconciler.NewEngine(reconciler.Config{Registry: reg}).Prepare(cat)
	if err != nil {
		t.Fatal(err)
	}
	if inv := p.Invalid(); len(inv) > 0 {
		t.Fatalf("invalid resources in the sample: %v", inv)
	}
	resources := map[string]int64{}
	for _, r := range cat.Resources {
		resources[r.Kind()]++
	}
	for _, name := range reg.Kinds() {
		k, _ := reg.Lookup(name)
		d, ok := k.(interface{ Decodes() int64 })
		if !ok {
			t.Errorf("kind %s is not typed: it decodes its spec itself", name)
			continue
		}
		if got := d.Decodes(); got != resources[name] {
			t.Errorf("kind %s: %d decodes for %d resources", name, got, resources[name])
		}
	}
}
