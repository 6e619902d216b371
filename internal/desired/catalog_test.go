package desired

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

// decodePartViaJSON is how parts were decoded before decodePart read the
// CUE value directly: CUE's JSON, decoded, and re-encoded with sorted keys
// and numbers as written. decodePart must give the same bytes.
func decodePartViaJSON(t *testing.T, v cue.Value) map[reconciler.ID]reconciler.Resource {
	t.Helper()
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var byID map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &byID); err != nil {
		t.Fatal(err)
	}
	out := map[reconciler.ID]reconciler.Resource{}
	for id, fields := range byID {
		r := reconciler.Resource{ID: reconciler.ID(id), Mode: reconciler.ModeEnforce}
		for name, dst := range map[string]any{"require": &r.Require, "notify": &r.Notify, "drift": &r.Mode, "allowDestroy": &r.AllowDestroy} {
			if raw, ok := fields[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatal(err)
				}
				delete(fields, name)
			}
		}
		obj := map[string]any{}
		for k, raw := range fields {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var x any
			if err := dec.Decode(&x); err != nil {
				t.Fatal(err)
			}
			obj[k] = x
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(obj); err != nil {
			t.Fatal(err)
		}
		r.Spec = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		out[r.ID] = r
	}
	return out
}

// TestDecodePartSameBytes checks that every resource of every node of the
// example, and of testdata/allkinds (every field of every kind), decodes
// to the bytes the JSON round trip gave, specs included (multi-line
// contents, numbers, secrets, lists of objects, "<" and "&").
func TestDecodePartSameBytes(t *testing.T) {
	extra := map[string]string{"sites/example/extra.cue": `package example

nodes: "online-1": resources: "file:/etc/fsgit-test": {
	content: "<a & b>\n\ttab \"q\" \u00e9\n"
	mode:    "0644"
}
`}
	example, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	allKinds, err := LoadDir(context.Background(), "testdata/allkinds")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	kinds := map[string]bool{}
	for _, s := range []*Site{example, allKinds} {
		for _, node := range s.Nodes() {
			_, src, err := s.CatalogSources(node)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, pt := range src.from {
				if seen[pt.name] {
					continue
				}
				seen[pt.name] = true
				got, err := decodePart(pt.value, true)
				if err != nil {
					t.Fatal(err)
				}
				listed, err := decodePart(pt.value, false)
				if err != nil {
					t.Fatal(err)
				}
				if a, b := mustJSON(t, got), mustJSON(t, listed); !bytes.Equal(a, b) {
					t.Errorf("node %s %s: fields looked up by name and listed decode differently:\n%s\n%s", node, pt.name, a, b)
				}
				want := decodePartViaJSON(t, pt.value)
				if len(got) != len(want) {
					t.Fatalf("node %s %s: %d resources, want %d", node, pt.name, len(got), len(want))
				}
				for _, r := range got {
					a, _ := json.Marshal(r)
					b, _ := json.Marshal(want[r.ID])
					if !bytes.Equal(a, b) {
						t.Errorf("node %s %s: %s\ngot  %s\nwant %s", node, pt.name, r.ID, a, b)
					}
					kinds[r.Kind()] = true
					n++
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d resources compared", n)
	}
	all, err := KindFields()
	if err != nil {
		t.Fatal(err)
	}
	for kind := range all {
		if !kinds[kind] {
			t.Errorf("no resource of kind %s compared", kind)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodePart_OptionalFieldsPerResource: decodePart learns a kind's
// fields from its first resource; a later resource of the kind that sets
// an optional field the first one leaves out still has it in its spec,
// and one that leaves out a field the first one sets does not.
func TestDecodePart_OptionalFieldsPerResource(t *testing.T) {
	extra := map[string]string{"sites/example/extra.cue": `package example

nodes: "online-1": resources: {
	"file:/etc/fsgit-a": {mode: "0644"}
	"file:/etc/fsgit-b": {content: "b\n", secrets: k: secret: "test/k"}
	"file:/etc/fsgit-c": {}
}
`}
	s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	c := catalog(t, s, "online-1")
	for id, want := range map[reconciler.ID]bool{"file:/etc/fsgit-a": false, "file:/etc/fsgit-b": true, "file:/etc/fsgit-c": false} {
		sp := spec(t, c, id)
		_, content := sp["content"]
		_, secrets := sp["secrets"]
		if content != want || secrets != want {
			t.Errorf("%s: content %v, secrets %v in the spec, want %v: %v", id, content, secrets, want, sp)
		}
	}
}

// TestKindDefs_NoConditionalFields keeps what decodePart relies on (see
// kindFields): a kind's definition declares every field a resource of the
// kind can have, so that the fields a resource lists with its optional
// ones are all there can be. A comprehension at the top of a definition
// may only constrain fields the definition declares anyway (the content
// size check of #File), and a definition has no pattern of field names
// and no "..." at its top.
func TestKindDefs_NoConditionalFields(t *testing.T) {
	files := map[string][]byte{"cue.mod/module.cue": schema.ModuleFile()}
	defs := map[string]*ast.StructLit{}
	kindDef := map[string]string{} // kind -> name of its def, from #Kinds: k: def: #X
	for _, name := range schema.SchemaFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		files["schema/"+name] = b
		f, err := parser.ParseFile(name, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			lbl, _, _ := ast.LabelName(fd.Label)
			st, ok := fd.Value.(*ast.StructLit)
			if !ok || !strings.HasPrefix(lbl, "#") {
				continue
			}
			if lbl != "#Kinds" {
				defs[lbl] = st
				continue
			}
			for _, e := range st.Elts {
				kf, ok := e.(*ast.Field)
				if !ok {
					continue
				}
				kind, _, _ := ast.LabelName(kf.Label)
				body, ok := kf.Value.(*ast.StructLit)
				if !ok {
					continue
				}
				for _, ke := range body.Elts {
					if df, ok := ke.(*ast.Field); ok {
						if l, _, _ := ast.LabelName(df.Label); l == "def" {
							if id, ok := df.Value.(*ast.Ident); ok {
								kindDef[kind] = id.Name
							}
						}
					}
				}
			}
		}
	}
	insts := load.Instances([]string{schema.ImportPath}, &load.Config{FS: sitefiles.NewMemFS(files), Dir: "/", ModuleRoot: "/", Env: []string{"CUE_REGISTRY=none"}})
	if err := insts[0].Err; err != nil {
		t.Fatal(err)
	}
	v := cuecontext.New().BuildInstance(insts[0])
	it, err := v.LookupPath(cue.MakePath(cue.Def("Kinds"))).Fields()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next() {
		kind := it.Selector().Unquoted()
		def := it.Value().LookupPath(cue.ParsePath("def"))
		name := kindDef[kind]
		st := defs[name]
		if st == nil {
			t.Errorf("kind %s: def %q is not a definition declared as a struct at the top of a schema file", kind, name)
			continue
		}
		declared := map[string]bool{}
		fit, err := def.Fields(cue.Optional(true))
		if err != nil {
			t.Fatal(err)
		}
		for fit.Next() {
			declared[fit.Selector().Unquoted()] = true
		}
		for _, d := range st.Elts {
			switch d := d.(type) {
			case *ast.Field:
				if _, ok := d.Label.(*ast.ListLit); ok {
					t.Errorf("kind %s: %s has a pattern of field names at its top", kind, name)
				}
			case *ast.Comprehension:
				body, ok := d.Value.(*ast.StructLit)
				if !ok {
					t.Errorf("kind %s: %s has a comprehension whose value is not a struct", kind, name)
					continue
				}
				for _, e := range body.Elts {
					f, ok := e.(*ast.Field)
					if !ok {
						t.Errorf("kind %s: %s has a comprehension that embeds a value", kind, name)
						continue
					}
					lbl, _, err := ast.LabelName(f.Label)
					if err != nil || !declared[lbl] {
						t.Errorf("kind %s: a comprehension of %s declares field %s, which %s does not declare itself", kind, name, lbl, name)
					}
				}
			case *ast.EmbedDecl:
				if _, ok := d.Expr.(*ast.Ident); !ok {
					t.Errorf("kind %s: %s embeds something other than a definition", kind, name)
				}
			case *ast.Ellipsis:
				t.Errorf("kind %s: %s is left open (...)", kind, name)
			}
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d kinds checked", n)
	}
}

// TestDecodePart_SiteCatalogListsFields: a site's own #Catalog may leave a
// part untyped, so that two resources of one kind have different fields;
// each keeps its own (decodePart lists them instead of looking them up by
// the first resource's names).
func TestDecodePart_SiteCatalogListsFields(t *testing.T) {
	extra := map[string]string{"sites/example/extra.cue": `package example

nodes: "online-1": resources: {
	"file:/etc/fsgit-a": {path: "/etc/fsgit-a", mode: "0644"}
	"file:/etc/fsgit-b": {path: "/etc/fsgit-b", content: "b\n", owner: "root"}
}
`}
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if name == "profile/catalog.cue" {
			const typed = "nodeResources: schema.#Resources & node.resources"
			if !strings.Contains(src, typed) {
				t.Fatalf("%s no longer says %q", name, typed)
			}
			src = strings.Replace(src, typed, "nodeResources: node.resources", 1)
		}
		extra["schema/"+name] = src
	}
	s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	if s.profileDefs.Exists() {
		t.Fatal("a site's own catalog.cue is taken for the built-in one")
	}
	c := catalog(t, s, "online-1")
	for id, want := range map[reconciler.ID]string{
		"file:/etc/fsgit-a": `{"mode":"0644","path":"/etc/fsgit-a"}`,
		"file:/etc/fsgit-b": `{"content":"b\n","owner":"root","path":"/etc/fsgit-b"}`,
	} {
		r := c.Lookup(id)
		if r == nil {
			t.Fatalf("%s not in the catalog", id)
		}
		if got := string(r.Spec); got != want {
			t.Errorf("%s: spec %s, want %s", id, got, want)
		}
	}
}
