package desired

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/schema"
)

// KindFields lists, for every resource kind of the embedded schema
// (#Kinds, each kind's def), the paths of the fields of its spec: "mode", "server.socket",
// "ports[].host". The common fields (require, notify, drift, allowDestroy)
// are not part of a spec and are left out. Tests use it to check that the
// Go kinds and docs/kinds.md know every field.
func KindFields() (map[string][]string, error) {
	files := map[string][]byte{"cue.mod/module.cue": schema.ModuleFile()}
	for _, name := range schema.SchemaFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			return nil, fmt.Errorf("read embedded schema: %w", err)
		}
		files["schema/"+name] = b
	}
	cfg := &load.Config{FS: sitefiles.NewMemFS(files), Dir: "/", ModuleRoot: "/", Env: []string{"CUE_REGISTRY=none"}}
	insts := load.Instances([]string{schema.ImportPath}, cfg)
	if err := insts[0].Err; err != nil {
		return nil, fmt.Errorf("load schema: %w", err)
	}
	v := cuecontext.New().BuildInstance(insts[0])
	kinds := v.LookupPath(cue.MakePath(cue.Def("Kinds")))
	it, err := kinds.Fields(cue.Definitions(false))
	if err != nil {
		return nil, fmt.Errorf("list kinds: %w", err)
	}
	common := map[string]bool{"require": true, "notify": true, "drift": true, "allowDestroy": true}
	out := map[string][]string{}
	for it.Next() {
		var paths []string
		collectFields(it.Value().LookupPath(cue.ParsePath("def")), "", &paths, 0)
		var spec []string
		for _, p := range paths {
			top, _, _ := strings.Cut(p, ".")
			top = strings.TrimSuffix(top, "[]")
			if !common[top] {
				spec = append(spec, p)
			}
		}
		sort.Strings(spec)
		out[it.Selector().Unquoted()] = spec
	}
	return out, nil
}

// collectFields appends the paths of v's regular fields (optional and
// required ones included), going into structs and into the element of
// lists of structs. A struct that only has a pattern ({[string]: string})
// or is open ({...}) is a leaf.
func collectFields(v cue.Value, prefix string, out *[]string, depth int) {
	if depth > 6 {
		return
	}
	it, err := v.Fields(cue.Optional(true), cue.Definitions(false), cue.Hidden(false))
	if err != nil {
		return
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		*out = append(*out, p)
		fv := it.Value()
		switch fv.IncompleteKind() {
		case cue.StructKind:
			if !isMap(fv) {
				collectFields(fv, p, out, depth+1)
			}
		case cue.ListKind:
			elem := fv.LookupPath(cue.MakePath(cue.AnyIndex))
			if elem.Exists() && elem.IncompleteKind() == cue.StructKind && !isMap(elem) {
				collectFields(elem, p+"[]", out, depth+1)
			}
		}
	}
}

// isMap reports whether a struct value is a map (only a pattern, or open)
// rather than a record with named fields.
func isMap(v cue.Value) bool {
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return true
	}
	return !it.Next()
}
