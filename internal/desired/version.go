package desired

import (
	"fmt"
	"io/fs"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"

	"github.com/fsgit/fsgit/schema"
)

// SchemaVersion returns the version of the embedded schema, #Version in
// schema/version.cue. It is read from the file (parsed, not evaluated),
// so the version is declared once, in CUE.
func SchemaVersion() string {
	return schemaVersion()
}

var schemaVersion = sync.OnceValue(func() string {
	src, err := fs.ReadFile(schema.Files(), "version.cue")
	if err != nil {
		panic(fmt.Sprintf("desired: read the schema's version.cue: %v", err))
	}
	v, err := versionOf(src)
	if err != nil {
		// The file is embedded: a bad one is a programming error.
		panic(fmt.Sprintf("desired: %v", err))
	}
	return v
})

// versionOf returns the #Version string that version.cue (src) declares.
func versionOf(src []byte) (string, error) {
	f, err := parser.ParseFile("version.cue", src)
	if err != nil {
		return "", fmt.Errorf("parse version.cue: %w", err)
	}
	for _, d := range f.Decls {
		field, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if name, _, _ := ast.LabelName(field.Label); name != "#Version" {
			continue
		}
		if lit, ok := field.Value.(*ast.BasicLit); ok {
			if s, err := literal.Unquote(lit.Value); err == nil {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("version.cue declares no #Version string")
}
