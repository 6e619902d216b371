package iceberg

import (
	"fmt"
	"slices"

	"github.com/fsgit/fsgit/reconciler"
)

// ColumnUpdate is a compatible change to an existing column.
type ColumnUpdate struct {
	// ID is the column's field ID; Path its current name.
	ID   int
	Path string
	// Name is the new name, or "" when it stays.
	Name string
	// Type is the new (promoted) type, or "" when it stays.
	Type string
	// MakeOptional drops the column's required flag.
	MakeOptional bool
	// SetDoc says that Doc is the column's new doc.
	SetDoc bool
	Doc    string
}

// SchemaDiff is what it takes to evolve a table's current columns to the
// declared ones: the plan's changes, and the operations in schema
// evolution terms.
type SchemaDiff struct {
	// Changes are the field-level changes for the plan.
	Changes []reconciler.Change
	// Updates are the compatible changes to existing columns, in declared
	// order.
	Updates []ColumnUpdate
	// Deletes names the columns to drop (destructive).
	Deletes []string
	// Added lists the new columns in the order they are added (by ID:
	// Iceberg gives them last-column-id+1, +2, ...), with canonical types.
	Added []FieldSpec
}

// DiffFields compares a table's current top-level columns (cur, with
// iceberg-go's type strings) with the declared ones, by field ID. It
// refuses what Iceberg cannot do compatibly with a *RefusedError; dropping
// a column is a destructive change. tbl names the table in messages.
func DiffFields(tbl string, cur []FieldSpec, lastColumnID int, want []FieldSpec) (*SchemaDiff, error) {
	d := &SchemaDiff{}
	byID := map[int]FieldSpec{}
	for _, f := range cur {
		byID[f.ID] = f
	}
	declared := map[int]bool{}
	var added []FieldSpec
	for _, w := range want {
		declared[w.ID] = true
		wt, err := parseType(w.Type)
		if err != nil {
			return nil, err
		}
		have, ok := byID[w.ID]
		if !ok {
			if w.Required {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: "a new required column cannot be added: the rows already written have no value for it; declare it with required: false"}
			}
			w.Type = wt.str
			added = append(added, w)
			continue
		}
		field := fmt.Sprintf("schema.fields.%d", w.ID)
		upd := ColumnUpdate{ID: w.ID, Path: have.Name}
		if have.Name != w.Name {
			upd.Name = w.Name
			d.Changes = append(d.Changes, reconciler.Change{Field: field + ".name", Before: have.Name, After: w.Name, Class: reconciler.Safe})
		}
		if have.Type != wt.str {
			ht, err := parseType(have.Type)
			if err != nil || !promotable(ht, wt) {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: fmt.Sprintf("changing type %s to %s is not a compatible change in Iceberg (only int to long, float to double and widening a decimal's precision are); add a new column instead", have.Type, wt)}
			}
			upd.Type = wt.str
			d.Changes = append(d.Changes, reconciler.Change{Field: field + ".type", Before: have.Type, After: wt.str, Class: reconciler.Safe})
		}
		if have.Required != w.Required {
			if w.Required {
				return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", w.ID, w.Name),
					Reason: "making an optional column required is not a compatible change in Iceberg: rows already written may hold nulls"}
			}
			upd.MakeOptional = true
			d.Changes = append(d.Changes, reconciler.Change{Field: field + ".required", Before: "true", After: "false", Class: reconciler.Safe})
		}
		if have.Doc != w.Doc {
			upd.SetDoc, upd.Doc = true, w.Doc
			d.Changes = append(d.Changes, reconciler.Change{Field: field + ".doc", Before: have.Doc, After: w.Doc, Class: reconciler.Safe})
		}
		if upd.Name != "" || upd.Type != "" || upd.MakeOptional || upd.SetDoc {
			d.Updates = append(d.Updates, upd)
		}
	}
	for _, have := range cur {
		if declared[have.ID] {
			continue
		}
		d.Changes = append(d.Changes, reconciler.Change{Field: fmt.Sprintf("schema.fields.%d", have.ID),
			Before: DescribeField(have.Name, have.Type, have.Required), Class: reconciler.Destructive})
		d.Deletes = append(d.Deletes, have.Name)
	}
	slices.SortFunc(added, func(a, b FieldSpec) int { return a.ID - b.ID })
	next := lastColumnID
	for _, a := range added {
		next++
		if a.ID != next {
			return nil, &RefusedError{Table: tbl, Field: fmt.Sprintf("schema field %d %q", a.ID, a.Name),
				Reason: fmt.Sprintf("Iceberg gives a new column the next free id, %d (the table's last column id is %d); declare %q with id %d", next, lastColumnID, a.Name, next)}
		}
		d.Changes = append(d.Changes, reconciler.Change{Field: fmt.Sprintf("schema.fields.%d", a.ID),
			After: DescribeField(a.Name, a.Type, false), Class: reconciler.Safe})
	}
	d.Added = added
	return d, nil
}
