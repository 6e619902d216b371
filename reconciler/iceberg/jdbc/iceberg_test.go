package jdbc_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/jdbc"
)

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// historical is the example site's feature_logs.historical_features.
func historical() iceberg.TableSpec {
	return iceberg.TableSpec{
		Namespace: []string{"feature_logs"},
		Name:      "historical_features",
		Schema: iceberg.SchemaSpec{Fields: []iceberg.FieldSpec{
			{ID: 1, Name: "entity_id", Type: "string", Required: true},
			{ID: 2, Name: "feature_name", Type: "string", Required: true},
			{ID: 3, Name: "feature_value", Type: "double"},
			{ID: 4, Name: "event_timestamp", Type: "timestamptz", Required: true},
			{ID: 5, Name: "batch", Type: "int"},
		}},
		PartitionSpec: []iceberg.PartitionFieldSpec{{SourceID: 4, Transform: "day", Name: "event_day"}},
		Properties:    map[string]string{"format-version": "2", "write.format.default": "parquet"},
	}
}

// assertQuiet runs r again, twice: with the same kind value (the agent's
// next run, connections kept) and with a new one (a new `fsgit apply
// --once` process, which connects afresh). It fails unless both plans are
// empty and neither the server nor the warehouse saw a write.
func (f *fixture) assertQuiet(t *testing.T, k reconciler.Kind, r *reconciler.Resource) {
	t.Helper()
	var fresh reconciler.Kind
	switch k.(type) {
	case *jdbc.Namespace:
		fresh = jdbc.NewNamespace()
	case *jdbc.Table:
		fresh = jdbc.NewTable()
	}
	defer fresh.(interface{ Close() error }).Close()
	for _, k := range []reconciler.Kind{k, fresh} {
		files := fileState(t, f.warehouse)
		before := srv.Status(t)
		p := f.converge(t, k, r)
		after := srv.Status(t)
		if p.HasChanges() {
			t.Fatalf("second run of %s planned changes: %v", r.ID, changeFields(p))
		}
		if w := mariadbtest.WriteCounters(before, after); len(w) > 0 {
			t.Fatalf("second run of %s wrote to MariaDB: %v", r.ID, w)
		}
		if got := fileState(t, f.warehouse); !maps.Equal(files, got) {
			t.Fatalf("second run of %s changed the warehouse:\nbefore %v\nafter  %v", r.ID, files, got)
		}
	}
}

func TestNamespace_ApplyTwice(t *testing.T) {
	f := newFixture(t)
	k := jdbc.NewNamespace()
	t.Cleanup(func() { _ = k.Close() })
	r := f.namespace("feature_logs", map[string]string{"owner": "ml-platform"})

	p := f.converge(t, k, r)
	if p.Action != reconciler.ActionCreate {
		t.Fatalf("first run: action %q, want create (changes %v)", p.Action, changeFields(p))
	}
	// The namespace is in the Java catalog's table, as Spark would find it.
	var v string
	if err := f.root.QueryRow("SELECT property_value FROM `"+f.cat.DB.Database+"`.iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? AND property_key = ?",
		"prod_catalog", "feature_logs", "owner").Scan(&v); err != nil || v != "ml-platform" {
		t.Fatalf("namespace property row: %q %v", v, err)
	}
	f.assertQuiet(t, k, r)

	// A changed property is a safe update, then quiet again.
	r2 := f.namespace("feature_logs", map[string]string{"owner": "feature-store"})
	p = f.converge(t, k, r2)
	if got := changeFields(p); !slices.Equal(got, []string{"properties.owner:safe"}) || p.Changes[0].Before != "ml-platform" {
		t.Fatalf("property change: %v %+v", got, p.Changes)
	}
	f.assertQuiet(t, k, r2)
}

func TestNamespace_Absent(t *testing.T) {
	f := newFixture(t)
	k := jdbc.NewNamespace()
	t.Cleanup(func() { _ = k.Close() })
	f.converge(t, k, f.namespace("scratch", nil))

	r := f.namespace("scratch", nil)
	spec := iceberg.NamespaceSpec{Catalog: f.cat, Namespace: []string{"scratch"}, Ensure: "absent"}
	r.Spec = mustJSON(spec)
	p, err := f.plan(t, k, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("absent namespace: action %q class %s", p.Action, p.MaxClass())
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.assertQuiet(t, k, r)
}

func TestTable_ApplyTwice(t *testing.T) {
	f := newFixture(t)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	r := f.table(historical())

	p := f.converge(t, tk, r)
	if p.Action != reconciler.ActionCreate || p.MaxClass() != reconciler.Safe {
		t.Fatalf("first run: action %q class %s", p.Action, p.MaxClass())
	}
	loc, typ, ok := f.catalogRow(t, "feature_logs", "historical_features")
	if !ok || typ != "TABLE" || !strings.HasPrefix(loc, "file://"+f.warehouse+"/feature_logs.db/historical_features/metadata/") {
		t.Fatalf("iceberg_tables row: ok=%v type=%q location=%q", ok, typ, loc)
	}
	if _, err := os.Stat(strings.TrimPrefix(loc, "file://")); err != nil {
		t.Fatalf("metadata file: %v", err)
	}

	f.assertQuiet(t, tk, r)
	if loc2, _, _ := f.catalogRow(t, "feature_logs", "historical_features"); loc2 != loc {
		t.Fatalf("metadata location moved on a quiet run: %s -> %s", loc, loc2)
	}

	// What the catalog holds is what was declared.
	p, err := f.plan(t, tk, r)
	if err != nil {
		t.Fatal(err)
	}
	want := "1:entity_id string required, 2:feature_name string required, 3:feature_value double optional, 4:event_timestamp timestamptz required, 5:batch int optional"
	if got := p.Observed["schema"]; got != want {
		t.Fatalf("observed schema\n got %s\nwant %s", got, want)
	}
	if got := p.Observed["partitionSpec"]; got != "day(4) event_day" {
		t.Fatalf("observed partition spec %q", got)
	}
	if p.Observed["formatVersion"] != "2" || p.Observed["properties.write.format.default"] != "parquet" {
		t.Fatalf("observed %v", p.Observed)
	}
}

func TestTable_Evolution(t *testing.T) {
	cases := []struct {
		name    string
		change  func(s *iceberg.TableSpec)
		changes []string
		check   func(t *testing.T, p *reconciler.Plan)
	}{
		{
			name: "new optional column",
			change: func(s *iceberg.TableSpec) {
				s.Schema.Fields = append(s.Schema.Fields, iceberg.FieldSpec{ID: 6, Name: "source", Type: "string", Doc: "where the value came from"})
			},
			changes: []string{"schema.fields.6:safe"},
			check: func(t *testing.T, p *reconciler.Plan) {
				if !strings.HasSuffix(p.Observed["schema"], "6:source string optional") {
					t.Fatalf("schema after: %s", p.Observed["schema"])
				}
			},
		},
		{
			name:    "int widened to long",
			change:  func(s *iceberg.TableSpec) { s.Schema.Fields[4].Type = "long" },
			changes: []string{"schema.fields.5.type:safe"},
			check: func(t *testing.T, p *reconciler.Plan) {
				if !strings.Contains(p.Observed["schema"], "5:batch long optional") {
					t.Fatalf("schema after: %s", p.Observed["schema"])
				}
			},
		},
		{
			name:    "rename and relax required",
			change:  func(s *iceberg.TableSpec) { s.Schema.Fields[1].Name = "feature"; s.Schema.Fields[1].Required = false },
			changes: []string{"schema.fields.2.name:safe", "schema.fields.2.required:safe"},
			check: func(t *testing.T, p *reconciler.Plan) {
				if !strings.Contains(p.Observed["schema"], "2:feature string optional") {
					t.Fatalf("schema after: %s", p.Observed["schema"])
				}
			},
		},
		{
			name: "partition by hour instead of day",
			change: func(s *iceberg.TableSpec) {
				s.PartitionSpec[0] = iceberg.PartitionFieldSpec{SourceID: 4, Transform: "hour", Name: "event_hour"}
			},
			changes: []string{"partitionSpec:safe"},
			check: func(t *testing.T, p *reconciler.Plan) {
				if p.Observed["partitionSpec"] != "hour(4) event_hour" {
					t.Fatalf("spec after: %s", p.Observed["partitionSpec"])
				}
			},
		},
		{
			name:    "property",
			change:  func(s *iceberg.TableSpec) { s.Properties["write.target-file-size-bytes"] = "134217728" },
			changes: []string{"properties.write.target-file-size-bytes:safe"},
		},
		{
			name:    "drop a column is destructive",
			change:  func(s *iceberg.TableSpec) { s.Schema.Fields = s.Schema.Fields[:4] },
			changes: []string{"schema.fields.5:destructive"},
			check: func(t *testing.T, p *reconciler.Plan) {
				if strings.Contains(p.Observed["schema"], "batch") {
					t.Fatalf("schema after: %s", p.Observed["schema"])
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
			t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
			f.converge(t, ns, f.namespace("feature_logs", nil))
			f.converge(t, tk, f.table(historical()))

			s := historical()
			tc.change(&s)
			r := f.table(s)
			p := f.converge(t, tk, r)
			if got := changeFields(p); !slices.Equal(got, tc.changes) {
				t.Fatalf("changes %v, want %v", got, tc.changes)
			}
			if p.Action != reconciler.ActionUpdate {
				t.Fatalf("action %q", p.Action)
			}
			f.assertQuiet(t, tk, r)
			if tc.check != nil {
				after, err := f.plan(t, tk, r)
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, after)
			}
		})
	}
}

func TestTable_Refused(t *testing.T) {
	cases := []struct {
		name   string
		change func(s *iceberg.TableSpec)
		reason string
	}{
		{"narrow long to int", nil, "changing type long to int is not a compatible change"},
		{"double to float", func(s *iceberg.TableSpec) { s.Schema.Fields[2].Type = "float" }, "changing type double to float"},
		{"string to long", func(s *iceberg.TableSpec) { s.Schema.Fields[0].Type = "long" }, "changing type string to long"},
		{"new required column", func(s *iceberg.TableSpec) {
			s.Schema.Fields = append(s.Schema.Fields, iceberg.FieldSpec{ID: 6, Name: "tenant", Type: "string", Required: true})
		}, "a new required column cannot be added"},
		{"optional made required", func(s *iceberg.TableSpec) { s.Schema.Fields[2].Required = true }, "making an optional column required"},
		{"new column with a taken id", func(s *iceberg.TableSpec) {
			s.Schema.Fields = append(s.Schema.Fields, iceberg.FieldSpec{ID: 9, Name: "source", Type: "string"})
		}, `declare "source" with id 6`},
		{"format downgrade", func(s *iceberg.TableSpec) { s.Properties["format-version"] = "1" }, "cannot downgrade"},
	}
	f := newFixture(t)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	base := historical()
	base.Schema.Fields[4].Type = "long"
	f.converge(t, tk, f.table(base))
	loc, _, _ := f.catalogRow(t, "feature_logs", "historical_features")

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := historical()
			s.Schema.Fields[4].Type = "long"
			if tc.change == nil {
				s.Schema.Fields[4].Type = "int"
			} else {
				tc.change(&s)
			}
			before := srv.Status(t)
			_, err := f.plan(t, tk, f.table(s))
			var re *iceberg.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("plan error %v, want a *RefusedError", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q does not say %q", err, tc.reason)
			}
			if w := mariadbtest.WriteCounters(before, srv.Status(t)); len(w) > 0 {
				t.Fatalf("a refused plan wrote: %v", w)
			}
		})
	}
	if loc2, _, _ := f.catalogRow(t, "feature_logs", "historical_features"); loc2 != loc {
		t.Fatalf("refusals moved the table's metadata: %s -> %s", loc, loc2)
	}
}

func TestTable_CreateWithUnassignableIDs(t *testing.T) {
	f := newFixture(t)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	s := historical()
	s.Schema.Fields[1].ID = 7
	_, err := f.plan(t, tk, f.table(s))
	var re *iceberg.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "expected 2") {
		t.Fatalf("plan error %v", err)
	}
}

func TestTable_Drop(t *testing.T) {
	f := newFixture(t)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	r := f.table(historical())
	f.converge(t, tk, r)

	// Pruned from the catalog: a destructive delete.
	p, err := tk.PlanDelete(context.Background(), f.env(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("prune plan: action %q class %s", p.Action, p.MaxClass())
	}
	// Planning it dropped nothing.
	if _, _, ok := f.catalogRow(t, "feature_logs", "historical_features"); !ok {
		t.Fatal("planning a delete dropped the table")
	}

	s := historical()
	s.Ensure = "absent"
	absent := f.table(s)
	p = f.converge(t, tk, absent)
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("absent plan: action %q class %s", p.Action, p.MaxClass())
	}
	if _, _, ok := f.catalogRow(t, "feature_logs", "historical_features"); ok {
		t.Fatal("table still in iceberg_tables")
	}
	f.assertQuiet(t, tk, absent)
}

func TestTable_NoNamespace(t *testing.T) {
	f := newFixture(t)
	tk := jdbc.NewTable()
	t.Cleanup(func() { _ = tk.Close() })
	p, err := f.plan(t, tk, f.table(historical()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != reconciler.ActionCreate {
		t.Fatalf("action %q", p.Action)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("create without its namespace: %v", err)
	}
}

func TestTable_WrongPassword(t *testing.T) {
	f := newFixture(t)
	tk := jdbc.NewTable()
	t.Cleanup(func() { _ = tk.Close() })
	f.secrets["iceberg/catalog"] = "wrong-password"
	_, err := f.plan(t, tk, f.table(historical()))
	if err == nil || !strings.Contains(err.Error(), "connect to iceberg catalog database") {
		t.Fatalf("plan with a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error reveals the password: %v", err)
	}
}

// TestTable_AppendReadBack writes a real data file and snapshot into a
// table the kind created, through the same JDBC catalog, and scans it back;
// a later plan still sees no drift.
func TestTable_AppendReadBack(t *testing.T) {
	f := newFixture(t)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	r := f.table(historical())
	f.converge(t, tk, r)

	ctx := context.Background()
	c, err := jdbc.Open(ctx, f.cat, reconciler.NewSecret("iceberg/catalog", []byte("catalog-pw")), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tbl, err := c.SQL().LoadTable(ctx, table.Identifier{"feature_logs", "historical_features"})
	if err != nil {
		t.Fatal(err)
	}
	rows := appendRows(t, tbl)
	if rows != 1 {
		t.Fatalf("read back %d rows", rows)
	}
	p, err := f.plan(t, tk, r)
	if err != nil || p.HasChanges() {
		t.Fatalf("plan after an append: %v %v", changeFields(p), err)
	}
}

// BenchmarkTable_PlanQuiet measures a quiet run's plan of a converged
// table: one catalog row read and one metadata file read, the connection
// kept by the kind.
func BenchmarkTable_PlanQuiet(b *testing.B) {
	f := newFixture(b)
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	defer ns.Close()
	defer tk.Close()
	f.converge(b, ns, f.namespace("feature_logs", nil))
	r := f.table(historical())
	f.converge(b, tk, r)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		p, err := tk.Plan(ctx, f.env(), r)
		if err != nil || p.HasChanges() {
			b.Fatal(err, p)
		}
	}
}

// TestTable_S3Warehouse: with an s3:// warehouse the table's metadata goes
// through iceberg-go's S3 FileIO. No S3 is reachable here, so the endpoint
// is a closed port on loopback: the create fails in the S3 client (not for
// want of an S3 FileIO), and nothing reaches the catalog.
func TestTable_S3Warehouse(t *testing.T) {
	f := newFixture(t)
	f.cat.Warehouse = "s3://fsgit-test-bucket/warehouse"
	f.cat.Properties = map[string]string{
		"s3.endpoint": "http://127.0.0.1:1", "s3.region": "us-east-1",
		"s3.access-key-id": "test", "s3.secret-access-key": "test", "s3.connect-timeout": "1s",
	}
	ns, tk := jdbc.NewNamespace(), jdbc.NewTable()
	t.Cleanup(func() { _ = ns.Close(); _ = tk.Close() })
	f.converge(t, ns, f.namespace("feature_logs", nil))
	p, err := f.plan(t, tk, f.table(historical()))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil {
		t.Fatal("create on an unreachable S3 succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error does not come from the S3 client: %v", err)
	}
	if _, _, ok := f.catalogRow(t, "feature_logs", "historical_features"); ok {
		t.Fatal("a table whose metadata could not be written is in the catalog")
	}
}
