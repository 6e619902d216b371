package iceberg

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/reconciler"
)

// SchemaSpec is a table's declared schema.
type SchemaSpec struct {
	Fields []FieldSpec `json:"fields"`
}

// FieldSpec is one top-level column. ID is Iceberg's field ID: columns are
// matched by it, so a changed name with the same ID is a rename.
type FieldSpec struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Doc      string `json:"doc,omitempty"`
}

// PartitionFieldSpec is one field of the partition spec.
type PartitionFieldSpec struct {
	SourceID  int    `json:"sourceId"`
	Transform string `json:"transform"`
	Name      string `json:"name"`
}

// RefusedError is a declared change that Iceberg cannot make compatibly
// (narrowing a type, adding a required column, ...). Nothing was changed;
// the CUE must change.
type RefusedError struct {
	// Table is "namespace.name".
	Table string
	// Field names the column or property concerned.
	Field string
	// Reason says why, and what to declare instead.
	Reason string
}

// Error returns the refusal as a sentence.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("iceberg table %s: refused change to %s: %s", e.Table, e.Field, e.Reason)
}

// parseType reads an Iceberg type name ("long", "decimal(10,2)",
// "fixed[16]", ...) with iceberg-go's own parser.
func parseType(s string) (iceberg.Type, error) {
	b, err := json.Marshal(map[string]any{"id": 1, "name": "f", "type": s, "required": false})
	if err != nil {
		return nil, err
	}
	var f iceberg.NestedField
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("type %q: %w", s, err)
	}
	if _, ok := f.Type.(iceberg.PrimitiveType); !ok {
		return nil, fmt.Errorf("type %q is not a primitive type", s)
	}
	return f.Type, nil
}

// validateSchema checks the declared schema and partition spec.
func validateSchema(s *SchemaSpec, parts []PartitionFieldSpec) error {
	if len(s.Fields) == 0 {
		return fmt.Errorf("schema has no fields")
	}
	ids, names := map[int]bool{}, map[string]bool{}
	byID := map[int]iceberg.Type{}
	for _, f := range s.Fields {
		if f.ID < 1 {
			return fmt.Errorf("field %q: id %d must be >= 1", f.Name, f.ID)
		}
		if f.Name == "" || strings.Contains(f.Name, ".") {
			return fmt.Errorf("field %d: name %q must be non-empty and without a dot", f.ID, f.Name)
		}
		if ids[f.ID] {
			return fmt.Errorf("field id %d is declared twice", f.ID)
		}
		if names[f.Name] {
			return fmt.Errorf("field name %q is declared twice", f.Name)
		}
		ids[f.ID], names[f.Name] = true, true
		t, err := parseType(f.Type)
		if err != nil {
			return fmt.Errorf("field %d %q: %w", f.ID, f.Name, err)
		}
		byID[f.ID] = t
	}
	pnames := map[string]bool{}
	for _, p := range parts {
		t, ok := byID[p.SourceID]
		if !ok {
			return fmt.Errorf("partition field %q: source id %d is not a field of the schema", p.Name, p.SourceID)
		}
		tr, err := iceberg.ParseTransform(p.Transform)
		if err != nil {
			return fmt.Errorf("partition field %q: %w", p.Name, err)
		}
		if !tr.CanTransform(t) {
			return fmt.Errorf("partition field %q: transform %s does not apply to type %s", p.Name, tr, t)
		}
		if p.Name == "" || pnames[p.Name] {
			return fmt.Errorf("partition field name %q is empty or declared twice", p.Name)
		}
		pnames[p.Name] = true
	}
	return nil
}

// newSchema builds the schema for a new table. Iceberg assigns fresh field
// IDs 1..n in order when it creates a table, so the declared IDs must be
// exactly that, or the catalog would disagree with the CUE from the start.
func newSchema(tbl string, s *SchemaSpec) (*iceberg.Schema, error) {
	fields := make([]iceberg.NestedField, len(s.Fields))
	for i, f := range s.Fields {
		if f.ID != i+1 {
			return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %q", f.Name),
				Reason: fmt.Sprintf("a new table gets field ids 1..%d in declaration order, and %q is declared with id %d (expected %d)", len(s.Fields), f.Name, f.ID, i+1)}
		}
		t, err := parseType(f.Type)
		if err != nil {
			return nil, err
		}
		fields[i] = iceberg.NestedField{ID: f.ID, Name: f.Name, Type: t, Required: f.Required, Doc: f.Doc}
	}
	return iceberg.NewSchema(0, fields...), nil
}

// newPartitionSpec builds the partition spec for a new table.
func newPartitionSpec(sc *iceberg.Schema, parts []PartitionFieldSpec) (*iceberg.PartitionSpec, error) {
	opts := make([]iceberg.PartitionOption, 0, len(parts))
	for _, p := range parts {
		tr, err := iceberg.ParseTransform(p.Transform)
		if err != nil {
			return nil, err
		}
		opts = append(opts, iceberg.AddPartitionFieldBySourceID(p.SourceID, p.Name, tr, sc, nil))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("build partition spec: %w", err)
	}
	return &spec, nil
}

// describeField renders a declared or observed column for a plan.
func describeField(name string, t iceberg.Type, required bool) string {
	req := "optional"
	if required {
		req = "required"
	}
	return fmt.Sprintf("%s %s %s", name, t, req)
}

// schemaString is a stable one-line summary of a schema, for Observed.
func schemaString(sc *iceberg.Schema) string {
	parts := make([]string, 0, sc.NumFields())
	for _, f := range sc.Fields() {
		parts = append(parts, fmt.Sprintf("%d:%s", f.ID, describeField(f.Name, f.Type, f.Required)))
	}
	return strings.Join(parts, ", ")
}

// schemaDiff is what it takes to evolve the current schema to the declared
// one, in iceberg-go's UpdateSchema terms.
type schemaDiff struct {
	changes []reconciler.Change
	// apply adds the operations to an UpdateSchema; nil when no change.
	ops []func(u *table.UpdateSchema)
	// added lists the declared IDs of new columns, in the order they are
	// added (Iceberg gives them last-column-id+1, +2, ...).
	added []FieldSpec
}

// promotable reports whether Iceberg's schema evolution can widen from to
// to: int to long, float to double, decimal(P,S) to decimal(P',S) with
// P' >= P. These are the promotions of the table spec (and Java's
// TypeUtil); iceberg-go's reader also accepts string/binary swaps, which
// Spark would refuse, so they are refused here too.
func promotable(from, to iceberg.Type) bool {
	switch f := from.(type) {
	case iceberg.Int32Type:
		_, ok := to.(iceberg.Int64Type)
		return ok
	case iceberg.Float32Type:
		_, ok := to.(iceberg.Float64Type)
		return ok
	case iceberg.DecimalType:
		t, ok := to.(iceberg.DecimalType)
		return ok && t.Scale() == f.Scale() && t.Precision() >= f.Precision()
	}
	return false
}

// diffSchema compares the current schema with the declared fields, by
// field ID. It refuses what Iceberg cannot do compatibly with a
// *RefusedError; dropping a column is a destructive change.
func diffSchema(tbl string, cur *iceberg.Schema, lastColumnID int, want []FieldSpec) (*schemaDiff, error) {
	d := &schemaDiff{}
	declared := map[int]bool{}
	var added []FieldSpec
	for _, w := range want {
		declared[w.ID] = true
		wt, err := parseType(w.Type)
		if err != nil {
			return nil, err
		}
		have, ok := cur.FindFieldByID(w.ID)
		if !ok {
			if w.Required {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: "a new required column cannot be added: the rows already written have no value for it; declare it with required: false"}
			}
			added = append(added, w)
			continue
		}
		field := fmt.Sprintf("schema.fields.%d", w.ID)
		path := []string{have.Name}
		var upd table.ColumnUpdate
		if have.Name != w.Name {
			upd.Name = iceberg.Optional[string]{Val: w.Name, Valid: true}
			d.changes = append(d.changes, reconciler.Change{Field: field + ".name", Before: have.Name, After: w.Name, Class: reconciler.Safe})
		}
		if !have.Type.Equals(wt) {
			if !promotable(have.Type, wt) {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: fmt.Sprintf("changing type %s to %s is not a compatible change in Iceberg (only int to long, float to double and widening a decimal's precision are); add a new column instead", have.Type, wt)}
			}
			upd.FieldType = iceberg.Optional[iceberg.Type]{Val: wt, Valid: true}
			d.changes = append(d.changes, reconciler.Change{Field: field + ".type", Before: have.Type.String(), After: wt.String(), Class: reconciler.Safe})
		}
		if have.Required != w.Required {
			if w.Required {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: "making an optional column required is not a compatible change in Iceberg: rows already written may hold nulls"}
			}
			upd.Required = iceberg.Optional[bool]{Val: false, Valid: true}
			d.changes = append(d.changes, reconciler.Change{Field: field + ".required", Before: "true", After: "false", Class: reconciler.Safe})
		}
		if have.Doc != w.Doc {
			upd.Doc = iceberg.Optional[string]{Val: w.Doc, Valid: true}
			d.changes = append(d.changes, reconciler.Change{Field: field + ".doc", Before: have.Doc, After: w.Doc, Class: reconciler.Safe})
		}
		if upd.Name.Valid || upd.FieldType.Valid || upd.Required.Valid || upd.Doc.Valid {
			d.ops = append(d.ops, func(u *table.UpdateSchema) { u.UpdateColumn(path, upd) })
		}
	}
	for _, have := range cur.Fields() {
		if declared[have.ID] {
			continue
		}
		path := []string{have.Name}
		d.changes = append(d.changes, reconciler.Change{Field: fmt.Sprintf("schema.fields.%d", have.ID),
			Before: describeField(have.Name, have.Type, have.Required), Class: reconciler.Destructive})
		// Deletes run first, so that a new column may reuse a dropped name.
		d.ops = append([]func(u *table.UpdateSchema){func(u *table.UpdateSchema) { u.DeleteColumn(path) }}, d.ops...)
	}
	slices.SortFunc(added, func(a, b FieldSpec) int { return a.ID - b.ID })
	next := lastColumnID
	for _, a := range added {
		next++
		if a.ID != next {
			return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", a.ID, a.Name),
				Reason: fmt.Sprintf("Iceberg gives a new column the next free id, %d (the table's last column id is %d); declare %q with id %d", next, lastColumnID, a.Name, next)}
		}
		t, _ := parseType(a.Type)
		d.changes = append(d.changes, reconciler.Change{Field: fmt.Sprintf("schema.fields.%d", a.ID),
			After: describeField(a.Name, t, false), Class: reconciler.Safe})
		name, doc := a.Name, a.Doc
		d.ops = append(d.ops, func(u *table.UpdateSchema) { u.AddColumn([]string{name}, t, doc, false, nil) })
	}
	d.added = added
	return d, nil
}

// specString is a stable summary of a partition spec: "day(4) ts_day, ...",
// by source ID.
func specString(fields []PartitionFieldSpec) string {
	if len(fields) == 0 {
		return "unpartitioned"
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%s(%d) %s", f.Transform, f.SourceID, f.Name)
	}
	return strings.Join(parts, ", ")
}

// currentSpec returns the table's default partition spec in spec terms.
func currentSpec(md table.Metadata) []PartitionFieldSpec {
	spec := md.PartitionSpec()
	var out []PartitionFieldSpec
	for _, f := range spec.Fields() {
		if _, void := f.Transform.(iceberg.VoidTransform); void {
			// A removed partition field stays as void in format v1.
			continue
		}
		out = append(out, PartitionFieldSpec{SourceID: f.SourceID(), Transform: f.Transform.String(), Name: f.Name})
	}
	return out
}

// normalizeSpec parses and re-prints each transform so that "Day" and
// "day" compare equal.
func normalizeSpec(in []PartitionFieldSpec) []PartitionFieldSpec {
	out := make([]PartitionFieldSpec, 0, len(in))
	for _, f := range in {
		if tr, err := iceberg.ParseTransform(f.Transform); err == nil {
			f.Transform = tr.String()
		}
		if f.Transform == "void" {
			continue
		}
		out = append(out, f)
	}
	return out
}
