// Package jdbc implements the iceberg.namespace and iceberg.table kinds on
// iceberg-go's SQL catalog with the mysql dialect, which reads and writes
// the same two tables as the Java JdbcCatalog: iceberg_tables and
// iceberg_namespace_properties. When those tables are missing, the first
// apply creates them with the Java catalog's own DDL (V1 schema, with
// iceberg_type), so that Spark and fsgit share one catalog. When only one
// of them is missing (dropped by hand), a namespace or table cannot be
// observed until it is back: the plan says so, and its apply re-creates the
// missing table empty, plans the resource again and applies that, so that
// the run converges (see planBrokenCatalog).
//
// It is linked only into the fsgit-iceberg helper ([Serve] handles its
// kind requests); fsgit uses the proxies of package
// [github.com/fsgit/fsgit/reconciler/iceberg], which hold the specs, their
// validation and the schema diff this package turns into iceberg-go
// operations.
//
// The warehouse is a file:// path (mapped under --root) or an s3://
// location, for which the S3 FileIO of iceberg-go is linked in and
// configured by the catalog's properties (s3.region, s3.endpoint, ...;
// credentials from the default AWS chain).
package jdbc
