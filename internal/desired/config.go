package desired

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// ConfigError is a configuration file that does not validate against its
// schema definition: one problem per field.
type ConfigError struct {
	Problems []Problem
}

// Error renders the problems one a line, as vet does, each followed by the
// doc of the schema type the field has when there is one.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// DecodeConfig validates src (CUE or JSON, named name in messages)
// against the definition def (such as "#AgentConfig") of the schema
// package's top-level files in schemaFS, and decodes it into out with the
// schema's defaults filled in. A problem in src is a *ConfigError,
// reported once per field, with its position in src and what the field's
// type expects.
func DecodeConfig(schemaFS fs.FS, def, name string, src []byte, out any) error {
	ctx := cuecontext.New()
	d, err := schemaDefinition(ctx, schemaFS, def)
	if err != nil {
		return err
	}
	user := ctx.CompileBytes(src, cue.Filename(name))
	if err := user.Err(); err != nil {
		return configError(d, def, name, err)
	}
	v := d.Unify(user)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return configError(d, def, name, err)
	}
	if err := v.Decode(out); err != nil {
		return configError(d, def, name, err)
	}
	return nil
}

// schemaDefinition builds the schema package's top-level files and
// returns the definition def.
func schemaDefinition(ctx *cue.Context, schemaFS fs.FS, def string) (cue.Value, error) {
	inst := build.NewContext().NewInstance("schema", nil)
	entries, err := fs.ReadDir(schemaFS, ".")
	if err != nil {
		return cue.Value{}, fmt.Errorf("read schema: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".cue" {
			continue
		}
		b, err := fs.ReadFile(schemaFS, e.Name())
		if err != nil {
			return cue.Value{}, fmt.Errorf("read schema: %w", err)
		}
		if err := inst.AddFile("schema/"+e.Name(), b); err != nil {
			return cue.Value{}, fmt.Errorf("parse schema/%s: %w", e.Name(), err)
		}
	}
	v := ctx.BuildInstance(inst)
	d := v.LookupPath(cue.ParsePath(def))
	if err := d.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("schema has no valid %s:\n%s", def, strings.TrimSpace(cueerrors.Details(err, nil)))
	}
	return d, nil
}

// configError renders a validation error one problem per field: the
// position in the configuration file, the field, the most telling message
// (see defaultsNoise), and the doc of the schema type the
// field has.
func configError(d cue.Value, def, name string, err error) error {
	type field struct {
		path string
		msgs []string
		pos  string
	}
	var order []*field
	byPath := map[string]*field{}
	for _, e := range cueerrors.Errors(err) {
		path := strings.TrimPrefix(strings.Join(e.Path(), "."), def+".")
		f := byPath[path]
		if f == nil {
			f = &field{path: path}
			byPath[path] = f
			order = append(order, f)
		}
		format, args := e.Msg()
		f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
		for _, p := range append(e.InputPositions(), e.Position()) {
			if p.IsValid() && p.Filename() == name && f.pos == "" {
				f.pos = fmt.Sprintf("%s:%d:%d", name, p.Line(), p.Column())
			}
		}
	}
	ce := &ConfigError{}
	for _, f := range order {
		msg := f.msgs[0]
		for _, m := range f.msgs {
			if !defaultsNoise(m) {
				msg = m
				break
			}
		}
		p := Problem{Pos: f.pos, Msg: msg}
		if p.Pos == "" {
			p.Pos = name
		}
		if f.path != "" {
			p.Msg = f.path + ": " + msg
		}
		if doc := typeDoc(d, f.path); doc != "" {
			p.Msg += "\n\t" + doc
		}
		ce.Problems = append(ce.Problems, p)
	}
	return ce
}

// typeDoc returns the first paragraph of the doc of the schema definition
// that the field at path is declared with (#AbsPath, #Duration, ...), on
// one line, or "".
func typeDoc(def cue.Value, path string) string {
	if path == "" {
		return ""
	}
	// A field may be optional (maxTipAge?): look each selector up as a
	// regular field, else as an optional one.
	f := def
	for _, sel := range cue.ParsePath(path).Selectors() {
		w := f.LookupPath(cue.MakePath(sel))
		if !w.Exists() && sel.Type() == cue.StringLabel {
			w = f.LookupPath(cue.MakePath(sel.Optional()))
		}
		if !w.Exists() {
			return ""
		}
		f = w
	}
	_, args := f.Expr()
	for _, a := range append([]cue.Value{f}, args...) {
		root, ref := a.ReferencePath()
		if len(ref.Selectors()) == 0 {
			continue
		}
		for _, d := range root.LookupPath(ref).Doc() {
			para, _, _ := strings.Cut(strings.TrimSpace(d.Text()), "\n\n")
			return strings.Join(strings.Fields(para), " ")
		}
	}
	return ""
}

// YAML converts a JSON document to YAML, keeping its field order.
func YAML(js []byte) ([]byte, error) {
	v := cuecontext.New().CompileBytes(js)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("convert to yaml: %w", err)
	}
	b, err := cueyaml.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("convert to yaml: %w", err)
	}
	return b, nil
}
