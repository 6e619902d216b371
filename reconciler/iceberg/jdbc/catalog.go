package jdbc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	icebergo "github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	// The S3 FileIO: a production warehouse is an s3:// location.
	_ "github.com/apache/iceberg-go/io/gocloud/s3"
	"github.com/go-sql-driver/mysql"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// mysqlConfig returns the driver configuration. The password is only ever
// handed to the driver.
func mysqlConfig(c *iceberg.CatalogSpec, password []byte) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = c.DB.User, string(password), c.DB.Database
	if c.DB.Host != "" {
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(c.DB.Host, strconv.Itoa(c.DB.Port))
	} else {
		cfg.Net, cfg.Addr = "unix", c.DB.Socket
	}
	cfg.AllowNativePasswords = true
	cfg.Timeout = 10 * time.Second
	return cfg
}

// Catalog is an open connection to a JDBC catalog: a MariaDB pool and
// iceberg-go's SQL catalog (mysql dialect) on it.
type Catalog struct {
	spec iceberg.CatalogSpec
	key  string
	db   *sql.DB
	sql  *sqlcat.Catalog
}

// Open connects to the catalog's database with the given password and opens
// iceberg-go's SQL catalog on it, without creating anything (the catalog
// tables are created by [Catalog.EnsureTables]). root maps a file://
// warehouse as [iceberg.CatalogSpec.WarehouseUnder] does. The caller closes it.
func Open(ctx context.Context, spec iceberg.CatalogSpec, password reconciler.Secret, root string) (*Catalog, error) {
	wh, err := spec.WarehouseUnder(root)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(mysqlConfig(&spec, password.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("configure catalog connection to %s: %w", spec.Where(), err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to iceberg catalog database %s: %w", spec.Where(), err)
	}
	props := icebergo.Properties{}
	maps.Copy(props, spec.Properties)
	props["warehouse"] = wh
	// Never CREATE TABLE IF NOT EXISTS on open: observing must not write.
	props["init_catalog_tables"] = "false"
	cat, err := sqlcat.NewCatalog(spec.Name, db, sqlcat.MySQL, props)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open iceberg sql catalog %s in %s: %w", spec.Name, spec.Where(), err)
	}
	return &Catalog{spec: spec, db: db, sql: cat}, nil
}

// SQL returns iceberg-go's catalog.
func (c *Catalog) SQL() *sqlcat.Catalog { return c.sql }

// DB returns the connection pool.
func (c *Catalog) DB() *sql.DB { return c.db }

// Close closes the catalog and its pool.
func (c *Catalog) Close() error {
	return errors.Join(c.sql.Close(), c.db.Close())
}

// The Java JdbcCatalog's DDL (JdbcUtil, schema V1). iceberg-go's own
// CreateSQLTables would make metadata_location a VARCHAR(255); these are the
// tables Spark creates and expects.
const (
	createTablesTable = "CREATE TABLE IF NOT EXISTS `iceberg_tables` (" +
		"`catalog_name` VARCHAR(255) NOT NULL, " +
		"`table_namespace` VARCHAR(255) NOT NULL, " +
		"`table_name` VARCHAR(255) NOT NULL, " +
		"`metadata_location` VARCHAR(1000), " +
		"`previous_metadata_location` VARCHAR(1000), " +
		"`iceberg_type` VARCHAR(5), " +
		"PRIMARY KEY (`catalog_name`, `table_namespace`, `table_name`))"
	createNamespacePropsTable = "CREATE TABLE IF NOT EXISTS `iceberg_namespace_properties` (" +
		"`catalog_name` VARCHAR(255) NOT NULL, " +
		"`namespace` VARCHAR(255) NOT NULL, " +
		"`property_key` VARCHAR(255) NOT NULL, " +
		"`property_value` VARCHAR(1000), " +
		"PRIMARY KEY (`catalog_name`, `namespace`, `property_key`))"
)

// The catalog's two tables.
const (
	tablesTable         = "iceberg_tables"
	namespacePropsTable = "iceberg_namespace_properties"
)

// TablesPresent reports whether both catalog tables exist in the database.
func (c *Catalog) TablesPresent(ctx context.Context) (bool, error) {
	missing, err := c.MissingTables(ctx)
	return len(missing) == 0, err
}

// MissingTables returns the catalog tables that do not exist in the
// database, in a fixed order: none, one (dropped by hand), or both (a new
// catalog).
func (c *Catalog) MissingTables(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx,
		"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?, ?)",
		tablesTable, namespacePropsTable)
	if err != nil {
		return nil, fmt.Errorf("look for the catalog tables in %s: %w", c.spec.Where(), err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("look for the catalog tables in %s: %w", c.spec.Where(), err)
		}
		have[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look for the catalog tables in %s: %w", c.spec.Where(), err)
	}
	var missing []string
	for _, t := range []string{tablesTable, namespacePropsTable} {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// EnsureTables creates the catalog tables where they are missing, with the
// Java catalog's DDL.
func (c *Catalog) EnsureTables(ctx context.Context) error {
	for _, ddl := range []string{createTablesTable, createNamespacePropsTable} {
		if _, err := c.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create the iceberg catalog tables in %s: %w", c.spec.Where(), err)
		}
	}
	return nil
}

// pools keeps one open catalog per distinct connection, across runs, so
// that a quiet run costs no new login. A kind holds one.
type pools struct {
	mu sync.Mutex
	m  map[string]*Catalog
}

// get returns the open catalog for spec, opening it on first use. It
// resolves the password (observing needs a login), and replaces a catalog
// opened with an older password or warehouse.
func (p *pools) get(ctx context.Context, env *reconciler.Env, spec iceberg.CatalogSpec) (*Catalog, error) {
	if env.Secrets == nil {
		return nil, fmt.Errorf("resolve the catalog password (%s): no secret provider", spec.DB.Password)
	}
	pw, err := env.Secrets.Resolve(ctx, spec.DB.Password)
	if err != nil {
		return nil, fmt.Errorf("resolve the catalog password: %w", err)
	}
	wh, err := spec.WarehouseUnder(env.Root)
	if err != nil {
		return nil, err
	}
	ident := mysqlConfig(&spec, nil).FormatDSN() + "|" + spec.Name
	h := sha256.New()
	h.Write([]byte(ident))
	h.Write([]byte{0})
	h.Write(pw.Reveal())
	h.Write([]byte{0})
	h.Write([]byte(wh))
	for _, k := range slices.Sorted(maps.Keys(spec.Properties)) {
		fmt.Fprintf(h, "\x00%s=%s", k, spec.Properties[k])
	}
	key := hex.EncodeToString(h.Sum(nil))

	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.m[key]; ok {
		return c, nil
	}
	c, err := Open(ctx, spec, pw, env.Root)
	if err != nil {
		return nil, err
	}
	c.key = key
	if p.m == nil {
		p.m = map[string]*Catalog{}
	}
	for k, old := range p.m {
		if mysqlConfig(&old.spec, nil).FormatDSN()+"|"+old.spec.Name == ident {
			_ = old.Close()
			delete(p.m, k)
		}
	}
	p.m[key] = c
	return c, nil
}

// close closes every open catalog.
func (p *pools) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for k, c := range p.m {
		errs = append(errs, c.Close())
		delete(p.m, k)
	}
	return errors.Join(errs...)
}

// missingTables is [Catalog.MissingTables], once per run.
func missingTables(ctx context.Context, env *reconciler.Env, c *Catalog) ([]string, error) {
	if env.Cache == nil {
		return c.MissingTables(ctx)
	}
	v, err := env.Cache.Once("iceberg.catalog-tables/"+c.key, func() (any, error) {
		return c.MissingTables(ctx)
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// tablesPresent reports whether both catalog tables exist, once per run.
func tablesPresent(ctx context.Context, env *reconciler.Env, c *Catalog) (bool, error) {
	missing, err := missingTables(ctx, env, c)
	return len(missing) == 0, err
}

// ensureTables creates the catalog tables if this run found them missing.
func ensureTables(ctx context.Context, env *reconciler.Env, c *Catalog) error {
	ok, err := tablesPresent(ctx, env, c)
	if err != nil || ok {
		return err
	}
	if err := c.EnsureTables(ctx); err != nil {
		return err
	}
	if env.Cache != nil {
		env.Cache.Forget("iceberg.catalog-tables/" + c.key)
	}
	return nil
}

// planBrokenCatalog handles a catalog that has one of its two tables only
// (the other dropped by hand). Neither a namespace nor a table can be
// observed then: iceberg-go reads both tables to tell whether a namespace
// exists, and a namespace may live on in the table that is left. The plan
// says which table is missing; its apply creates it (empty, with the Java
// catalog's DDL: safe, and what the Java catalog does too) and then plans
// the resource again on the repaired catalog and applies that, so that the
// resource converges in this run instead of failing on a namespace that
// still exists. A destructive change found then runs only if allowDestroy;
// otherwise it is left to the next run, which holds it as usual. It returns
// nil when the catalog is whole or new.
func planBrokenCatalog(ctx context.Context, env *reconciler.Env, c *Catalog, allowDestroy bool, replan func(context.Context) (*reconciler.Plan, error)) (*reconciler.Plan, error) {
	missing, err := missingTables(ctx, env, c)
	if err != nil || len(missing) != 1 {
		return nil, err
	}
	plan := &reconciler.Plan{
		Observed: map[string]string{"catalogTableMissing": missing[0]},
		Action:   reconciler.ActionUpdate,
		Changes: []reconciler.Change{{
			Field: "catalog table " + missing[0], Before: "missing", After: "created, then the resource planned again",
			Class: reconciler.Safe,
		}},
	}
	plan.Apply = func(ctx context.Context) error {
		if err := ensureTables(ctx, env, c); err != nil {
			return err
		}
		p, err := replan(ctx)
		if err != nil {
			return err
		}
		if !p.HasChanges() {
			return nil
		}
		if p.Apply == nil {
			return fmt.Errorf("after re-creating catalog table %s: the plan has changes and no apply", missing[0])
		}
		if p.MaxClass() == reconciler.Destructive && !allowDestroy {
			return nil
		}
		return p.Apply(ctx)
	}
	return plan, nil
}
