// Package iceberg implements the iceberg.namespace and iceberg.table kinds:
// namespaces and tables of an Apache Iceberg JDBC catalog kept in MariaDB,
// the catalog that Spark's prod_catalog (type jdbc) reads.
//
// Both kinds go through github.com/apache/iceberg-go's SQL catalog with the
// mysql dialect, which reads and writes the same two tables as the Java
// JdbcCatalog: iceberg_tables and iceberg_namespace_properties. When those
// tables are missing, the first apply creates them with the Java catalog's
// own DDL (V1 schema, with iceberg_type), so that Spark and fsgit share one
// catalog.
//
// A table declares its schema (field IDs, names, types, required), its
// partition spec and properties. A missing table is created; a declared new
// optional column is added by schema evolution; a rename, a doc change, a
// widening type promotion (int to long, float to double, decimal precision)
// and making a required column optional are compatible and applied. A change
// Iceberg cannot make compatibly (type narrowing or any other type change, a
// new required column, making an optional column required) is refused with a
// [*RefusedError] that says why and what to do instead. Dropping a column or
// a table is destructive and runs only with allowDestroy.
//
// Observing a catalog needs a login to its database, so the catalog
// password is resolved when planning too; it goes to the driver only, never
// to a plan, a log or an error. The warehouse is a file:// path (mapped
// under --root) or an s3:// location, for which the S3 FileIO of iceberg-go
// is linked in and configured by the catalog's properties (s3.region,
// s3.endpoint, ...; credentials from the default AWS chain).
package iceberg
