package jdbc_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// srv is the package's MariaDB, holding one catalog database per test.
var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	var stop func()
	srv, stop = mariadbtest.StartMain()
	code := m.Run()
	stop()
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

// fixture is one catalog: its database and user on srv, a warehouse under
// a temp dir, and the spec that points at them.
type fixture struct {
	cat       iceberg.CatalogSpec
	secrets   secrets
	warehouse string
	root      *sql.DB
}

// newFixture creates a catalog database and its user (with the grants the
// spark_thrift_server profile gives it) and a warehouse directory.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	n := dbSeq.Add(1)
	dbName := fmt.Sprintf("iceberg_catalog_%d", n)
	user := fmt.Sprintf("iceberg_%d", n)
	root := srv.RootDB(t)
	for _, q := range []string{
		"CREATE DATABASE `" + dbName + "`",
		"CREATE USER '" + user + "'@'localhost' IDENTIFIED BY 'catalog-pw'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `" + strings.ReplaceAll(dbName, "_", `\_`) + "`.* TO '" + user + "'@'localhost'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	wh := filepath.Join(t.TempDir(), "warehouse")
	return &fixture{
		cat: iceberg.CatalogSpec{
			Name:      "prod_catalog",
			Warehouse: "file://" + wh,
			DB: iceberg.DBSpec{
				Socket:   srv.Socket(),
				Port:     3306,
				Database: dbName,
				User:     user,
				Password: reconciler.SecretRef{Secret: "iceberg/catalog"},
			},
		},
		secrets:   secrets{"iceberg/catalog": "catalog-pw"},
		warehouse: wh,
		root:      root,
	}
}

// env returns a fresh per-run environment.
func (f *fixture) env() *reconciler.Env {
	return &reconciler.Env{Secrets: f.secrets, Log: slog.New(slog.DiscardHandler), Cache: reconciler.NewCache()}
}

func (f *fixture) namespace(ns string, props map[string]string) *reconciler.Resource {
	return &reconciler.Resource{ID: reconciler.ID("iceberg.namespace:" + ns), Spec: mustJSON(iceberg.NamespaceSpec{
		Catalog: f.cat, Namespace: []string{ns}, Properties: props, Ensure: "present",
	})}
}

func (f *fixture) table(spec iceberg.TableSpec) *reconciler.Resource {
	spec.Catalog = f.cat
	if spec.Ensure == "" {
		spec.Ensure = "present"
	}
	return &reconciler.Resource{ID: reconciler.ID("iceberg.table:" + spec.FullName()), Spec: mustJSON(spec)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// converge plans r in a fresh run and applies the plan when it has
// changes, as the engine would. It returns the plan.
func (f *fixture) converge(t testing.TB, k reconciler.Kind, r *reconciler.Resource) *reconciler.Plan {
	t.Helper()
	if err := k.Validate(r); err != nil {
		t.Fatalf("validate %s: %v", r.ID, err)
	}
	ctx := context.Background()
	env := f.env()
	p, err := k.Plan(ctx, env, r)
	if err != nil {
		t.Fatalf("plan %s: %v", r.ID, err)
	}
	if p.HasChanges() {
		if p.Apply == nil {
			t.Fatalf("plan %s has changes and no Apply", r.ID)
		}
		if err := p.Apply(ctx); err != nil {
			t.Fatalf("apply %s: %v", r.ID, err)
		}
	}
	return p
}

// plan plans r in a fresh run.
func (f *fixture) plan(t *testing.T, k reconciler.Kind, r *reconciler.Resource) (*reconciler.Plan, error) {
	t.Helper()
	if err := k.Validate(r); err != nil {
		t.Fatalf("validate %s: %v", r.ID, err)
	}
	return k.Plan(context.Background(), f.env(), r)
}

// fileState records every file under dir with its size, mtime and inode
// number, to prove that a run wrote nothing.
func fileState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %s %v", fi.Size(), fi.ModTime().Format(time.RFC3339Nano), inode(fi))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// catalogRow reads a table's row of iceberg_tables, as Spark's JdbcCatalog
// would.
func (f *fixture) catalogRow(t *testing.T, ns, name string) (metadataLocation, icebergType string, ok bool) {
	t.Helper()
	var ml, it sql.NullString
	err := f.root.QueryRow("SELECT metadata_location, iceberg_type FROM `"+f.cat.DB.Database+"`.iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
		f.cat.Name, ns, name).Scan(&ml, &it)
	if err == sql.ErrNoRows {
		return "", "", false
	}
	if err != nil {
		t.Fatalf("read iceberg_tables: %v", err)
	}
	return ml.String, it.String, true
}

func changeFields(p *reconciler.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, fmt.Sprintf("%s:%s", c.Field, c.Class))
	}
	return out
}

// appendRows appends one row to the historical table through iceberg-go
// (a parquet data file, a manifest, a snapshot, a catalog commit) and
// returns how many rows a scan of the new snapshot reads back.
func appendRows(t *testing.T, tbl *table.Table) int64 {
	t.Helper()
	ctx := context.Background()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("user_123")
	b.Field(1).(*array.StringBuilder).Append("user_7day_purchase_amount")
	b.Field(2).(*array.Float64Builder).Append(150.75)
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Now().UnixMicro()))
	b.Field(4).AppendNull()
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	out, err := tbl.Append(ctx, rdr, nil)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if out.CurrentSnapshot() == nil {
		t.Fatal("no snapshot after append")
	}
	got, err := out.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer got.Release()
	return got.NumRows()
}
