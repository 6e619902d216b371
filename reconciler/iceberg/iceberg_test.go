package iceberg_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/icebergtest"
)

// srv is the package's MariaDB, holding one catalog database per test.
var srv *mariadbtest.Server

// helper is the fsgit-iceberg built for this package ($FSGIT_ICEBERG).
var helper string

func TestMain(m *testing.M) {
	bin, clean, err := icebergtest.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helper = bin
	os.Setenv(iceberg.EnvExecutable, bin)
	var stop func()
	srv, stop = mariadbtest.StartMain()
	code := m.Run()
	stop()
	clean()
	os.Exit(code)
}

// secrets is a resolver over a map, standing in for the node's secret
// files.
type secrets map[string]string

func (s secrets) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	v, ok := s[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("secret %s: %w", ref.Secret, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}

var dbSeq atomic.Int64

// catalogPassword is the fixture catalog's password: long and unusual, so
// that finding it anywhere is no accident.
const catalogPassword = "pw-9f3c1e7a-catalog-secret"

// fixture is one catalog: its database and user on srv and a warehouse
// under a temp dir.
type fixture struct {
	cat       iceberg.CatalogSpec
	warehouse string
	root      *sql.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	n := dbSeq.Add(1)
	dbName, user := fmt.Sprintf("iceberg_proxy_%d", n), fmt.Sprintf("iceberg_p%d", n)
	root := srv.RootDB(t)
	for _, q := range []string{
		"CREATE DATABASE `" + dbName + "`",
		"CREATE USER '" + user + "'@'localhost' IDENTIFIED BY '" + catalogPassword + "'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `" + strings.ReplaceAll(dbName, "_", `\_`) + "`.* TO '" + user + "'@'localhost'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	wh := filepath.Join(t.TempDir(), "warehouse")
	return &fixture{
		cat: iceberg.CatalogSpec{Name: "prod_catalog", Warehouse: "file://" + wh,
			DB: iceberg.DBSpec{Socket: srv.Socket(), Port: 3306, Database: dbName, User: user,
				Password: reconciler.SecretRef{Secret: "iceberg/catalog"}}},
		warehouse: wh,
		root:      root,
	}
}

func (f *fixture) env() *reconciler.Env {
	return &reconciler.Env{Secrets: secrets{"iceberg/catalog": catalogPassword}, Log: slog.New(slog.DiscardHandler), Cache: reconciler.NewCache()}
}

func (f *fixture) namespace(ns string) *reconciler.Resource {
	return &reconciler.Resource{ID: reconciler.ID("iceberg.namespace:" + ns), Spec: mustJSON(iceberg.NamespaceSpec{
		Catalog: f.cat, Namespace: []string{ns}, Properties: map[string]string{"owner": "fsgit"}, Ensure: "present"})}
}

func (f *fixture) table(spec iceberg.TableSpec) *reconciler.Resource {
	spec.Catalog, spec.Ensure = f.cat, "present"
	return &reconciler.Resource{ID: reconciler.ID("iceberg.table:" + spec.FullName()), Spec: mustJSON(spec)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

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

// converge plans r in a fresh run through the proxy and applies the plan
// when it has changes, as the engine would.
func (f *fixture) converge(t *testing.T, k reconciler.Kind, r *reconciler.Resource) *reconciler.Plan {
	t.Helper()
	if err := k.Validate(r); err != nil {
		t.Fatalf("validate %s: %v", r.ID, err)
	}
	p, err := k.Plan(context.Background(), f.env(), r)
	if err != nil {
		t.Fatalf("plan %s: %v", r.ID, err)
	}
	if p.HasChanges() {
		if p.Apply == nil {
			t.Fatalf("plan %s has changes and no Apply", r.ID)
		}
		if err := p.Apply(context.Background()); err != nil {
			t.Fatalf("apply %s: %v", r.ID, err)
		}
	}
	return p
}

// fileState records every file under dir with its size, mtime and inode.
func fileState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		out[p] = fmt.Sprintf("%d %d %d", fi.Size(), fi.ModTime().UnixNano(), ino)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// catalogState reads the catalog's rows, to prove a run wrote nothing.
func (f *fixture) catalogState(t *testing.T) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT CONCAT_WS('|', table_namespace, table_name, metadata_location) FROM `" + f.cat.DB.Database + "`.iceberg_tables ORDER BY 1",
		"SELECT CONCAT_WS('|', namespace, property_key, property_value) FROM `" + f.cat.DB.Database + "`.iceberg_namespace_properties ORDER BY 1",
	} {
		rows, err := f.root.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		rows.Close()
	}
	return strings.Join(out, "\n")
}

// TestProxy_ApplyTwice converges a namespace and a table through the
// helper, then runs both again: the second plans are empty, and neither the
// catalog rows nor the warehouse files changed.
func TestProxy_ApplyTwice(t *testing.T) {
	f := newFixture(t)
	ns, tk := iceberg.NewNamespace(), iceberg.NewTable()
	nsr, tr := f.namespace("feature_logs"), f.table(historical())
	if p := f.converge(t, ns, nsr); p.Action != reconciler.ActionCreate {
		t.Fatalf("namespace first run: action %q", p.Action)
	}
	p := f.converge(t, tk, tr)
	if p.Action != reconciler.ActionCreate || p.MaxClass() != reconciler.Safe || len(p.Changes) == 0 {
		t.Fatalf("table first run: action %q class %s changes %v", p.Action, p.MaxClass(), p.Changes)
	}
	cat, files := f.catalogState(t), fileState(t, f.warehouse)
	if !strings.Contains(cat, "feature_logs|historical_features|file://") || !strings.Contains(cat, "feature_logs|owner|fsgit") {
		t.Fatalf("catalog after the first run:\n%s", cat)
	}
	for _, c := range []struct {
		k reconciler.Kind
		r *reconciler.Resource
	}{{ns, nsr}, {tk, tr}} {
		p := f.converge(t, c.k, c.r)
		if p.HasChanges() || p.Apply != nil {
			t.Fatalf("%s second run: %q %v", c.r.ID, p.Action, p.Changes)
		}
		if p.Observed["exists"] != "true" {
			t.Fatalf("%s observed %v", c.r.ID, p.Observed)
		}
	}
	if got := f.catalogState(t); got != cat {
		t.Fatalf("a quiet run changed the catalog:\n%s\n->\n%s", cat, got)
	}
	if got := fileState(t, f.warehouse); fmt.Sprint(got) != fmt.Sprint(files) {
		t.Fatalf("a quiet run wrote to the warehouse")
	}
	p, err := tk.Plan(context.Background(), f.env(), tr)
	if err != nil {
		t.Fatal(err)
	}
	want := "1:entity_id string required, 2:feature_name string required, 3:feature_value double optional, 4:event_timestamp timestamptz required, 5:batch int optional"
	if p.Observed["schema"] != want || p.Observed["partitionSpec"] != "day(4) event_day" {
		t.Fatalf("observed %v", p.Observed)
	}
}

// TestProxy_RefusedAndDelete: a refusal crosses the pipe as a
// *RefusedError; a dropped column and a removed table are destructive and
// PlanDelete's Apply drops the table.
func TestProxy_RefusedAndDelete(t *testing.T) {
	f := newFixture(t)
	ns, tk := iceberg.NewNamespace(), iceberg.NewTable()
	f.converge(t, ns, f.namespace("feature_logs"))
	tr := f.table(historical())
	f.converge(t, tk, tr)

	narrow := historical()
	narrow.Schema.Fields[2].Type = "float"
	_, err := tk.Plan(context.Background(), f.env(), f.table(narrow))
	var re *iceberg.RefusedError
	if !errors.As(err, &re) || re.Field != `schema field 3 "feature_value"` || !strings.Contains(re.Reason, "double to float") {
		t.Fatalf("narrowing: %v", err)
	}

	p, err := tk.PlanDelete(context.Background(), f.env(), tr)
	if err != nil || p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive || p.Apply == nil {
		t.Fatalf("plan delete: %v %+v", err, p)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.catalogState(t), "historical_features") {
		t.Fatal("the table is still in the catalog")
	}
	p, err = tk.PlanDelete(context.Background(), f.env(), tr)
	if err != nil || p.HasChanges() {
		t.Fatalf("second delete: %v %+v", err, p)
	}
}

// TestProxy_MissingHelper: without fsgit-iceberg, planning fails with a
// message that says what to do; validation and preview still work.
func TestProxy_MissingHelper(t *testing.T) {
	t.Setenv(iceberg.EnvExecutable, "")
	t.Setenv("PATH", t.TempDir())
	f := newFixture(t)
	tk := iceberg.NewTable()
	r := f.table(historical())
	if err := tk.Validate(r); err != nil {
		t.Fatal(err)
	}
	if c, e := tk.Preview(nil, r); c != reconciler.Safe || e != "create table" {
		t.Fatalf("preview %s %q", c, e)
	}
	_, err := tk.Plan(context.Background(), f.env(), r)
	if !errors.Is(err, iceberg.ErrNotFound) {
		t.Fatalf("plan without the helper: %v", err)
	}
	for _, w := range []string{"fsgit-iceberg not found next to fsgit or on PATH", "FSGIT_ICEBERG", "make build"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}

// TestProxy_SecretsOnlyOnThePipe runs the helper through a wrapper that
// records the helper process's own /proc cmdline and environ before it
// execs the helper (same pid, same argv and environment): the catalog
// password is in neither, and the plan works.
func TestProxy_SecretsOnlyOnThePipe(t *testing.T) {
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "fsgit-iceberg")
	script := "#!/bin/sh\ncat /proc/$$/cmdline > " + dir + "/cmdline.$$\ncat /proc/$$/environ > " + dir + "/environ.$$\nexec " + helper + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(iceberg.EnvExecutable, wrapper)
	f := newFixture(t)
	f.converge(t, iceberg.NewNamespace(), f.namespace("feature_logs"))
	recs, _ := filepath.Glob(filepath.Join(dir, "*.*"))
	if len(recs) < 4 { // plan and apply: a cmdline and an environ each
		t.Fatalf("the wrapper recorded %v", recs)
	}
	for _, p := range recs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", p)
		}
		if strings.Contains(string(b), catalogPassword) {
			t.Fatalf("the catalog password is in the helper's %s", filepath.Base(p))
		}
	}
}

// TestProxy_Cancel: a cancelled context stops the helper and the plan
// fails with the context's error.
func TestProxy_Cancel(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := iceberg.NewTable().Plan(ctx, f.env(), f.table(historical()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("plan with a cancelled context: %v", err)
	}
}

func TestTable_Validate(t *testing.T) {
	cases := []struct {
		name   string
		change func(s *iceberg.TableSpec)
		id     string
		want   string
	}{
		{"duplicate id", func(s *iceberg.TableSpec) { s.Schema.Fields[1].ID = 1 }, "", "declared twice"},
		{"unknown type", func(s *iceberg.TableSpec) { s.Schema.Fields[1].Type = "varchar" }, "", "varchar"},
		{"partition source missing", func(s *iceberg.TableSpec) { s.PartitionSpec[0].SourceID = 42 }, "", "source id 42"},
		{"transform on wrong type", func(s *iceberg.TableSpec) { s.PartitionSpec[0].SourceID = 1 }, "", "does not apply"},
		{"id disagrees", nil, "iceberg.table:feature_logs.other", "must name the table"},
		{"warehouse", func(s *iceberg.TableSpec) { s.Catalog.Warehouse = "/var/lib/iceberg" }, "", "neither file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := historical()
			s.Catalog = iceberg.CatalogSpec{Name: "prod_catalog", Warehouse: "file:///var/lib/iceberg/warehouse",
				DB: iceberg.DBSpec{Socket: "/run/mysqld/mysqld.sock", Port: 3306, Database: "iceberg_catalog_db", User: "iceberg", Password: reconciler.SecretRef{Secret: "x"}}}
			if tc.change != nil {
				tc.change(&s)
			}
			id := tc.id
			if id == "" {
				id = "iceberg.table:" + s.FullName()
			}
			err := iceberg.NewTable().Validate(&reconciler.Resource{ID: reconciler.ID(id), Spec: mustJSON(s)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCatalogSpec_WarehouseUnder(t *testing.T) {
	cases := []struct{ warehouse, root, want string }{
		{"file:///var/lib/iceberg/warehouse", "", "file:///var/lib/iceberg/warehouse"},
		{"file:///var/lib/iceberg/warehouse", "/tmp/r", "file:///tmp/r/var/lib/iceberg/warehouse"},
		{"s3://bucket/warehouse", "/tmp/r", "s3://bucket/warehouse"},
	}
	for _, tc := range cases {
		c := iceberg.CatalogSpec{Warehouse: tc.warehouse}
		got, err := c.WarehouseUnder(tc.root)
		if err != nil || got != tc.want {
			t.Errorf("%s under %q: %q %v, want %q", tc.warehouse, tc.root, got, err, tc.want)
		}
	}
}

func TestTable_Preview(t *testing.T) {
	cat := iceberg.CatalogSpec{Name: "prod_catalog", Warehouse: "file:///var/lib/iceberg/warehouse",
		DB: iceberg.DBSpec{Socket: "/run/mysqld/mysqld.sock", Port: 3306, Database: "iceberg_catalog_db", User: "iceberg", Password: reconciler.SecretRef{Secret: "x"}}}
	res := func(change func(s *iceberg.TableSpec)) *reconciler.Resource {
		s := historical()
		s.Catalog, s.Ensure = cat, "present"
		if change != nil {
			change(&s)
		}
		return &reconciler.Resource{ID: reconciler.ID("iceberg.table:" + s.FullName()), Spec: mustJSON(s)}
	}
	cases := []struct {
		name     string
		old, new *reconciler.Resource
		class    reconciler.Class
		effect   string
	}{
		{"create", nil, res(nil), reconciler.Safe, "create table"},
		{"removed", res(nil), nil, reconciler.Destructive, "drop table"},
		{"absent", res(nil), res(func(s *iceberg.TableSpec) { s.Ensure = "absent" }), reconciler.Destructive, "drop table"},
		{"same", res(nil), res(nil), reconciler.Safe, ""},
		{"add column", res(nil), res(func(s *iceberg.TableSpec) {
			s.Schema.Fields = append(s.Schema.Fields, iceberg.FieldSpec{ID: 6, Name: "source", Type: "string"})
		}), reconciler.Safe, "evolve schema"},
		{"drop column", res(nil), res(func(s *iceberg.TableSpec) { s.Schema.Fields = s.Schema.Fields[:4] }), reconciler.Destructive, "drop column batch int optional"},
		{"narrow", res(nil), res(func(s *iceberg.TableSpec) { s.Schema.Fields[2].Type = "float" }), reconciler.Safe, "will be refused: changing type double to float"},
		{"repartition", res(nil), res(func(s *iceberg.TableSpec) { s.PartitionSpec[0].Transform = "hour" }), reconciler.Safe, "evolve partition spec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			class, effect := iceberg.NewTable().Preview(tc.old, tc.new)
			if class != tc.class || !strings.HasPrefix(effect, tc.effect) || (tc.effect == "" && effect != "") {
				t.Fatalf("preview: %s %q, want %s %q", class, effect, tc.class, tc.effect)
			}
		})
	}
}

// TestWarehouseUnder_SymlinkEscape: a file:// warehouse mapped under
// --root may not lead out of the root through a symlink, neither by a
// parent nor by the warehouse directory itself.
func TestWarehouseUnder_SymlinkEscape(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "srv/warehouse")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "data")); err != nil {
		t.Fatal(err)
	}
	for _, wh := range []string{"file:///srv/warehouse", "file:///data/warehouse"} {
		c := &iceberg.CatalogSpec{Warehouse: wh}
		if got, err := c.WarehouseUnder(root); err == nil {
			t.Errorf("%s mapped to %s, want a refusal", wh, got)
		}
	}
	c := &iceberg.CatalogSpec{Warehouse: "file:///srv/ok"}
	got, err := c.WarehouseUnder(root)
	if err != nil || got != "file://"+filepath.Join(root, "srv/ok") {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestLocations checks the warehouse and the location properties of
// namespaces and tables against the same rule as the schema's #Warehouse,
// and that under --root a file:// location property, which iceberg-go uses
// as written, is refused rather than written outside the root.
func TestLocations(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"file:///var/lib/warehouse", true},
		{"file:///var/lib/warehouse/", true},
		{"s3a://my-iceberg-warehouse/", true},
		{"s3://bucket", true},
		{"file:///../../..", false},
		{"file:///srv/../etc", false},
		{"file:///srv/./x", false},
		{"file:///srv//x", false},
		{"file:///srv/%2e%2e/x", false},
		{"file:///", false},
		{"file://host/x", false},
		{"file:relative", false},
		{"http://x/y", false},
		{"s3://Bucket/x", false},
	} {
		err := iceberg.ValidateLocation("warehouse", tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateLocation(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
		c := iceberg.CatalogSpec{Name: "c", Warehouse: tc.v, DB: iceberg.DBSpec{Socket: "/s", Database: "d", User: "u", Password: reconciler.SecretRef{Secret: "x"}}}
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("catalog with warehouse %q: Validate = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
	if err := iceberg.CheckLocations("", map[string]string{"location": "file:///srv/../../etc"}); err == nil {
		t.Error("an escaping namespace location passed")
	}
	if err := iceberg.CheckLocations("", map[string]string{"location": "file:///srv/ns", "owner": "../.."}); err != nil {
		t.Errorf("a clean location without a root: %v", err)
	}
	if err := iceberg.CheckLocations("/tmp/r", map[string]string{"write.metadata.path": "file:///srv/t/metadata"}); err == nil || !strings.Contains(err.Error(), "outside the root") {
		t.Errorf("a file:// location under --root: %v, want a refusal", err)
	}
	if err := iceberg.CheckLocations("/tmp/r", map[string]string{"write.data.path": "s3://bucket/t/data"}); err != nil {
		t.Errorf("an s3 location under --root: %v", err)
	}
}

// TestProxy_CatalogTableDroppedByHand: one of the catalog's two tables is
// dropped by hand (iceberg_tables, or iceberg_namespace_properties). The
// next run, through the engine and the helper, converges the namespace and
// the table in that run (the namespace still exists in the table that is
// left: "namespace already exists" before), and the run after is quiet.
func TestProxy_CatalogTableDroppedByHand(t *testing.T) {
	for _, dropped := range []string{"iceberg_tables", "iceberg_namespace_properties"} {
		t.Run(dropped, func(t *testing.T) {
			f := newFixture(t)
			ns, tk := iceberg.NewNamespace(), iceberg.NewTable()
			e := reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(ns, tk)})
			nsr, tr := f.namespace("feature_logs"), f.table(historical())
			tr.Require = []reconciler.ID{nsr.ID}
			cat := &reconciler.Catalog{Node: "offline-1", Resources: []reconciler.Resource{*nsr, *tr}}
			cat.Sort()
			var prior *reconciler.Memory
			run := func() *reconciler.Report {
				t.Helper()
				rep, err := e.Apply(context.Background(), cat, reconciler.RunOptions{Secrets: secrets{"iceberg/catalog": catalogPassword}, Prior: prior})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Next != nil {
					prior = rep.Next
				}
				return rep
			}
			outcomes := func(rep *reconciler.Report) map[reconciler.ID]reconciler.Outcome {
				m := map[reconciler.ID]reconciler.Outcome{}
				for _, r := range rep.Results {
					m[r.ID] = r.Outcome
					if r.Error != "" || r.Warning != "" {
						t.Errorf("%s: %s: error %q warning %q", r.ID, r.Outcome, r.Error, r.Warning)
					}
				}
				return m
			}
			if got := outcomes(run()); got[nsr.ID] != reconciler.Created || got[tr.ID] != reconciler.Created {
				t.Fatalf("first run: %v", got)
			}

			if _, err := f.root.Exec("DROP TABLE `" + f.cat.DB.Database + "`.`" + dropped + "`"); err != nil {
				t.Fatal(err)
			}
			got := outcomes(run())
			for _, id := range []reconciler.ID{nsr.ID, tr.ID} {
				if got[id] == reconciler.Failed {
					t.Fatalf("run after the drop: %v", got)
				}
			}
			if state := f.catalogState(t); !strings.Contains(state, "feature_logs|historical_features|file://") || !strings.Contains(state, "feature_logs|owner|fsgit") {
				t.Fatalf("catalog after the repairing run:\n%s", state)
			}
			before := srv.Status(t)
			got = outcomes(run())
			if got[nsr.ID] != reconciler.Unchanged || got[tr.ID] != reconciler.Unchanged {
				t.Fatalf("run after the repair: %v", got)
			}
			if w := mariadbtest.WriteCounters(before, srv.Status(t)); len(w) > 0 {
				t.Fatalf("the quiet run wrote: %v", w)
			}
		})
	}
}
