package jdbc

import (
	"encoding/json"
	"fmt"
	"strings"

	icebergo "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// parseType reads an Iceberg type name ("long", "decimal(10,2)",
// "fixed[16]", ...) with iceberg-go's own parser.
func parseType(s string) (icebergo.Type, error) {
	b, err := json.Marshal(map[string]any{"id": 1, "name": "f", "type": s, "required": false})
	if err != nil {
		return nil, err
	}
	var f icebergo.NestedField
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("type %q: %w", s, err)
	}
	if _, ok := f.Type.(icebergo.PrimitiveType); !ok {
		return nil, fmt.Errorf("type %q is not a primitive type", s)
	}
	return f.Type, nil
}

// newSchema builds the schema for a new table. Iceberg assigns fresh field
// IDs 1..n in order when it creates a table, so the declared IDs must be
// exactly that, or the catalog would disagree with the CUE from the start.
func newSchema(tbl string, s *iceberg.SchemaSpec) (*icebergo.Schema, error) {
	fields := make([]icebergo.NestedField, len(s.Fields))
	for i, f := range s.Fields {
		if f.ID != i+1 {
			return nil, &iceberg.RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %q", f.Name),
				Reason: fmt.Sprintf("a new table gets field ids 1..%d in declaration order, and %q is declared with id %d (expected %d)", len(s.Fields), f.Name, f.ID, i+1)}
		}
		t, err := parseType(f.Type)
		if err != nil {
			return nil, err
		}
		fields[i] = icebergo.NestedField{ID: f.ID, Name: f.Name, Type: t, Required: f.Required, Doc: f.Doc}
	}
	return icebergo.NewSchema(0, fields...), nil
}

// newPartitionSpec builds the partition spec for a new table.
func newPartitionSpec(sc *icebergo.Schema, parts []iceberg.PartitionFieldSpec) (*icebergo.PartitionSpec, error) {
	opts := make([]icebergo.PartitionOption, 0, len(parts))
	for _, p := range parts {
		tr, err := icebergo.ParseTransform(p.Transform)
		if err != nil {
			return nil, err
		}
		opts = append(opts, icebergo.AddPartitionFieldBySourceID(p.SourceID, p.Name, tr, sc, nil))
	}
	spec, err := icebergo.NewPartitionSpecOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("build partition spec: %w", err)
	}
	return &spec, nil
}

// schemaString is a stable one-line summary of a schema, for Observed.
func schemaString(sc *icebergo.Schema) string {
	parts := make([]string, 0, sc.NumFields())
	for _, f := range sc.Fields() {
		parts = append(parts, fmt.Sprintf("%d:%s", f.ID, iceberg.DescribeField(f.Name, f.Type.String(), f.Required)))
	}
	return strings.Join(parts, ", ")
}

// schemaDiff is what it takes to evolve the current schema to the declared
// one, in iceberg-go's UpdateSchema terms.
type schemaDiff struct {
	changes []reconciler.Change
	// ops are the operations to add to an UpdateSchema: deletes first (so
	// that a new column may reuse a dropped name), then updates, then adds.
	ops []func(u *table.UpdateSchema)
	// added lists the declared IDs of new columns, in the order they are
	// added (Iceberg gives them last-column-id+1, +2, ...).
	added []iceberg.FieldSpec
}

// diffSchema compares the current schema with the declared fields, by
// field ID, with [iceberg.DiffFields], and turns the result into
// iceberg-go schema operations.
func diffSchema(tbl string, cur *icebergo.Schema, lastColumnID int, want []iceberg.FieldSpec) (*schemaDiff, error) {
	have := make([]iceberg.FieldSpec, 0, cur.NumFields())
	for _, f := range cur.Fields() {
		have = append(have, iceberg.FieldSpec{ID: f.ID, Name: f.Name, Type: f.Type.String(), Required: f.Required, Doc: f.Doc})
	}
	fd, err := iceberg.DiffFields(tbl, have, lastColumnID, want)
	if err != nil {
		return nil, err
	}
	d := &schemaDiff{changes: fd.Changes, added: fd.Added}
	for _, name := range fd.Deletes {
		path := []string{name}
		d.ops = append(d.ops, func(u *table.UpdateSchema) { u.DeleteColumn(path) })
	}
	for _, c := range fd.Updates {
		var upd table.ColumnUpdate
		if c.Name != "" {
			upd.Name = icebergo.Optional[string]{Val: c.Name, Valid: true}
		}
		if c.Type != "" {
			t, err := parseType(c.Type)
			if err != nil {
				return nil, err
			}
			upd.FieldType = icebergo.Optional[icebergo.Type]{Val: t, Valid: true}
		}
		if c.MakeOptional {
			upd.Required = icebergo.Optional[bool]{Val: false, Valid: true}
		}
		if c.SetDoc {
			upd.Doc = icebergo.Optional[string]{Val: c.Doc, Valid: true}
		}
		path := []string{c.Path}
		d.ops = append(d.ops, func(u *table.UpdateSchema) { u.UpdateColumn(path, upd) })
	}
	for _, a := range fd.Added {
		t, err := parseType(a.Type)
		if err != nil {
			return nil, err
		}
		name, doc := a.Name, a.Doc
		d.ops = append(d.ops, func(u *table.UpdateSchema) { u.AddColumn([]string{name}, t, doc, false, nil) })
	}
	return d, nil
}

// currentSpec returns the table's default partition spec in spec terms.
func currentSpec(md table.Metadata) []iceberg.PartitionFieldSpec {
	spec := md.PartitionSpec()
	var out []iceberg.PartitionFieldSpec
	for _, f := range spec.Fields() {
		if _, void := f.Transform.(icebergo.VoidTransform); void {
			// A removed partition field stays as void in format v1.
			continue
		}
		out = append(out, iceberg.PartitionFieldSpec{SourceID: f.SourceID(), Transform: f.Transform.String(), Name: f.Name})
	}
	return out
}
