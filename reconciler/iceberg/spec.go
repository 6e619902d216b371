package iceberg

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
)

// CatalogSpec is #IcebergCatalog: the JDBC catalog that Spark's
// spark.sql.catalog.<name> points at, kept in a MariaDB database.
type CatalogSpec struct {
	// Name is the catalog's name; every row of iceberg_tables carries it.
	Name string `json:"name"`
	// Warehouse is the root of new tables: file:///path or s3://bucket/path.
	Warehouse string `json:"warehouse"`
	// Properties are extra catalog and FileIO properties (s3.region,
	// s3.endpoint, ...).
	Properties map[string]string `json:"properties,omitempty"`
	// DB is where the catalog tables live.
	DB DBSpec `json:"db"`
}

// DBSpec is the catalog's MariaDB connection.
type DBSpec struct {
	// Socket is the unix socket, used unless Host is set.
	Socket string `json:"socket,omitempty"`
	// Host and Port select TCP.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// Database holds iceberg_tables and iceberg_namespace_properties.
	Database string `json:"database"`
	// User and Password are the catalog's login (the same as Spark's
	// jdbc.user and jdbc.password).
	User     string               `json:"user"`
	Password reconciler.SecretRef `json:"password"`
}

var (
	sqlIdentRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`) })
	s3RE       = regexp.MustCompile(`^s3a?://[a-z0-9][a-z0-9.-]*(/\S*)?$`)
)

// ValidateLocation checks a warehouse or a location property as the schema's
// #Warehouse does: a file:/// URL of an absolute, clean path (an optional
// trailing "/", no %-escapes, query or fragment), or an s3:// or s3a://
// bucket URL. what names the value in the error.
func ValidateLocation(what, v string) error {
	if s3RE.MatchString(v) {
		return nil
	}
	p, ok := strings.CutPrefix(v, "file://")
	if !ok {
		return fmt.Errorf("%s %q is neither file:///... nor s3://...", what, v)
	}
	if strings.ContainsAny(p, "%?#") {
		return fmt.Errorf("%s %q: a file:// location may hold no %%-escape, query or fragment", what, v)
	}
	if trimmed := strings.TrimSuffix(p, "/"); trimmed == "" {
		return fmt.Errorf("%s %q names no directory", what, v)
	} else if _, err := (&reconciler.Env{}).Path(trimmed); err != nil {
		return fmt.Errorf("%s %q: %w", what, v, err)
	}
	return nil
}

// IsLocationProperty reports whether a namespace or table property says
// where files are written (location, write.data.path,
// write.metadata.path): such a value is checked like the warehouse.
func IsLocationProperty(key string) bool {
	switch key {
	case "location", "write.data.path", "write.metadata.path":
		return true
	}
	return false
}

// CheckLocations checks the location properties of a namespace or table:
// each must be valid (see [ValidateLocation]), and under a root none may be
// a file:// location, which is used as written, not mapped into the root.
func CheckLocations(root string, props map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if !IsLocationProperty(k) {
			continue
		}
		v := props[k]
		if err := ValidateLocation("property "+k, v); err != nil {
			return err
		}
		if root != "" && strings.HasPrefix(v, "file:") {
			return fmt.Errorf("property %s %q: under --root %s a file:// location would be written outside the root (it is used as written, not mapped into it)", k, v, root)
		}
	}
	return nil
}

// Validate checks the catalog spec without I/O: the names that reach SQL
// and the warehouse, which must stay inside the root. The database's
// user, password, socket and port are the schema's (#IcebergCatalog).
func (c *CatalogSpec) Validate() error {
	if !sqlIdentRE().MatchString(c.Name) {
		return fmt.Errorf("catalog name %q is not an identifier", c.Name)
	}
	if err := ValidateLocation("catalog warehouse", c.Warehouse); err != nil {
		return err
	}
	if _, err := url.Parse(c.Warehouse); err != nil {
		return fmt.Errorf("catalog warehouse %q: %w", c.Warehouse, err)
	}
	if !sqlIdentRE().MatchString(c.DB.Database) {
		return fmt.Errorf("catalog db.database %q is not an identifier", c.DB.Database)
	}
	return nil
}

// Where names the catalog's database for messages: "iceberg_catalog_db on
// /run/mysqld/mysqld.sock as iceberg_catalog_user".
func (c *CatalogSpec) Where() string {
	return fmt.Sprintf("%s on %s as %s", c.DB.Database, c.DB.Addr(), c.DB.User)
}

// Addr returns the socket path, or host:port when Host is set.
func (d *DBSpec) Addr() string {
	if d.Host != "" {
		return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	}
	return d.Socket
}

// WarehouseUnder returns the warehouse location as seen under root: a
// file:// warehouse is mapped into the root like every managed path; an
// s3:// one is returned as is.
func (c *CatalogSpec) WarehouseUnder(root string) (string, error) {
	if root == "" || !strings.HasPrefix(c.Warehouse, "file://") {
		return c.Warehouse, nil
	}
	u, err := url.Parse(c.Warehouse)
	if err != nil {
		return "", fmt.Errorf("parse warehouse %q: %w", c.Warehouse, err)
	}
	env := &reconciler.Env{Root: root}
	p, err := env.Path(strings.TrimSuffix(u.Path, "/"))
	if err != nil {
		return "", fmt.Errorf("map warehouse under root: %w", err)
	}
	// Data files are written below it: the warehouse directory itself may
	// not lead out of the root either.
	if err := env.CheckResolved(p); err != nil {
		return "", fmt.Errorf("map warehouse under root: %w", err)
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

// NamespaceSpec is the spec of an iceberg.namespace resource; see
// docs/kinds.md.
type NamespaceSpec struct {
	// Catalog is the JDBC catalog holding the namespace.
	Catalog CatalogSpec `json:"catalog"`
	// Namespace is its levels ("feature_logs" is one level).
	Namespace []string `json:"namespace"`
	// Properties are the namespace properties it must have.
	Properties map[string]string `json:"properties,omitempty"`
	// Ensure is present or absent (drop: destructive).
	Ensure string `json:"ensure,omitempty"`
}

// DecodeNamespaceSpec decodes and validates an iceberg.namespace
// resource's spec: the catalog, the namespace levels, and that the ID
// names the namespace.
func DecodeNamespaceSpec(r *reconciler.Resource) (*NamespaceSpec, error) {
	return reconciler.DecodeAs(&Namespace{}, r)
}

// Check checks what the schema cannot (see DecodeNamespaceSpec).
func (*Namespace) Check(r *reconciler.Resource, s *NamespaceSpec) error {
	if err := s.Catalog.Validate(); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if err := validateNamespace(s.Namespace); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if want := strings.Join(s.Namespace, "."); r.Name() != want {
		return fmt.Errorf("validate %s: the ID must name the namespace %q", r.ID, want)
	}
	if err := validateEnsure(s.Ensure); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	for k := range s.Properties {
		if k == "" || k == "exists" {
			return fmt.Errorf("validate %s: namespace property %q is reserved", r.ID, k)
		}
	}
	if err := CheckLocations("", s.Properties); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	return nil
}

func validateNamespace(ns []string) error {
	if len(ns) == 0 {
		return errors.New("namespace is empty")
	}
	for _, l := range ns {
		if !sqlIdentRE().MatchString(l) {
			return fmt.Errorf("namespace level %q is not an identifier", l)
		}
	}
	return nil
}

func validateEnsure(e string) error {
	switch e {
	case "", "present", "absent":
		return nil
	}
	return fmt.Errorf("ensure %q is neither present nor absent", e)
}

// TableSpec is the spec of an iceberg.table resource; see docs/kinds.md.
type TableSpec struct {
	// Catalog is the JDBC catalog holding the table.
	Catalog CatalogSpec `json:"catalog"`
	// Namespace and Name identify the table.
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
	// Schema is the table's columns, by field ID.
	Schema SchemaSpec `json:"schema"`
	// PartitionSpec is the default partition spec (none: unpartitioned).
	PartitionSpec []PartitionFieldSpec `json:"partitionSpec,omitempty"`
	// Properties are table properties; format-version upgrades the table.
	Properties map[string]string `json:"properties,omitempty"`
	// Ensure is present or absent (drop: destructive).
	Ensure string `json:"ensure,omitempty"`
}

// PropertyFormatVersion is the table property that sets Iceberg's format
// version.
const PropertyFormatVersion = "format-version"

// Ident returns the table's identifier: its namespace levels, then its name.
func (s *TableSpec) Ident() []string {
	return append(slices.Clone(s.Namespace), s.Name)
}

// FullName returns "namespace.name".
func (s *TableSpec) FullName() string { return strings.Join(s.Ident(), ".") }

// DecodeTableSpec decodes and validates an iceberg.table resource's spec:
// the catalog, the identifier, the schema (unique ids and names, known
// types) and the partition spec.
func DecodeTableSpec(r *reconciler.Resource) (*TableSpec, error) {
	return reconciler.DecodeAs(&Table{}, r)
}

// Check checks what the schema cannot (see DecodeTableSpec).
func (*Table) Check(r *reconciler.Resource, s *TableSpec) error {
	if err := s.Catalog.Validate(); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if err := validateNamespace(s.Namespace); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if !sqlIdentRE().MatchString(s.Name) {
		return fmt.Errorf("validate %s: table name %q is not an identifier", r.ID, s.Name)
	}
	if r.Name() != s.FullName() {
		return fmt.Errorf("validate %s: the ID must name the table %q", r.ID, s.FullName())
	}
	if err := validateEnsure(s.Ensure); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if err := validateSchema(&s.Schema, s.PartitionSpec); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	if v, ok := s.Properties[PropertyFormatVersion]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 3 {
			return fmt.Errorf("validate %s: property format-version %q is not 1, 2 or 3", r.ID, v)
		}
	}
	if err := CheckLocations("", s.Properties); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	return nil
}

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
	Table string `json:"table"`
	// Field names the column or property concerned.
	Field string `json:"field"`
	// Reason says why, and what to declare instead.
	Reason string `json:"reason"`
}

// Error returns the refusal as a sentence.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("iceberg table %s: refused change to %s: %s", e.Table, e.Field, e.Reason)
}
