// Package offline is fsgit verify's offline step on iceberg-go: it appends
// the feature's history row to an Iceberg table through the JDBC catalog,
// committing a real data file and snapshot, and reads it back. It runs in
// the fsgit-iceberg helper (op verify-offline), so that fsgit itself does
// not link iceberg-go.
package offline

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	iceberggo "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/jdbc"
)

// Feature is the history row to append: the feature value of an entity at
// a time (kept to the microsecond).
type Feature struct {
	Entity string
	Name   string
	Value  float64
	Time   time.Time
}

// historyColumns maps the roles of a history row to the table's columns.
type historyColumns struct {
	entity, feature, value, ts string
}

// mapColumns finds the table's columns for the entity, the feature's name,
// its value and the event time, by name and type. Each role takes the
// first unclaimed column that fits its first rule, then its second: the
// entity is a string column named *entity*, else "id" or *_id; the feature
// a string column named *feature*, else "name"; the value a column named
// *value*; the time a timestamp column. So both the seed's Spark frame
// (id, name, value, ts) and entity_id, feature_name, feature_value,
// event_timestamp map.
func mapColumns(sc *iceberggo.Schema) (historyColumns, error) {
	fields := sc.Fields()
	claimed := map[string]bool{}
	pick := func(rules ...func(f iceberggo.NestedField, name string) bool) string {
		for _, rule := range rules {
			for _, f := range fields {
				if !claimed[f.Name] && rule(f, strings.ToLower(f.Name)) {
					claimed[f.Name] = true
					return f.Name
				}
			}
		}
		return ""
	}
	isString := func(f iceberggo.NestedField) bool { _, ok := f.Type.(iceberggo.StringType); return ok }
	var c historyColumns
	c.value = pick(func(_ iceberggo.NestedField, n string) bool { return strings.Contains(n, "value") })
	c.ts = pick(func(f iceberggo.NestedField, _ string) bool { return isTimestamp(f.Type) })
	c.entity = pick(
		func(f iceberggo.NestedField, n string) bool { return isString(f) && strings.Contains(n, "entity") },
		func(f iceberggo.NestedField, n string) bool {
			return isString(f) && (n == "id" || strings.HasSuffix(n, "_id"))
		})
	c.feature = pick(
		func(f iceberggo.NestedField, n string) bool { return isString(f) && strings.Contains(n, "feature") },
		func(f iceberggo.NestedField, n string) bool { return isString(f) && n == "name" })
	var missing []string
	for _, m := range []struct{ role, col string }{
		{"the entity (a string column named *entity*, id or *_id)", c.entity},
		{"the feature (a string column named *feature* or name)", c.feature},
		{"the value (a column named *value*)", c.value},
		{"the time (a timestamp column)", c.ts},
	} {
		if m.col == "" {
			missing = append(missing, m.role)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("the table has no column for %s; its schema is %s", strings.Join(missing, ", "), sc)
	}
	return c, nil
}

func isTimestamp(t iceberggo.Type) bool {
	switch t.(type) {
	case iceberggo.TimestampType, iceberggo.TimestampTzType:
		return true
	}
	return false
}

// historyRecord builds the one-row arrow batch of the feature's history
// row in the table's schema; columns with no role are null (and must then
// be optional).
func historyRecord(sc *iceberggo.Schema, cols historyColumns, f Feature) (arrow.RecordBatch, error) {
	asc, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("arrow schema of %s: %w", sc, err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer b.Release()
	value := strconv.FormatFloat(f.Value, 'f', -1, 64)
	for i, field := range sc.Fields() {
		fb := b.Field(i)
		var err error
		switch field.Name {
		case cols.entity:
			err = appendString(fb, f.Entity)
		case cols.feature:
			err = appendString(fb, f.Name)
		case cols.value:
			err = appendValue(fb, f.Value, value)
		case cols.ts:
			tb, ok := fb.(*array.TimestampBuilder)
			if !ok {
				return nil, fmt.Errorf("column %s: arrow builder %T for a timestamp", field.Name, fb)
			}
			unit := tb.Type().(*arrow.TimestampType).Unit
			switch unit {
			case arrow.Microsecond:
				tb.Append(arrow.Timestamp(f.Time.UnixMicro()))
			case arrow.Nanosecond:
				tb.Append(arrow.Timestamp(f.Time.UnixNano()))
			default:
				return nil, fmt.Errorf("column %s: timestamp unit %s", field.Name, unit)
			}
		default:
			if field.Required {
				return nil, fmt.Errorf("column %s is required and a history row has no value for it", field.Name)
			}
			fb.AppendNull()
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", field.Name, err)
		}
	}
	return b.NewRecordBatch(), nil
}

func appendString(b array.Builder, s string) error {
	switch sb := b.(type) {
	case *array.StringBuilder:
		sb.Append(s)
	case *array.LargeStringBuilder:
		sb.Append(s)
	default:
		return fmt.Errorf("a string column with builder %T", b)
	}
	return nil
}

// appendValue writes the value as the column's type: a number, or its
// decimal text (string or binary, as the online store keeps it).
func appendValue(b array.Builder, v float64, text string) error {
	switch vb := b.(type) {
	case *array.Float64Builder:
		vb.Append(v)
	case *array.Float32Builder:
		vb.Append(float32(v))
	case *array.StringBuilder:
		vb.Append(text)
	case *array.LargeStringBuilder:
		vb.Append(text)
	case *array.BinaryBuilder:
		vb.Append([]byte(text))
	default:
		return fmt.Errorf("value column of arrow type %s: use double, float, string or binary", b.Type())
	}
	return nil
}

// Run appends the history row f to the table spec through its JDBC
// catalog, logging in with password, committing a data file and a
// snapshot, then reads the new file and the feature's history back. root
// maps a file:// warehouse as `apply --root` did. It returns the lines to
// print, also on failure.
func Run(ctx context.Context, spec iceberg.TableSpec, password reconciler.Secret, root string, f Feature) ([]string, error) {
	cat, err := jdbc.Open(ctx, spec.Catalog, password, root)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	tbl, err := cat.SQL().LoadTable(ctx, spec.Ident())
	if err != nil {
		return nil, fmt.Errorf("load %s from catalog %s: %w", spec.FullName(), spec.Catalog.Name, err)
	}
	cols, err := mapColumns(tbl.Schema())
	if err != nil {
		return nil, err
	}
	rec, err := historyRecord(tbl.Schema(), cols, f)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return nil, fmt.Errorf("record reader: %w", err)
	}
	defer rdr.Release()
	out, err := tbl.Append(ctx, rdr, iceberggo.Properties{"fsgit.verify": f.Entity + "/" + f.Name})
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", spec.FullName(), err)
	}
	snap := out.CurrentSnapshot()
	if snap == nil {
		return nil, errors.New("the append committed no snapshot")
	}
	lines := []string{fmt.Sprintf("committed snapshot %d (%s, %s added records) at %s",
		snap.SnapshotID, snap.Summary.Operation, snap.Summary.Properties["added-records"], out.MetadataLocation())}

	// The data file this snapshot added, read back alone.
	tasks, err := out.NewIncrementalAppendScan().FromSnapshotInclusive(snap.SnapshotID).ToSnapshot(snap.SnapshotID).PlanFiles(ctx)
	if err != nil {
		return lines, fmt.Errorf("plan the new snapshot's files: %w", err)
	}
	if len(tasks) != 1 {
		return lines, fmt.Errorf("the new snapshot added %d data files, want 1", len(tasks))
	}
	path := tasks[0].File.FilePath()
	if p, ok := strings.CutPrefix(path, "file://"); ok {
		if _, err := os.Stat(p); err != nil {
			return lines, fmt.Errorf("the new data file is not on disk: %w", err)
		}
	}
	lines = append(lines, fmt.Sprintf("data file %s (%s, %d records, %d bytes)", path, tasks[0].File.FileFormat(), tasks[0].File.Count(), tasks[0].File.FileSizeBytes()))
	scan := out.Scan()
	_, batches, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return lines, fmt.Errorf("read the new data file: %w", err)
	}
	found, n, err := findRow(batches, cols, f)
	if err != nil {
		return lines, fmt.Errorf("read the new data file: %w", err)
	}
	if n != 1 || !found {
		return lines, fmt.Errorf("the new data file holds %d rows and our row: %v", n, found)
	}

	// The feature's whole history, through a filtered scan of the table.
	hist, err := out.Scan(table.WithRowFilter(iceberggo.NewAnd(
		iceberggo.EqualTo(iceberggo.Reference(cols.entity), f.Entity),
		iceberggo.EqualTo(iceberggo.Reference(cols.feature), f.Name)))).ToArrowTable(ctx)
	if err != nil {
		return lines, fmt.Errorf("scan the history of %s/%s: %w", f.Entity, f.Name, err)
	}
	defer hist.Release()
	lines = append(lines, fmt.Sprintf("read back the row %s/%s = %s at %s; the table holds %d history rows for it",
		f.Entity, f.Name, strconv.FormatFloat(f.Value, 'f', -1, 64), f.Time.Format("2006-01-02T15:04:05.000000Z"), hist.NumRows()))
	return lines, nil
}

// findRow reads batches and reports whether one row is the feature's
// history row, and how many rows there were.
func findRow(batches iter.Seq2[arrow.RecordBatch, error], cols historyColumns, f Feature) (bool, int64, error) {
	var n int64
	found := false
	for rec, err := range batches {
		if err != nil {
			return false, n, err
		}
		idx := func(name string) int {
			is := rec.Schema().FieldIndices(name)
			if len(is) == 0 {
				return -1
			}
			return is[0]
		}
		ei, fi, ti := idx(cols.entity), idx(cols.feature), idx(cols.ts)
		if ei < 0 || fi < 0 || ti < 0 {
			rec.Release()
			return false, n, fmt.Errorf("read columns %v from %s", cols, rec.Schema())
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			e, ok1 := rec.Column(ei).(*array.String)
			fe, ok2 := rec.Column(fi).(*array.String)
			ts, ok3 := rec.Column(ti).(*array.Timestamp)
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			unit := ts.DataType().(*arrow.TimestampType).Unit
			want := f.Time.UnixMicro()
			if unit == arrow.Nanosecond {
				want = f.Time.UnixNano()
			}
			if e.Value(r) == f.Entity && fe.Value(r) == f.Name && int64(ts.Value(r)) == want {
				found = true
			}
		}
		n += rec.NumRows()
		rec.Release()
	}
	return found, n, nil
}
