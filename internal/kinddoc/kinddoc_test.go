package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKindsDoc_UpToDate fails while docs/kinds.md or schema/resources.cue
// is not what kinddoc writes from the schema and the template.
func TestKindsDoc_UpToDate(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){
		"docs/kinds.md":        page,
		"schema/resources.cue": resourcesFile,
	} {
		want, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s is out of date with schema/kinds.cue or internal/kinddoc/kinds.md.tmpl: run go run ./internal/kinddoc", file)
		}
	}
}

// TestResources_PatternPerKind: a kind's pattern quotes the dots of its
// name, applies its check and takes its key field from the ID; a kind
// without a key has none.
func TestResources_PatternPerKind(t *testing.T) {
	src := []byte(`package schema

#A: {name: string}
#Kinds: "a.b": {def: #A, key: "name", example: {}}

#C: {x?: int}
#Kinds: c: {
	def: #C
	// a c needs an x
	check: matchN(1, [{x!: _}])
	example: {}
}
`)
	got, err := resources(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`[K=(=~"^a\\.b:")]: #A & {name: strings.TrimPrefix(K, "a.b:")}`,
		`[=~"^c:"]: #C & #Kinds["c"].check`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("resources.cue lacks %s:\n%s", want, got)
		}
	}
}

// TestRender_TablesFromTheSchema: a field's constraint, default, doc
// comment, required or optional mark and key-from-ID mark come from the
// schema (the kind, its key, its check and its example from the kind's
// entry in #Kinds); a note template lands under its definition's table.
func TestRender_TablesFromTheSchema(t *testing.T) {
	src := []byte(`package schema

// #Thing is a thing.
#Thing: {
	#Common
	// name is what it is called.
	name:  =~"^[a-z]+$"
	size:  *3 | int & >0
	tag?:  string
	kind!: "a" | "b"
	parts: [...{
		id: int
	}]
}

#Kinds: thing: {
	def: #Thing
	key: "name"
	// a thing needs a tag or a size
	check: matchN(>=1, [{tag!: _}, {size!: _}])
	example: "thing:a": {kind: "a"}
}
`)
	var b bytes.Buffer
	tmpl := `{{range .Defs}}## {{.Kind}}
{{range .Fields}}{{.Name}}|{{.Type}}|{{.Default}}|{{.Doc}}|{{.Required}}|{{.Optional}}|{{.FromID}}
{{end}}{{range .Checks}}check: {{.}}
{{end}}{{.Example}}
{{note .Kind}}{{end}}{{define "note:thing"}}hand-written{{end}}`
	if err := render(&b, src, tmpl); err != nil {
		t.Fatal(err)
	}
	want := `## thing
name|=~"^[a-z]+$"||name is what it is called.|false|false|true
size|3 | int & >0|3||false|false|false
tag|string|||false|true|false
kind|"a" | "b"|||true|false|false
parts|list|||false|false|false
parts[].id|int|||false|false|false
check: a thing needs a tag or a size
"thing:a": {kind: "a"}
hand-written`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
